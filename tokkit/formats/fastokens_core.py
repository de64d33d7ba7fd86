"""fastokens as the plain-text core: built from the same file or ranks, used only where it passes the self-check.

fastokens (PyPI, Apache-2.0, crusoecloud/fastokens) runs ``tokenizer.json`` byte-level BPE with PCRE2
JIT pre-tokenizers and specialised scanners for the common split patterns; on one paragraph per call it
runs at 2-9x tiktoken's core and about 2x quicktok-v1 here (``benchmarks/encode_speed.py``). It is a
second implementation, so tokkit treats it exactly as it treats quicktok (:mod:`tokkit.formats.fast_core`):
its ids on the load-time self-check sample (:data:`tokkit.formats.fast_bpe_check.SAMPLE`) must equal
the reference core's, or it is not used.

Two ways in:

* an HF ``tokenizer.json`` (``from_file``): fastokens reads the same normalizer and pre-tokenizer as
  HF ``tokenizers``; only text without added tokens reaches it (``Tokenizer._plain`` / the hot path).
* tiktoken ranks (the OpenAI encodings, Tekken, tiktoken files): the ranks are written once as a
  ``.tiktoken`` file under ``$TOKKIT_HOME/fastokens/<key>.tiktoken`` and read with ``from_tiktoken``.
  tiktoken spells cl100k's and GPT-2's split patterns with possessive quantifiers and ``\\s++$``;
  :data:`RESPELL` gives fastokens the HF spelling of the same grammar (Llama 3's file carries cl100k's
  pattern in that form), which its fast scanner recognises (PCRE2 on tiktoken's spelling runs at a
  third of the speed). GPT-2's grammar is fast only as the ByteLevel pre-tokenizer's built-in regex
  (24 MB/s as a pattern, 129 as ByteLevel), so those encodings (gpt2, r50k, p50k) go in as the HF
  ``tokenizer.json`` that ``Tokenizer.to_hf`` writes, with that pre-tokenizer
  (:func:`fastokens_from_json`). The self-check holds the cases where the spellings could part
  (trailing whitespace, contractions, newline runs).

fastokens' segment cache (chat traffic) stays off: nothing here turns it on, and it is documented to
give identical ids when on.
"""

from __future__ import annotations

import base64
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["fastokens_available", "native_of", "fastokens_from_file", "fastokens_from_json", "fastokens_from_ranks", "RESPELL", "GPT2_HF"]

log = logging.getLogger(__name__)

_CL100K_HF = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
GPT2_HF = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

#: tiktoken's spelling of a split pattern -> the HF spelling of the same grammar (module docstring).
RESPELL: dict[str, str] = {
    # cl100k, tiktoken >= 0.8 and before
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""": _CL100K_HF,
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""": _CL100K_HF,
    # gpt2 / r50k / p50k, tiktoken >= 0.8 and before
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""": GPT2_HF,
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""": GPT2_HF,
}


def fastokens_available() -> bool:
    """fastokens imports (it has no wheel for Linux on ARM; tokkit then stays on its other cores)."""
    try:
        import fastokens  # noqa: F401
    except ImportError:
        return False
    return True


def _ids(native: object) -> Callable[[str], list[int]]:
    """``text -> ids`` over fastokens' ``encode_ordinary`` (it returns an Encoding; ``.ids`` is the list)."""
    encode = native.encode_ordinary  # type: ignore[attr-defined]

    def encode_ordinary(text: str) -> list[int]:
        return encode(text).ids

    encode_ordinary._fastokens_native = encode  # type: ignore[attr-defined]  # for native_of
    return encode_ordinary


def native_of(encoder: Callable[[str], list[int]]) -> Callable[[str], Any] | None:
    """fastokens' ``encode_ordinary`` under an encoder of :func:`_ids` (it returns an Encoding: ``.ids``
    is the list), or None for any other encoder. ``Tokenizer.encode`` calls it directly."""
    return getattr(encoder, "_fastokens_native", None)


def _load(what: str, make: Callable[[Any], Any]) -> Callable[[str], list[int]] | None:
    """``make(fastokens.Tokenizer)``'s plain-text encoder, its truncation and padding off (a file's own
    settings would change the ids), or None with the reason logged: anything a native loader cannot
    read only means "not this core". Its stderr (a Rust panic's backtrace) is kept off the terminal."""
    if not fastokens_available():
        return None
    import fastokens

    from tokkit.native_calls import captured_stderr

    try:
        with captured_stderr():
            native = make(fastokens.Tokenizer)
            native.no_truncation()
            native.no_padding()
    except BaseException as e:  # noqa: BLE001 - native loaders raise anything, panics included
        if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        log.info("fastokens could not load %s (%s: %s)", what, type(e).__name__, str(e)[:120])
        return None
    return _ids(native)


def fastokens_from_file(path: str | os.PathLike[str]) -> Callable[[str], list[int]] | None:
    """fastokens' plain-text encoder for an HF ``tokenizer.json``, or None when it cannot load it."""
    return _load(str(path), lambda t: t.from_file(str(path)))


def fastokens_from_json(text: str) -> Callable[[str], list[int]] | None:
    """fastokens' plain-text encoder for a ``tokenizer.json`` given as a string, or None."""
    return _load("this tokenizer.json", lambda t: t.from_json_str(text))


def _rank_file(ranks: Mapping[bytes, int], pattern: str) -> Path:
    """The ranks as a ``.tiktoken`` file (base64 token, space, rank per line), written once, atomically."""
    from tokkit.config import tokkit_home
    from tokkit.formats.fast_bpe_check import ranks_key, write_cache_file

    path = tokkit_home() / "fastokens" / f"{ranks_key(pattern.encode(), ranks)}.tiktoken"
    if not path.exists():
        lines = (base64.b64encode(t) + b" " + str(r).encode() for t, r in sorted(ranks.items(), key=lambda kv: kv[1]))
        write_cache_file(path, b"\n".join(lines) + b"\n")
    return path


def fastokens_from_ranks(*, ranks: Mapping[bytes, int], pattern: str, allow_offset: bool = False
                         ) -> Callable[[str], list[int]] | None:
    """fastokens' plain-text encoder for tiktoken ranks and split pattern (no special tokens: plain text
    only), or None when fastokens is missing or cannot build it. fastokens wants ranks from 0; ranks that
    start higher (Tekken's, after 1,000 special ids) are built shifted and shifted back per id in Python
    when ``allow_offset`` (slower: only for text no other core can take), else refused."""
    if not fastokens_available() or not ranks:
        return None
    offset = min(ranks.values())
    if offset and not allow_offset:
        return None
    try:
        path = _rank_file({t: r - offset for t, r in ranks.items()} if offset else ranks, pattern)
    except OSError as e:
        log.info("fastokens: cannot write the rank file (%s)", e)
        return None
    encode = _load("these ranks", lambda t: t.from_tiktoken(str(path), pattern=RESPELL.get(pattern, pattern), special_tokens={}))
    if encode is None or not offset:
        return encode

    def shifted(text: str) -> list[int]:
        return [i + offset for i in encode(text)]

    return shifted
