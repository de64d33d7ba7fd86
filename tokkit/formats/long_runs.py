"""Text with a very long whitespace run: tiktoken's core overflows its regex stack on it, so it goes elsewhere.

tiktoken's Rust core (fancy-regex) panics with ``RuntimeError(StackOverflow)`` on a run of about
1,000,000 whitespace characters (999,999 spaces, tabs or ideographic spaces on Qwen's pattern; every
byte-level pattern tokkit ships has such a text: cl100k and GPT-2 on spaces before a letter, o200k and
the HF patterns on spaces alone), and pyo3 raises that as ``PanicException`` with a Rust backtrace on
stderr. A corpus line of padding or a whitespace-filled dump is enough. tokkit never hands such text
to it:

* :func:`has_long_run` finds a run of :data:`LONG_RUN` (100,000, a tenth of the observed limit)
  whitespace characters; it costs one length comparison for text shorter than that, and one linear
  scan otherwise (a run start is found once: the look-behind skips positions inside a run).
* HF files then take HF ``tokenizers``' own path (the reference, which handles any run).
* tiktoken encodings (no HF reference to fall back to) are cut at the special strings to encode as
  special tokens (``Tokenizer._encode_long``), and each plain piece is encoded by fastokens
  built on the same ranks (PCRE2 JIT, no stack limit), behind the same self-check as the fast path
  (:mod:`tokkit.formats.fast_core`). Without fastokens the text is refused with an error that names
  the run, instead of a panic.

Python's ``\\s`` is a superset of the Rust regexes' ``\\s`` (it adds U+001C..U+001F), so nothing
that could overflow the core is missed; a few texts that could not take the other path.
"""

from __future__ import annotations

import re

__all__ = ["LONG_RUN", "has_long_run", "long_run_error"]

#: Whitespace runs at least this long never reach tiktoken's core (module docstring).
LONG_RUN = 100_000
_RUN = re.compile(r"(?<!\s)\s{%d}" % LONG_RUN)


def has_long_run(text: str) -> bool:
    """True when ``text`` holds :data:`LONG_RUN` or more whitespace characters in a row."""
    return len(text) >= LONG_RUN and _RUN.search(text) is not None


def long_run_error(text: str, name: str) -> Exception:
    """The error for a long-run text that has no safe encoder here (fastokens not installed)."""
    from tokkit.errors import ResourceError

    m = _RUN.search(text)
    at = m.start() if m else 0
    return ResourceError(
        f"text holds a run of {LONG_RUN:,}+ whitespace characters (from character {at:,}); tiktoken's core, which "
        f"encodes {name} here, overflows its regex stack on runs of about 1,000,000. Install fastokens "
        "(`pip install fastokens`), which tokkit then uses for such text, or shorten the run")
