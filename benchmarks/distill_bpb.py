"""New rows learnt from the model (Token Distillation, fitted output rows) vs guessed rows, side by side in one run.

SmolLM2-135M's own tokenizer is extended with N German merges (``tokkit extend``, English training text
as ``--keep-text``); the new rows are built by each ``--methods`` entry, each run as the ``tokkit extend``
command a user types (its wall time, CPU time and peak memory measured on the process), optionally
followed by ``tokkit heal`` at the docs' setting. Every model is scored with eval-lm's bits per byte on
held-out text the fitting never read: English of the keep-text's genres (Moby-Dick ch. 1, SOTU 2021),
English of another domain (licences), German of another source and genre (GNOME help). Then SmolLM2 is
transplanted onto Mistral v1 with the heuristic and with distill (``--corpus``: German + English).

Methods: ``fvt``, ``heuristic``, ``hypernet`` (needs ``--hypernet CKPT``), ``fvt+fit`` (FVT input rows,
fitted output rows), ``distill`` (distilled input rows, the start method's output rows: ``--output-rows
init``), ``distill+fit`` (distilled input rows, fitted output rows: distill's default).

    python data/build_german_corpus.py --root de_root --out /tmp/de_corpus --dev-docs 40
    python data/build_hypernet_corpus.py --package package --out /tmp/en_corpus
    python benchmarks/distill_bpb.py --de-corpus /tmp/de_corpus/train.jsonl --en-train /tmp/en_corpus/train.jsonl \\
        --german data/heldout/gnome_help_de_net.txt --german /tmp/de_corpus/dev.txt --work /tmp/distill_bench

Prints one markdown table per part and writes ``results.json`` into ``--work`` (a finished model is not
rebuilt or rescored when the benchmark is run again).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGLISH = [ROOT / "data/heldout/moby_dick_ch1.txt", ROOT / "data/heldout/sotu_2021_head.txt"]
LEGAL = ROOT / "data/legal/heldout.jsonl"
METHODS = {
    "fvt": ["--method", "fvt"],
    "heuristic": ["--method", "heuristic"],
    "hypernet": ["--method", "hypernet"],
    "fvt+fit": ["--method", "fvt", "--output-rows", "fit"],
    "distill": ["--method", "distill", "--output-rows", "init"],
    "distill+fit": ["--method", "distill"],
}


def run(cmd: list[str], log: Path, threads: int) -> dict:
    """Run ``cmd``; its wall and CPU seconds and peak memory (this process alone, from ``wait4``)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}; see {log}")
    return {"wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_mb": round(ru.ru_maxrss / 1024)}


