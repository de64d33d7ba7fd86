"""SmolLM2-135M extended with German merges (``tokkit extend``) vs the original and vs a transplant, in one run.

For each N in ``--adds``: the smollm2 tokenizer is extended with N merges learnt on the German training
corpus (``data/build_german_corpus.py``: Debian manpages-de + debian-reference-de) with the English
evaluation texts as ``--keep-text``; the extended model is written with every row method in ``--methods``;
each model is scored with the eval-lm library (bits per byte, with the leak of the new output rows split
out) on held-out English (``data/heldout/moby_dick_ch1.txt``, ``sotu_2021_head.txt``) and held-out German
from another source and genre (``data/heldout/gnome_help_de_net.txt``, GNOME help). For contrast, the
original model transplanted (heuristic) onto a German-only BPE of the largest extended size.

Prints the tables of docs/extend.md and writes ``results.json`` into ``--work``.

    python data/build_german_corpus.py --root de_root --out /tmp/de_corpus
    python benchmarks/extend_bpb.py --de-corpus /tmp/de_corpus/train.jsonl --work /tmp/extend_bench
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EN = [ROOT / "data/heldout/moby_dick_ch1.txt", ROOT / "data/heldout/sotu_2021_head.txt"]
DE = ROOT / "data/heldout/gnome_help_de_net.txt"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--de-corpus", required=True, type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/extend_bench"))
    ap.add_argument("--adds", type=int, nargs="+", default=[2000, 4000, 8000])
    ap.add_argument("--methods", nargs="+", default=["fvt", "mean", "heuristic"])
    ap.add_argument("--hypernet", default=None, help="hypernetwork checkpoint: adds the hypernet method")
    ap.add_argument("--no-transplant", action="store_true", help="skip the transplant contrast")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.WARNING)
    from tokkit import load_tokenizer
    from tokkit.names import resolve_model
    from tokkit.train.extend_tokenizer import extend_tokenizer, twin_files
    from tokkit.transplant.config import Method
    from tokkit.transplant.evaluate import bits_per_byte, combine
    from tokkit.transplant.extend import run_extend

    a.work.mkdir(parents=True, exist_ok=True)
    model = resolve_model("smollm2")
    tok = load_tokenizer(model)
    en = {p.stem: p.read_text(encoding="utf-8") for p in EN}
    de = DE.read_text(encoding="utf-8")
    texts = {**en, "german": de}
    results: dict = {"tokens": [], "bpb": [], "extend": []}
    old_hf = tok.to_hf()

    def score(name: str, folder: Path) -> None:
        s = {x.domain: x for x in bits_per_byte(folder, texts, progress=False)}
        eng = combine([s[k] for k in en], domain="english")
        for d, x in (("english", eng), ("german", s["german"])):
            row = {"model": name, **x.as_dict()}
            row["model"] = name
            results["bpb"].append(row)
            print(json.dumps(row), flush=True)
        (a.work / "results.json").write_text(json.dumps(results, indent=1))  # partial results survive a stop

    score("original", model)
    exts = {}
    for n in a.adds:
        t0 = time.perf_counter()
        ext = extend_tokenizer(tok, [a.de_corpus], add=n, keep_texts=list(en.values()))
        secs = time.perf_counter() - t0
        free = extend_tokenizer(tok, [a.de_corpus], add=n) if n == max(a.adds) else None
        hf = ext.hf()
        row = {"add": n, "seconds": round(secs, 1), "peak_mb": round(_peak_mb()),
               "report": {k: ext.report[k] for k in ("new_size", "skipped_candidates", "source", "protected_ids_changed")}}
        for name, text in texts.items():
            b = len(text.encode("utf-8"))
            old_ids = old_hf.encode(text, add_special_tokens=False).ids
            new_ids = hf.encode(text, add_special_tokens=False).ids
            r = {"add": n, "text": name, "bytes": b, "tokens_before": len(old_ids), "tokens_after": len(new_ids),
                 "ids_identical": old_ids == new_ids}
            if free is not None:
                fid = free.hf().encode(text, add_special_tokens=False).ids
                r["tokens_without_keep_text"] = len(fid)
                r["ids_identical_without_keep_text"] = fid == old_ids
            results["tokens"].append(r)
            print(json.dumps(r), flush=True)
        results["extend"].append(row)
        print(json.dumps(row), flush=True)
        exts[n] = ext
    methods = list(a.methods) + (["hypernet"] if a.hypernet else [])
    for m in methods:  # method-major: the cheap methods' rows for every N come first
        for n, ext in exts.items():
            out = a.work / f"smollm2-de{n}-{m}"
            t1 = time.perf_counter()
            run_extend(model, ext, out, method=Method(m), hypernet=a.hypernet, force=True, extra_files=twin_files(ext))
            print(json.dumps({"add": n, "method": m, "write_seconds": round(time.perf_counter() - t1, 1)}), flush=True)
            score(f"extend {n} {m}", out)
    if not a.no_transplant:
        from tokkit.train import TrainRecipe, train_tokenizer
        from tokkit.transplant import TransplantConfig, plan_transplant, run_transplant

        size = len(tok.vocab) + max(a.adds)  # the same size as the largest extension, SmolLM2's chat specials
        recipe = TrainRecipe(vocab_size=size, held_out=0.0, special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
        dst = a.work / f"de-bpe-{size}"
        train_tokenizer([a.de_corpus], out_dir=dst, recipe=recipe, force=True, progress=False)
        r = {"text": "german", "transplant_tokens": len(load_tokenizer(dst / "tokenizer.json").encode(de)),
             "english_tokens": sum(len(load_tokenizer(dst / "tokenizer.json").encode(t)) for t in en.values())}
        results["tokens"].append(r)
        print(json.dumps(r), flush=True)
        plan = plan_transplant(TransplantConfig(src=str(model), dst=str(dst / "tokenizer.json"), method=Method.HEURISTIC, heldout=0))
        run_transplant(plan, a.work / "smollm2-transplant-de", force=True)
        score(f"transplant de-bpe {size} heuristic", a.work / "smollm2-transplant-de")
    (a.work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"peak memory {_peak_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
