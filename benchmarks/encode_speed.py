"""tokkit's encode_batch vs the native library it wraps, side by side on the same documents.

    python benchmarks/encode_speed.py [--aliases gpt2 llama3 mistral] [--repeat 3]

Corpus: Debian's /usr/share/common-licenses (real legal text on every Debian machine) split into
paragraphs. Prints MB/s for both and the ratio tokkit/native (1.00 = no overhead).
"""

from __future__ import annotations

import argparse
import glob
import time

from tokkit import load_tokenizer


def corpus() -> list[str]:
    docs = []
    for f in sorted(glob.glob("/usr/share/common-licenses/*")):
        with open(f, encoding="utf-8", errors="replace") as fh:
            docs += [p for p in fh.read().split("\n\n") if p.strip()]
    return docs * 10  # about 3 MB


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def native_batch(tok, docs):
    n = tok.native
    if tok.backend in ("tiktoken", "tekken"):
        return lambda: n.encode_ordinary_batch(docs)
    if tok.backend == "spm":
        return lambda: n.encode(docs, num_threads=-1)
    return lambda: n.encode_batch(docs, add_special_tokens=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aliases", nargs="+", default=["gpt2", "cl100k", "llama3", "mistral", "gemma3"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    docs = corpus()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"{len(docs)} paragraphs, {mb:.2f} MB")
    print(f"{'alias':<10}{'native MB/s':>14}{'tokkit MB/s':>14}{'tokkit/native time':>22}")
    for alias in args.aliases:
        tok = load_tokenizer(alias)
        native = [x.ids if hasattr(x, "ids") else list(x) for x in native_batch(tok, docs)()]
        assert tok.encode_batch(docs) == native, f"{alias}: tokkit and the native library disagree"
        t_native = best_of(native_batch(tok, docs), args.repeat)
        t_ours = best_of(lambda: tok.encode_batch(docs), args.repeat)
        print(f"{alias:<10}{mb / t_native:>14.2f}{mb / t_ours:>14.2f}{t_ours / t_native:>22.3f}")


if __name__ == "__main__":
    main()
