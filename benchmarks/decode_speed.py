"""tokkit's ``decode`` against the native libraries' ``decode``, side by side on the same ids, in one run.

    python benchmarks/decode_speed.py [--aliases cl100k llama3 ...] [--ids 125000] [--repeat 15] [--skip]

For each alias the ids are those of the paragraph corpus of ``benchmarks/encode_speed.py`` joined into
one text, cut to ``--ids`` ids. Peers, each decoding the same list:
  * tiktoken: the OpenAI encodings' own ``Encoding.decode``; for HF byte-level files a tiktoken
    ``Encoding`` built from the same ranks and added tokens (``tokkit.formats.fast_bpe.rank_parts``);
  * HF: ``tokenizers.Tokenizer.decode`` of the file (HF aliases);
  * sentencepiece: ``SentencePieceProcessor.decode`` (mistral).
Every peer's text is first checked equal to tokkit's (the HF peer with the same ``skip_special_tokens``).
Timed interleaved (one round calls each once, the order reversed every other round), GC off while
timing; prints ms per call (best of ``--repeat``) and the ratio tokkit time / peer time (target <= 1.1).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from encode_speed import corpus

from tokkit import load_tokenizer

DEFAULT = ["gpt2", "cl100k", "o200k", "tekken", "llama3", "qwen2", "smollm2", "llama2", "gemma3", "mistral"]


def best_of(fns: dict[str, object], repeat: int) -> dict[str, float]:
    best = {k: float("inf") for k in fns}
    order = list(fns)
    for r in range(repeat):
        for k in (order if r % 2 == 0 else order[::-1]):
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fns[k]()
                best[k] = min(best[k], time.perf_counter() - t0)
            finally:
                gc.enable()
    return best


def peers(tok, skip: bool) -> dict[str, object]:
    """name -> ``ids -> text`` of the native libraries for this alias."""
    n, out = tok.native, {}
    if tok.backend in ("tiktoken", "tiktoken_file", "tekken"):
        out["tiktoken"] = n.decode
    elif tok.backend in ("hf", "gguf"):
        if tok._fast is not None:
            import tiktoken

            from tokkit.formats.fast_bpe import rank_parts

            p = rank_parts(json.loads(Path(tok._src.path).read_text(encoding="utf-8")))
            raw = tiktoken.Encoding(name="raw", pat_str=p.pattern, mergeable_ranks=p.ranks,
                                    special_tokens={**p.specials, **p.plain_added})
            if not skip:
                out["tiktoken"] = raw.decode
        out["HF"] = lambda ids: n.decode(ids, skip_special_tokens=skip)
    elif tok.backend == "spm":
        out["sentencepiece"] = n.decode
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aliases", nargs="+", default=DEFAULT)
    ap.add_argument("--ids", type=int, default=125_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--skip", action="store_true", help="decode with skip_special_tokens=True")
    args = ap.parse_args()
    text = "\n\n".join(corpus())
    print(f"decode of {args.ids:,} ids per call, skip_special_tokens={args.skip}; best of {args.repeat}, "
          "timed interleaved; ratio = tokkit time / peer time")
    print(f"{'alias':<9}{'tokkit ms':>10}  {'peer':<15}{'peer ms':>9}{'ratio':>8}")
    for alias in args.aliases:
        tok = load_tokenizer(alias)
        ids = tok.encode_ordinary(text)[: args.ids]
        mine = tok.decode(ids, skip_special_tokens=args.skip)
        others = peers(tok, args.skip)
        for name, fn in others.items():
            got = fn(ids)
            assert got == mine, f"{alias}: tokkit and {name} decode differently"
        for name, fn in others.items():
            t = best_of({"tokkit": lambda: tok.decode(ids, skip_special_tokens=args.skip), name: lambda fn=fn: fn(ids)}, args.repeat)
            print(f"{alias:<9}{t['tokkit'] * 1e3:>10.2f}  {name:<15}{t[name] * 1e3:>9.2f}{t['tokkit'] / t[name]:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