def docs(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--de-corpus", type=Path, required=True, help="German training text (jsonl)")
    ap.add_argument("--en-train", type=Path, required=True, help="English training text (jsonl): --keep-text")
    ap.add_argument("--german", type=Path, action="append", required=True, help="held-out German (repeatable)")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--adds", type=int, nargs="*", default=[2000, 8000], help="merges per extension (none: only --transplant)")
    ap.add_argument("--methods", nargs="+", default=["fvt", "heuristic", "fvt+fit", "distill", "distill+fit"],
                    choices=list(METHODS))
    ap.add_argument("--hypernet", type=Path, default=None, help="hypernetwork checkpoint (for the hypernet method)")
    ap.add_argument("--heal-steps", type=int, default=0, help="also heal each model this many steps (docs: 90)")
    ap.add_argument("--heal-flags", default="", help="more flags for the heal runs, one string (e.g. '--train all')")
    ap.add_argument("--transplant", action="store_true", help="also transplant SmolLM2 -> Mistral v1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--distill-flags", default="", help="more flags for the distill runs, one string "
                    "(e.g. '--snippets 2 --distill-epochs 1')")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more flags for every extend/transplant")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    from tokkit import load_tokenizer
    from tokkit.names import resolve_model
    from tokkit.transplant.evaluate import bits_per_byte, combine

    a.work.mkdir(parents=True, exist_ok=True)
    model = resolve_model("smollm2")
    tok = load_tokenizer(model)
    legal = "\n\n".join(docs(LEGAL))
    texts = {p.stem: p.read_text(encoding="utf-8") for p in ENGLISH} | {"legal": legal}
    texts |= {f"de:{p.stem}": p.read_text(encoding="utf-8") for p in a.german}
    groups = {"English": [p.stem for p in ENGLISH], "English (licences)": ["legal"],
              "German": [k for k in texts if k.startswith("de:")]}
    keep = a.work / "keep_en.txt"
    if not keep.exists():
        keep.write_text("\n\n".join(docs(a.en_train)), encoding="utf-8")
    mix = a.work / "mix.jsonl"  # transplant corpus: German and English, half and half by bytes
    if not mix.exists():
        en, de, size = docs(a.en_train), [], 0
        for d in docs(a.de_corpus):
            if size >= sum(len(x.encode()) for x in en):
                break
            de.append(d)
            size += len(d.encode())
        mix.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n"
                               for pair in zip(en, de) for d in pair), encoding="utf-8")
    res_file = a.work / "results.json"
    results = json.loads(res_file.read_text()) if res_file.exists() else {"scores": {}, "costs": {}, "tokens": {}}

    def save() -> None:
        res_file.write_text(json.dumps(results, indent=1) + "\n")

    def score(name: str, folder: Path) -> dict:
        if name not in results["scores"]:
            sc = {s.domain: s for s in bits_per_byte(folder, texts)}
            results["scores"][name] = {g: combine([sc[k] for k in ks]).as_dict() for g, ks in groups.items()}
            save()
            print(name, {g: round(v["bits_per_byte"], 4) for g, v in results["scores"][name].items()}, flush=True)
        return results["scores"][name]

    def heal(name: str, folder: Path) -> None:
        flags = shlex.split(a.heal_flags)
        tag = "".join(f"-{f.lstrip('-')}" for f in flags)  # '--train all' -> '-train-all'
        out = a.work / f"{folder.name}-heal{a.heal_steps}{tag}"
        label = f"{name} + heal {a.heal_steps}" + (f" {a.heal_flags}" if flags else "")
        if not (out / "config.json").exists():
            cmd = [sys.executable, "-m", "tokkit_cli.main", "heal", str(folder), str(mix), "-o", str(out), "--force",
                   "--steps", str(a.heal_steps), "--batch-size", "4", "--seq-bytes", "512", "--device", "cpu", *flags]
            results["costs"][label] = run(cmd, a.work / f"{out.name}.log", a.threads)
            save()
        score(label, out)

    base = score("original", model)
    for n in a.adds:
        for m in a.methods:
            out = a.work / f"de{n}-{m.replace('+', '-')}"
            name = f"extend {n} {m}"
            if not (out / "config.json").exists():
                cmd = [sys.executable, "-m", "tokkit_cli.main", "extend", str(a.de_corpus), "--model", "smollm2",
                       "--add", str(n), "--keep-text", str(keep), "-o", str(out), "--force", "--quiet",
                       *METHODS[m], *a.extra, *(shlex.split(a.distill_flags) if "distill" in m else [])]
                cmd += ["--hypernet", str(a.hypernet)] if m == "hypernet" else []
                results["costs"][name] = run(cmd, a.work / f"{out.name}.log", a.threads)
                save()
            if str(n) not in results["tokens"]:
                new = load_tokenizer(out)
                results["tokens"][str(n)] = {k: {"before": len(tok.encode(t)), "after": len(new.encode(t)),
                                                 "ids_identical": tok.encode(t) == new.encode(t)} for k, t in texts.items()}
                save()
            score(name, out)
            if a.heal_steps:
                heal(name, out)
    if a.transplant:
        for m in ("heuristic", "distill"):
            out = a.work / f"mistral-{m}"
            name = f"transplant mistral {m}"
            if not (out / "config.json").exists():
                cmd = [sys.executable, "-m", "tokkit_cli.main", "transplant", "--src", "smollm2", "--dst", "mistral",
                       "--method", m, "--heldout", "0", "-o", str(out), "--force", *a.extra,
                       *(shlex.split(a.distill_flags) if m == "distill" else [])]
                cmd += ["--corpus", str(mix)] if m == "distill" else []
                results["costs"][name] = run(cmd, a.work / f"{out.name}.log", a.threads)
                save()
            score(name, out)

    print(f"\n{a.threads} thread(s); ratios are bits per byte / the original's on the same text")
    print("| model | " + " | ".join(f"{g} bpb (x orig)" for g in groups) + " | wall s | CPU s | peak MB |")
    print("|---|" + "---|" * (len(groups) + 3))
    for name, sc in results["scores"].items():
        cells = [f"{sc[g]['bits_per_byte']:.4f} ({sc[g]['bits_per_byte'] / base[g]['bits_per_byte']:.4f})" for g in groups]
        c = results["costs"].get(name, {})
        print(f"| {name} | " + " | ".join(cells) + f" | {c.get('wall_s', '-')} | {c.get('cpu_s', '-')} | {c.get('peak_mb', '-')} |")
    print("\n| extension | text | tokens before | after | change | ids identical |")
    print("|---|---|---|---|---|---|")
    for n, rows in results["tokens"].items():
        for k, r in rows.items():
            print(f"| {n} | {k} | {r['before']:,} | {r['after']:,} | {r['after'] / r['before'] - 1:+.1%} | {r['ids_identical']} |")


if __name__ == "__main__":
    main()
