"""tokkit's encode_batch against the right peer, side by side on the same documents, in one run.

    python benchmarks/encode_speed.py [--aliases gpt2 llama3 qwen2 mistral] [--repeat 3]

Two modes: ``loop`` (``tok.encode`` per text on one thread against the peer's single-text call: the
least noisy on a shared machine) and ``batch`` (``encode_batch`` against the peer's batch call, both
with their library-default threading, as tokkit uses them). Peers:
  * every byte-level BPE (gpt2, cl100k, o200k, llama3, qwen2, smollm2): **raw tiktoken**
    ``encode_ordinary_batch`` on the same ranks and pattern (for the HF files, the rank table
    ``tokkit.formats.fast_bpe.rank_parts`` builds); for the HF files also HF ``encode_batch_fast``;
  * sentencepiece models (llama2, mistral): sentencepiece's own threaded batch ``encode(list, num_threads=-1)``;
  * other HF files (gemma3): HF ``encode_batch_fast``.

Corpus: Debian's /usr/share/common-licenses split into paragraphs (x5) plus the multilingual held-out
texts and docs of this repository, split into paragraphs without '<' (x5; the docs quote control tokens). Every path is first checked to give
identical ids. Prints MB/s and the ratio tokkit time / peer time (1.00 = no overhead), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

from tokkit import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["gpt2", "cl100k", "o200k", "llama3", "qwen2", "smollm2", "llama2", "mistral", "gemma3"]


def corpus() -> list[str]:
    docs = []
    for f in sorted(glob.glob("/usr/share/common-licenses/*")):
        with open(f, encoding="utf-8", errors="replace") as fh:
            docs += [p for p in fh.read().split("\n\n") if p.strip()] * 5
    for f in sorted((ROOT / "data" / "heldout").glob("*.txt")) + sorted((ROOT / "docs").glob("*.md")):
        docs += [p for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip() and "<" not in p] * 5  # no control tokens
    return docs


def best_of(fns: dict[str, object], repeat: int) -> dict[str, float]:
    """Best wall seconds of each callable, timed **interleaved** (one round calls each once), so a
    change of load on a shared machine hits tokkit and its peers alike instead of whichever ran last."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def peers(tok, loop: bool) -> dict[str, object]:
    """name -> batch encoder (``loop``: one text per call, one thread) returning lists of ids."""
    n = tok.native
    raw = None
    if tok.backend in ("tiktoken", "tekken", "tiktoken_file"):
        raw = n
    elif tok._fast is not None:
        import tiktoken

        from tokkit.formats.fast_bpe import rank_parts

        parts = rank_parts(json.loads(Path(tok._src.path).read_text(encoding="utf-8")))
        raw = tiktoken.Encoding(name="raw", pat_str=parts.pattern, mergeable_ranks=parts.ranks, special_tokens={})
    out: dict[str, object] = {}
    if raw is not None:
        out["raw tiktoken"] = (lambda docs: [raw.encode_ordinary(d) for d in docs]) if loop else raw.encode_ordinary_batch
    if tok.backend == "spm":
        out["spm"] = (lambda docs: [n.encode(d) for d in docs]) if loop else (lambda docs: n.encode(docs, num_threads=-1))
    elif tok.backend in ("hf", "gguf"):
        out["HF encode" if loop else "HF encode_batch_fast"] = (
            (lambda docs: [n.encode(d, add_special_tokens=False).ids for d in docs]) if loop
            else (lambda docs: [e.ids for e in n.encode_batch_fast(docs, add_special_tokens=False)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aliases", nargs="+", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    docs = corpus()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"{len(docs)} paragraphs, {mb:.2f} MB; best of {args.repeat}, timed interleaved; ratio = tokkit time / peer time")
    print("loop = one text per call on one thread (tok.encode vs the peer's single-text call); "
          "batch = encode_batch vs the peer's batch call, library-default threads")
    print(f"{'alias':<9}{'tokkit path':<14}{'mode':<6}{'tokkit MB/s':>12}  {'peer':<22}{'peer MB/s':>10}{'ratio':>8}")
    for alias in args.aliases:
        tok = load_tokenizer(alias)
        path = "tiktoken core" if tok._fast is not None else tok.backend
        mine = tok.encode_batch(docs)
        for loop in (True, False):
            ours = (lambda: [tok.encode(d) for d in docs]) if loop else (lambda: tok.encode_batch(docs))
            others = peers(tok, loop)
            for name, fn in others.items():
                assert [list(x) for x in fn(docs)] == mine, f"{alias}: tokkit and {name} disagree"
            times = best_of({"tokkit": ours, **{name: (lambda fn=fn: fn(docs)) for name, fn in others.items()}},
                            args.repeat)
            t_ours = times["tokkit"]
            for name in others:
                t_peer = times[name]
                print(f"{alias:<9}{path:<14}{'loop' if loop else 'batch':<6}{mb / t_ours:>12.2f}  {name:<22}"
                      f"{mb / t_peer:>10.2f}{t_ours / t_peer:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
