"""tokkit's encode_batch against the right peer, side by side on the same documents, in one run.

    TOKKIT_FAST_CORE=1 python benchmarks/encode_speed.py [--aliases gpt2 llama3 qwen2 mistral] [--repeat 3]

(``TOKKIT_FAST_CORE=1``: tokkit's plain-text path on its fast core (fastokens or quicktok, whichever
passed the self-check first) from the first call; by default it switches after 8M characters,
``tokkit.formats.fast_core.AUTO_CHARS``.)

Two modes: ``loop`` (``tok.encode`` per text on one thread against the peer's single-text call,
timed in blocks of ``--block`` texts in rotating order, so a drift of the machine's speed lands on both
sides alike; ``--block 1`` alternates text by text, which measures how two encoders evict each other's
rank tables from the CPU caches more than either encoder: tokkit on quicktok's core ran at 25 MB/s
beside quicktok's bundled cl100k and at 57 MB/s beside itself in one such run) and ``batch`` (``encode_batch`` against the peer's batch call, both
with their library-default threading, as tokkit uses them). Peers:
  * every byte-level BPE (gpt2, cl100k, o200k, llama3, qwen2, smollm2): **raw tiktoken**
    ``encode_ordinary_batch`` on the same ranks and pattern (for the HF files, the rank table
    ``tokkit.formats.fast_bpe.rank_parts`` builds); for the HF files also HF ``encode_batch_fast``,
    and in loop mode tiktoken's ``encode_ordinary`` on tokkit's own ``Encoding`` object (for the
    OpenAI encodings the raw peer *is* that object), which separates the wrapper's cost from the
    few-percent speed difference between two identically built tiktoken objects;
  * sentencepiece models (llama2, mistral): sentencepiece's own threaded batch ``encode(list, num_threads=-1)``;
  * other HF files (gemma3): HF ``encode_batch_fast``;
  * loop mode, where installed: the fastest exact encoders on PyPI with their bundled vocabularies,
    quicktok-v1 (cl100k, o200k, llama3, qwen2), bpe-openai (cl100k, o200k) and fastokens (tiktoken's
    rank files with ``encoding=``; the HF files' tokenizer.json, called as ``encode_ordinary(d).ids``); one whose ids
    differ from tokkit's (= the reference library's) on any text of the corpus or of tokkit's self-check
    sample (``tokkit.formats.fast_bpe_check.SAMPLE``) is reported and not timed; and
    tokkit's own ``encode_ordinary`` (target: ratio 1.00, the same fast path as ``encode``); where
    tokkit runs on fastokens or quicktok, its core called raw (``tok._hot[1]``, tokkit's own core object
    without the ``encode`` method), which splits the gap to the peer into core and Python layer.

Corpus: Debian's /usr/share/common-licenses split into paragraphs (x5) plus the multilingual held-out
texts and docs of this repository, split into paragraphs without '<' (x5; the docs quote control tokens). Every path is first checked to give
identical ids. Prints MB/s and the ratio tokkit time / peer time (1.00 = no overhead), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import time
from pathlib import Path

from tokkit import load_tokenizer
from tokkit.formats.fast_bpe_check import SAMPLE

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
    """Best wall seconds of each callable, timed **interleaved** (one round calls each once, the order
    reversed every other round), so a change of load on a shared machine hits tokkit and its peers
    alike instead of whichever ran last. As ``timeit`` does, the garbage collector is off while a
    callable runs (collected before each), so one side does not pay for the other's garbage."""
    best = {name: float("inf") for name in fns}
    order = list(fns)
    for r in range(repeat):
        for name in (order if r % 2 == 0 else order[::-1]):
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fns[name]()
                best[name] = min(best[name], time.perf_counter() - t0)
            finally:
                gc.enable()
    return best


def per_text(fns: dict[str, object], docs: list[str], repeat: int, block: int) -> dict[str, float]:
    """Loop mode: each block of ``block`` texts is encoded, one call per text, by every single-text
    callable in turn (the order rotated from block to block), and each callable's seconds are summed;
    the best of ``repeat`` passes. A drift of the machine's speed then lands on tokkit and its peers
    alike, block by block."""
    names = list(fns)
    best = {name: float("inf") for name in names}
    pc = time.perf_counter_ns
    blocks = [docs[i:i + block] for i in range(0, len(docs), block)]
    for _ in range(repeat):
        tot = dict.fromkeys(names, 0)
        gc.collect()
        gc.disable()
        try:
            for i, blk in enumerate(blocks):
                k = i % len(names)
                for name in names[k:] + names[:k]:
                    fn = fns[name]
                    t0 = pc()
                    for d in blk:
                        fn(d)
                    tot[name] += pc() - t0
        finally:
            gc.enable()
        for name in names:
            best[name] = min(best[name], tot[name] / 1e9)
    return best


#: alias -> {PyPI encoder: its bundled encoding of that vocabulary} (quicktok-v1 0.4.0, bpe-openai 0.1.4;
#: fastokens 0.3.5 reads tiktoken's own rank file with ``encoding=``, or the alias's tokenizer.json)
EXTERNAL = {  # (bpe-openai's gpt2 is not bundled: it would download the ranks, so it is left out)
    "cl100k": {"quicktok": "cl100k_base", "bpe-openai": "cl100k_base", "fastokens": "cl100k_base"},
    "o200k": {"quicktok": "o200k_base", "bpe-openai": "o200k_base", "fastokens": "o200k_base"},
    "llama3": {"quicktok": "llama3", "fastokens": "tokenizer.json"},
    "qwen2": {"quicktok": "qwen3", "fastokens": "tokenizer.json"},
    "smollm2": {"fastokens": "tokenizer.json"},
}


