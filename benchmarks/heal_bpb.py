"""Bits per byte of a transplanted model healed with ``lm`` / ``alm`` / ``alm+lm``: same steps, data and seed, one run.

    python benchmarks/heal_bpb.py --english-train /tmp/en_corpus/train.jsonl --german-train /tmp/de_corpus/train.jsonl \\
        --text data/heldout/moby_dick_ch1.txt --text data/heldout/sotu_2021_head.txt \\
        --german data/heldout/gnome_help_de_net.txt --steps 60 --eval-every 10 --work out/heal-bench \\
        --plot docs/heal-curve.png

The zero-shot model is ``tokkit transplant --src smollm2 --dst mistral --method heuristic`` (or, with
``--extended FOLDER``, a folder written by ``tokkit extend``: the same comparison on an extended
model). SOURCE is English and German training text mixed half and half by bytes (every German
document in order until its bytes match the English ones). Each loss runs ``tokkit heal`` in its own
process with ``--threads`` threads (``--parallel`` at a time), scoring the held-out texts every
``--eval-every`` steps (the curve); the final folders, the zero-shot model and the original are
scored with ``tokkit eval-lm``'s ``bits_per_byte`` (English = the ``--text`` files combined). Prints
one markdown table: bits per byte, the ratio to the original, the share of the zero-shot gap
recovered, and the wall time of each heal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def build_mix(english: Path, german: Path, out: Path) -> int:
    """English documents, then German ones in order up to the same number of bytes; returns total bytes."""
    def docs(p: Path) -> list[str]:
        return [json.loads(line)["text"] for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]

    en = docs(english)
    n_en = sum(len(d.encode()) for d in en)
    de, n_de = [], 0
    for d in docs(german):
        if n_de >= n_en:
            break
        de.append(d)
        n_de += len(d.encode())
    mixed = [x for pair in zip(en, de) for x in pair] + en[len(de):] + de[len(en):]  # interleaved: the held-out tail is mixed too
    out.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in mixed), encoding="utf-8")
    return n_en + n_de


def _head(text: str, n_bytes: int) -> str:
    """The lines of ``text`` that fit in ``n_bytes`` (at least one)."""
    out, size = [], 0
    for line in text.splitlines(keepends=True):
        if out and size + len(line.encode()) > n_bytes:
            break
        out.append(line)
        size += len(line.encode())
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="smollm2")
    ap.add_argument("--dst", default="mistral")
    ap.add_argument("--extended", type=Path, default=None, help="a `tokkit extend` output to heal instead of a transplant")
    ap.add_argument("--english-train", type=Path, required=True)
    ap.add_argument("--german-train", type=Path, required=True)
    ap.add_argument("--text", action="append", required=True, type=Path, help="held-out English (combined)")
    ap.add_argument("--german", type=Path, required=True, help="held-out German")
    ap.add_argument("--losses", default="lm,alm,alm+lm")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-bytes", type=int, default=512)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--train", default=None, help="what is trained (tokkit heal --train) [default: heal's]")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per heal process")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--tag", default="", help="suffix of the heal folders (e.g. a longer run)")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--reference-only", action="store_true", help="score the original and the zero-shot model, then stop")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from tokkit import resolve_model
    from tokkit.transplant import TransplantConfig, plan_transplant, run_transplant
    from tokkit.transplant.evaluate import bits_per_byte, combine

    a.work.mkdir(parents=True, exist_ok=True)
    mix = a.work / "mix.jsonl"
    if not mix.exists():
        print(f"SOURCE: {build_mix(a.english_train, a.german_train, mix):,} bytes (English + German)", flush=True)
    zs = a.extended
    if zs is None:
        zs = a.work / "zeroshot"
        if not (zs / "transplant_report.json").exists():
            cfg = TransplantConfig(src=a.src, dst=a.dst, method="heuristic", device="cpu", heldout=0)
            run_transplant(plan_transplant(cfg), zs, force=True)
    curve = [a.work / "curve_en.txt", a.work / "curve_de.txt"]  # the curve: the first ~4 KB of each language
    curve[0].write_text("".join(_head(p.read_text(encoding="utf-8"), 4096 // len(a.text)) for p in a.text), encoding="utf-8")
    curve[1].write_text(_head(a.german.read_text(encoding="utf-8"), 4096), encoding="utf-8")
    losses = a.losses.split(",")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    procs, wall = {}, {}
    pending = [] if a.reference_only else list(losses)
    while pending or procs:
        while pending and len(procs) < a.parallel:
            loss = pending.pop(0)
            out = a.work / f"heal-{loss}{a.tag}"
            if (out / "transplant_report.json").exists():
                wall[loss] = json.loads((out / "transplant_report.json").read_text())["heals"][-1]["seconds"]
                continue
            cmd = [sys.executable, "-m", "tokkit_cli.main", "heal", str(zs), str(mix), "-o", str(out), "--loss", loss,
                   "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--seq-bytes", str(a.seq_bytes),
                   "--eval-every", str(a.eval_every), "--heldout", "0.002", "--seed", str(a.seed), "--device", "cpu",
                   "--resume"]
            cmd += [x for t in curve for x in ("--eval-text", str(t))]
            cmd += ["--lr", str(a.lr)] if a.lr else []
            cmd += ["--train", a.train] if a.train else []
            log = open(a.work / f"heal-{loss}{a.tag}.log", "w")
            procs[loss] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.perf_counter())
            print(f"started {loss}", flush=True)
        for loss, (p, t0) in list(procs.items()):
            if p.poll() is not None:
                if p.returncode != 0:
                    raise SystemExit(f"heal {loss} failed: see {a.work}/heal-{loss}{a.tag}.log")
                wall[loss] = time.perf_counter() - t0
                del procs[loss]
                print(f"done {loss} in {wall[loss]:.0f} s", flush=True)
        time.sleep(5)

    texts = {p.stem: p.read_text(encoding="utf-8") for p in a.text} | {a.german.stem: a.german.read_text(encoding="utf-8")}
    english = [p.stem for p in a.text]
    cache_file = a.work / "scores.json"  # folder -> (English, German): a finished folder is scored once

    def score(folder) -> tuple[float, float]:
        cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        if str(folder) not in cache:
            sc = bits_per_byte(folder, texts, device="cpu")
            en = combine([s for s in sc if s.domain in english]).bits_per_byte
            cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
            cache[str(folder)] = (en, next(s.bits_per_byte for s in sc if s.domain == a.german.stem))
            cache_file.write_text(json.dumps(cache, indent=1) + "\n")
        return tuple(cache[str(folder)])

    rows = [("original", score(resolve_model(a.src)), None), ("zero-shot", score(zs), None)]
    if a.reference_only:
        print(rows)
        if a.plot:
            plot(a, [], curve)
        return
    for loss in losses:
        rows.append((loss, score(a.work / f"heal-{loss}{a.tag}"), wall.get(loss)))
        print(f"scored {loss}", flush=True)
    (o_en, o_de), (z_en, z_de) = rows[0][1], rows[1][1]
    print(f"\n{a.steps} steps x {a.batch_size} x {a.seq_bytes} bytes, seed {a.seed}, train {a.train or 'default'}, "
          f"lr {a.lr or 'default'}, {a.threads} thread(s) per run, {a.parallel} run(s) at a time")
    print("| model | English bpb | x original | gap recovered | German bpb | x original | gap recovered | heal wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (en, de), sec in rows:
        rec_en = f"{(z_en - en) / (z_en - o_en):.0%}" if name != "original" else "-"
        rec_de = f"{(z_de - de) / (z_de - o_de):.0%}" if name != "original" else "-"
        print(f"| {name} | {en:.4f} | {en / o_en:.3f} | {rec_en} | {de:.4f} | {de / o_de:.3f} | {rec_de} | "
              f"{'-' if sec is None else f'{sec:.0f}'} |")
    result = {"steps": a.steps, "batch_size": a.batch_size, "seq_bytes": a.seq_bytes, "seed": a.seed,
              "rows": [{"model": n, "english_bpb": e, "german_bpb": d, "heal_seconds": s} for n, (e, d), s in rows]}
    (a.work / f"result{a.tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    if a.plot:
        plot(a, losses, curve)


def plot(a, losses, curve) -> None:
    """Bits per byte on the curve texts every ``--eval-every`` steps; the original model's as a line."""
    from tokkit import resolve_model
    from tokkit.transplant.evaluate import bits_per_byte

    ref_file = a.work / "curve_reference.json"
    if not ref_file.exists():
        sc = bits_per_byte(resolve_model(a.src), {p.stem: p.read_text(encoding="utf-8") for p in curve})
        ref_file.write_text(json.dumps({s.domain: s.bits_per_byte for s in sc}) + "\n")
    ref = json.loads(ref_file.read_text())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, lang, o in ((axes[0], "English", ref["curve_en"]), (axes[1], "German", ref["curve_de"])):
        for loss in losses:
            h = json.loads((a.work / f"heal-{loss}{a.tag}" / "transplant_report.json").read_text())["heals"][-1]
            xs, ys = [], []
            for e in h["evals"]:
                xs.append(e["step"])
                ys.append(e["curve_en" if lang == "English" else "curve_de"])
            ax.plot(xs, ys, marker="o", label=loss)
        ax.axhline(o, color="k", ls="--", lw=1, label="original")
        ax.set_title(f"held-out {lang} (first 4 KB; step 0 = zero-shot)")
        ax.set_xlabel("heal step")
        ax.set_ylabel("bits per byte")
        ax.legend()
    what = f"{Path(a.extended).name} (tokkit extend)" if a.extended else f"SmolLM2-135M -> {a.dst} (heuristic transplant)"
    from tokkit.transplant.heal import HealConfig

    train = a.train or HealConfig.model_fields["train"].default.value  # heal's own default, not a copy of it
    fig.suptitle(f"{what}, --train {train}, {a.batch_size} x {a.seq_bytes} B per step")
    fig.tight_layout()
    fig.savefig(a.plot, dpi=110)


if __name__ == "__main__":
    main()
