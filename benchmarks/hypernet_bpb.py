"""Bits per byte of SmolLM2-135M moved onto other tokenizers: hypernet vs heuristic vs FVT vs mean, one run.

    python benchmarks/hypernet_bpb.py --hypernet out/smollm2-hypernet --dst mistral --dst out/legal-super-8k \\
        --text data/heldout/moby_dick_ch1.txt --text data/heldout/sotu_2021_head.txt \\
        --text data/heldout/gnome_help_de_net.txt --work out/hn-bench

Every model is transplanted with ``tokkit.transplant`` (same alignment, same copied rows; only the
rows of ``new`` tokens differ between methods) and scored with ``tokkit eval-lm``'s
``bits_per_byte`` on identical raw text. Prints one markdown table (English = the first two texts
combined, as in docs/transplant.md) with the share of each text's tokens that are ``new``, the English
leak (nats lost at the other positions to probability on the built rows; see ``tokkit eval-lm``) and
the wall time of each transplant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="smollm2")
    ap.add_argument("--hypernet", required=True)
    ap.add_argument("--dst", action="append", required=True)
    ap.add_argument("--text", action="append", required=True, type=Path)
    ap.add_argument("--methods", default="hypernet,heuristic,fvt,mean")
    ap.add_argument("--english", type=int, default=2, help="the first N texts are combined as 'English'")
    ap.add_argument("--work", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)

    from tokkit import load_tokenizer, resolve_model
    from tokkit.transplant import TransplantConfig, align_vocabs, plan_transplant, run_transplant
    from tokkit.transplant.evaluate import bits_per_byte, combine
    from tokkit.transplant.report import REPORT_FILE

    texts = {p.stem: p.read_text(encoding="utf-8") for p in a.text}
    names = list(texts)
    english, rest = names[: a.english], names[a.english:]

    def score(folder) -> dict[str, float]:
        sc = bits_per_byte(folder, texts, device="cpu")
        out = {s.domain: s.bits_per_byte for s in sc}
        en = combine([s for s in sc if s.domain in english])
        out["English"] = en.bits_per_byte
        out["leak"] = en.leak_nats if en.leak_nats is not None else float("nan")  # nats lost to built rows
        return out

    src_tok = load_tokenizer(resolve_model(a.src))
    rows = [("original", a.src, "", score(resolve_model(a.src)), 0.0, float("nan"))]
    for dst in a.dst:
        dst_tok = load_tokenizer(dst)
        new = set(align_vocabs(src_tok.vocab, dst_tok.vocab).new_ids)
        frac = {}
        for n in names:
            ids = dst_tok.encode(texts[n])
            frac[n] = sum(i in new for i in ids) / len(ids)
        en_ids = [i for n in english for i in dst_tok.encode(texts[n])]
        frac["English"] = sum(i in new for i in en_ids) / len(en_ids)
        label = Path(dst).name
        for m in a.methods.split(","):
            out = a.work / f"{label}-{m}"
            t0 = time.perf_counter()
            if not (out / REPORT_FILE).exists():
                cfg = TransplantConfig(src=a.src, dst=dst, method=m, device="cpu", heldout=500,
                                       hypernet=a.hypernet if m == "hypernet" else None)
                run_transplant(plan_transplant(cfg), out, force=True)
            sec = time.perf_counter() - t0
            held = json.loads((out / REPORT_FILE).read_text()).get("heldout_anchor_check", {})
            rows.append((m, label, frac, score(out), sec, held.get("cosine_input_mean", float("nan"))))
            print(f"done {label} {m}", flush=True)
    cols = ["English"] + rest
    print("\n| tokenizer | method | " + " | ".join(f"{c} bpb" for c in cols) + " | English leak nats | held-out anchor cosine | transplant s |")
    print("|---|---|" + "---|" * (len(cols) + 3))
    for m, label, frac, sc, sec, cos in rows:
        cells = []
        for c in cols:
            cells.append(f"{sc[c]:.4f}" + (f" ({frac[c]:.1%} new)" if frac else ""))
        print(f"| {label} | {m} | " + " | ".join(cells) + f" | {sc['leak']:.1f} | {cos:.3f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