def _external(peer: str, encoding: str, tok=None):
    """The single-text ``encode_ordinary`` of an installed PyPI encoder, or None when it is not installed."""
    from tokkit.fixtures import _tiktoken_cache_path, tiktoken_cache_ready

    try:
        if peer == "quicktok":
            import quicktok

            return quicktok.get_encoding(encoding).encode_ordinary
        if peer == "fastokens":
            import fastokens

            if encoding == "tokenizer.json":
                f = fastokens.Tokenizer.from_file(str(tok._src.path))
            elif tiktoken_cache_ready(encoding):
                f = fastokens.Tokenizer.from_tiktoken(str(_tiktoken_cache_path(encoding + ".tiktoken")), encoding=encoding)
            else:
                return None
            return lambda d: f.encode_ordinary(d).ids  # the call a user makes: its Encoding's ids
        import bpe_openai

        if not tiktoken_cache_ready(encoding):  # bpe-openai reads tiktoken's rank files: never download them
            return None
        return bpe_openai.get_encoding(encoding).encode_ordinary
    except ImportError:
        return None


def peers(tok, loop: bool) -> dict[str, object]:
    """name -> encoder returning ids: one text per call (``loop``) or a list of texts (batch)."""
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
        out["raw tiktoken"] = raw.encode_ordinary if loop else raw.encode_ordinary_batch
    if tok._fast is not None and loop:
        # the same call on tokkit's own tiktoken Encoding: isolates what tokkit's wrapper adds from the
        # few percent by which two identically built Encodings (Rust objects) differ in speed
        own = tok._fast.encoding
        out["tiktoken, tokkit's Encoding"] = own.encode_ordinary
    if loop and tok.core in ("fastokens", "quicktok"):
        # tokkit's core called raw, without the ``encode`` method: what the Python layer costs per call
        out["tokkit's core, raw call"] = tok._hot[1]
    if loop:  # the fastest exact encoders on PyPI, where they have this vocabulary (ids checked in main)
        for peer, encoding in EXTERNAL.get(tok.name, {}).items():
            fn = _external(peer, encoding, tok)
            if fn is not None:
                out[f"{peer} {encoding}"] = fn
    if tok.backend == "spm":
        out["spm"] = n.encode if loop else (lambda docs: n.encode(docs, num_threads=-1))
    elif tok.backend in ("hf", "gguf"):
        out["HF encode" if loop else "HF encode_batch_fast"] = (
            (lambda d: n.encode(d, add_special_tokens=False).ids) if loop
            else (lambda docs: [e.ids for e in n.encode_batch_fast(docs, add_special_tokens=False)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aliases", nargs="+", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--block", type=int, default=128, help="loop mode: texts per timed block (1: text by text)")
    args = ap.parse_args()
    docs = corpus()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"{len(docs)} paragraphs, {mb:.2f} MB; best of {args.repeat}, timed interleaved in blocks of {args.block} "
          "texts; ratio = tokkit time / peer time")
    print("loop = one text per call on one thread (tok.encode vs the peer's single-text call); "
          "batch = encode_batch vs the peer's batch call, library-default threads")
    print(f"{'alias':<9}{'tokkit path':<14}{'mode':<6}{'tokkit MB/s':>12}  {'peer':<22}{'peer MB/s':>10}{'ratio':>8}")
    for alias in args.aliases:
        tok = load_tokenizer(alias)
        path = tok.core
        mine = tok.encode_batch(docs)
        assert [tok.encode_ordinary(d) for d in docs] == mine, f"{alias}: encode_ordinary and encode_batch disagree"
        for loop in (True, False):
            others = peers(tok, loop)
            for name, fn in list(others.items()):
                got = [list(fn(d)) for d in docs] if loop else [list(x) for x in fn(docs)]
                bad = sum(x != y for x, y in zip(got, mine))
                if loop and name.split()[0] in ("quicktok", "bpe-openai", "fastokens"):  # and tokkit's self-check sample
                    bad += sum(list(fn(t)) != tok.encode_ordinary(t) for t in SAMPLE)
                if bad and name.split()[0] in ("quicktok", "bpe-openai", "fastokens"):  # not exact here: not a peer
                    print(f"{alias:<9}{path:<14}{'loop':<6}{'':>12}  {name:<22}  ids differ on {bad} of {len(docs)} texts: not timed")
                    del others[name]
                    continue
                assert not bad, f"{alias}: tokkit and {name} disagree on {bad} texts"
            if loop:
                others["tokkit encode_ordinary"] = tok.encode_ordinary
            if loop:  # tokkit against one peer at a time: each call follows the other side's, never a third's
                times = {}
                for name, fn in others.items():
                    pair = per_text({"tokkit": tok.encode, name: fn}, docs, args.repeat, args.block)
                    times[name], times[f"tokkit vs {name}"] = pair[name], pair["tokkit"]
            else:
                times = best_of({"tokkit": lambda: tok.encode_batch(docs),
                                 **{name: (lambda fn=fn: fn(docs)) for name, fn in others.items()}}, args.repeat)
            for name in others:
                t_ours, t_peer = times.get(f"tokkit vs {name}", times.get("tokkit")), times[name]
                print(f"{alias:<9}{path:<14}{'loop' if loop else 'batch':<6}{mb / t_ours:>12.2f}  {name:<22}"
                      f"{mb / t_peer:>10.2f}{t_ours / t_peer:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
