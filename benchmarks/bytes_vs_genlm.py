"""tokkit.bytelevel against genlm-bytes (Vieira et al., arXiv 2412.03719) on the same model and prefixes.

Run (tokkit's venv; genlm-bytes in its own venv, since it pulls transformers/numba/bitsandbytes):

    python -m venv .venv-genlm && .venv-genlm/bin/pip install torch==2.13.0 genlm-bytes==0.2.0
    OMP_NUM_THREADS=1 python benchmarks/bytes_vs_genlm.py --genlm-python .venv-genlm/bin/python

Both sides load SmolLM2-135M (the ``smollm2`` fixture folder, float32, CPU, one thread) and start every
context with the HF tokenizer's BOS (``<|im_start|>``, what genlm-bytes uses). For each prefix it
prints the total variation between genlm-bytes' next-byte distribution (``ByteBeamState`` with
``BeamParams(K)``, token healing off) and tokkit's two targets: canonical (exact, leaked mass
renormalised) and all tokenizations with the same beam ``K`` (plus the beam's pruned share), the
top byte of each, and the seconds each took from a fresh state (prefill + one distribution), with
the speed ratio. TV is over the 256 bytes, each side renormalised without end-of-text (genlm's EOS
handling differs). genlm-bytes runs in a subprocess (``--worker``) and answers in JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

PREFIXES = [
    "The capital of Fr",
    "def fibonacci(n):\n    if n < 2:\n        retu",
    "Le gouvernement a annoncé une nouvelle réfor",
    "caf\xc3",  # placeholder, replaced by bytes below (mid-UTF-8)
    "の首都",
    "日本の首都は東",
    "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, and no",
]


def _prefixes() -> list[bytes]:
    out = [p.encode() for p in PREFIXES]
    out[3] = "café".encode()[:-1]  # ends inside é
    return out


def _tv(p: list[float], q: list[float]) -> float:
    import numpy as np

    a, b = np.exp(np.array(p[:256])), np.exp(np.array(q[:256]))
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


# ---------------------------------------------------------------------------------------- genlm side
def genlm_worker(model: str, beam: int, prefixes: list[bytes]) -> list[dict]:
    import torch
    from genlm.backend.llm import AsyncTransformer
    from genlm.bytes import BeamParams, ByteBeamState

    torch.set_num_threads(1)
    llm = AsyncTransformer.from_name(model, hf_opts={"torch_dtype": torch.float32, "device_map": "cpu"})

    async def one(prefix: bytes) -> dict:
        t = time.perf_counter()
        st = await ByteBeamState.initial(llm, BeamParams(K=beam, heal=False))
        st = await st.prefill(prefix)
        lp = (await st.logp_next()).ps
        sec = time.perf_counter() - t
        await st.cleanup()
        return {"logprobs": [float(x) for x in lp[:256]], "seconds": sec}

    out = []
    for p in prefixes:
        llm.clear_cache()
        out.append(asyncio.run(one(p)))
    return out


# ---------------------------------------------------------------------------------------- tokkit side
def tokkit_side(model: str, beam: int, prefixes: list[bytes], bos: int) -> list[dict]:
    import numpy as np
    import torch

    from tokkit.bytelevel import ByteLM

    torch.set_num_threads(1)
    out = []
    for target, k in (("canonical", None), ("all", beam)):
        blm = ByteLM.from_pretrained(model, target=target, beam=k, start_ids=[bos])
        for i, p in enumerate(prefixes):
            blm.lm._memo.d.clear()  # fresh: no answers reused across prefixes
            t = time.perf_counter()
            nb = blm.next_byte(p)
            sec = time.perf_counter() - t
            if target == "canonical":
                out.append({})
            out[i][target] = {"logprobs": nb.logprobs[:256].tolist(), "seconds": sec, "pruned": nb.pruned,
                              "top": int(np.argmax(nb.logprobs))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--beam", type=int, default=8)
    ap.add_argument("--genlm-python", default=".venv-genlm/bin/python", help="python of the venv holding genlm-bytes")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    prefixes = _prefixes()
    if a.worker:
        json.dump(genlm_worker(a.model, a.beam, prefixes), sys.stdout)
        return
    from transformers import AutoTokenizer

    from tokkit.names import resolve_model

    path = str(resolve_model(a.model))
    bos = AutoTokenizer.from_pretrained(path).bos_token_id
    t0 = time.perf_counter()
    ours = tokkit_side(path, a.beam, prefixes, bos)
    t1 = time.perf_counter()
    run = subprocess.run([a.genlm_python, str(Path(__file__).resolve()), "--worker", "--model", path, "--beam", str(a.beam)],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"error: genlm-bytes worker failed (is genlm-bytes installed in {a.genlm_python}?):\n{run.stderr[-2000:]}")
    theirs = json.loads(run.stdout)
    t2 = time.perf_counter()
    print(f"SmolLM2-135M float32 CPU 1 thread, beam K={a.beam}; TV over 256 bytes (end-of-text excluded)")
    print("| prefix | bytes | TV canonical | TV all (K) | pruned | top byte genlm / canon / all | s genlm | s canon | s all | genlm÷canon | genlm÷all |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    import numpy as np

    tvc, tva, rc, ra = [], [], [], []
    for p, o, g in zip(prefixes, ours, theirs):
        c, al = o["canonical"], o["all"]
        gtop = int(np.argmax(g["logprobs"]))
        tvc.append(_tv(c["logprobs"], g["logprobs"]))
        tva.append(_tv(al["logprobs"], g["logprobs"]))
        rc.append(g["seconds"] / c["seconds"])
        ra.append(g["seconds"] / al["seconds"])
        shown = repr(p.decode("utf-8", errors="backslashreplace"))
        shown = shown if len(shown) < 34 else shown[:16] + "…" + shown[-14:]
        print(f"| {shown} | {len(p)} | {tvc[-1]:.4f} | {tva[-1]:.4f} | {al['pruned']:.1e} | 0x{gtop:02x} / 0x{c['top']:02x} / "
              f"0x{al['top']:02x} | {g['seconds']:.2f} | {c['seconds']:.2f} | {al['seconds']:.2f} | {rc[-1]:.2f} | {ra[-1]:.2f} |")
    print(f"mean TV canonical {np.mean(tvc):.4f}, all {np.mean(tva):.4f}; geometric-mean speed ratio genlm÷tokkit: "
          f"canonical {np.exp(np.mean(np.log(rc))):.2f}, all {np.exp(np.mean(np.log(ra))):.2f} "
          f"(wall: tokkit {t1 - t0:.0f} s, genlm-bytes {t2 - t1:.0f} s incl. model load)")


if __name__ == "__main__":
    main()
