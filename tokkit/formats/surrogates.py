"""Lone surrogates in text: read as U+FFFD on every backend, by tiktoken's rule.

A Python ``str`` can hold the code points U+D800..U+DFFF, which no UTF-8 text can: they come from
``errors="surrogateescape"`` / ``"surrogatepass"`` decoding, or from a JSON ``\\ud83d`` escape split
from its pair. tiktoken reads such text through UTF-16 (``surrogatepass``) and back (``replace``): a
lone surrogate becomes U+FFFD, and a high and a low surrogate held as two code points become the one
character they encode. The other reference libraries refuse the text with a native error that does
not say why (HF ``tokenizers``: ``TypeError: TextInputSequence must be str``; sentencepiece: pybind11's
``RuntimeError: Unable to cast Python instance``), so one stray code point would stop a corpus job.
tokkit applies tiktoken's rule on every backend instead (the ids are tiktoken's where tiktoken is the
reference, and those of the text with U+FFFD elsewhere); ``encode(..., strict=True)`` refuses it
(:func:`surrogate_error`). Nothing is scanned on the usual path: the encoders retry this way only
after a native refusal, and the offsets call (whose positions must refer to the caller's text)
checks non-ASCII text once.
"""

from __future__ import annotations

import re

from tokkit.errors import UnencodableBytesError

__all__ = ["find_surrogate", "tiktoken_reading", "without_surrogates", "map_offsets", "surrogate_error"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def find_surrogate(text: str) -> int | None:
    """Index of the first surrogate code point in ``text``, or None (ASCII text: no scan)."""
    if text.isascii():
        return None
    m = _SURROGATE.search(text)
    return None if m is None else m.start()


def without_surrogates(text: str) -> str | None:
    """``text`` as tiktoken reads it (module docstring), or None when it holds no surrogate."""
    if find_surrogate(text) is None:
        return None
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def tiktoken_reading(text: str) -> tuple[str, list[int] | None]:
    """``(text as tiktoken reads it, starts)``: ``starts[i]`` is where the read text's character ``i``
    begins in ``text`` (one entry more: ``len(text)``), or None when the two align one to one (no
    surrogate pair was joined). ``text`` itself and None when it holds no surrogate."""
    read = without_surrogates(text)
    if read is None or len(read) == len(text):
        return (text if read is None else read), None
    starts, i = [], 0
    while i < len(text):
        starts.append(i)
        pair = "\ud800" <= text[i] <= "\udbff" and i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff"
        i += 2 if pair else 1
    starts.append(len(text))
    if len(starts) != len(read) + 1:  # UTF-16 decoding joined or split otherwise than assumed: never silently off
        raise AssertionError(f"surrogate map: {len(starts) - 1} characters for {len(read)}")
    return read, starts


def map_offsets(offsets: list[tuple[int, int]], starts: list[int] | None) -> list[tuple[int, int]]:
    """Character offsets into the read text (:func:`tiktoken_reading`) as offsets into the original."""
    if starts is None:
        return offsets
    return [(starts[s], starts[e]) for s, e in offsets]


def surrogate_error(text: str, at: int, name: str) -> UnencodableBytesError:
    """The refusal of ``strict=True`` for text holding a surrogate code point at ``at``."""
    return UnencodableBytesError(
        f"text holds the surrogate code point U+{ord(text[at]):04X} at character {at}, which no UTF-8 text can hold, so "
        f"{name} cannot encode it exactly; expected valid Unicode text. Fix the text's decoding (a surrogateescape/"
        "surrogatepass decode, a JSON escape split from its pair), or encode without strict=True to read it as "
        "U+FFFD as tiktoken does")
