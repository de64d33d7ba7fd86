"""tiktoken's special-token arguments, for every backend: which special strings in a text become special tokens.

The rule is tiktoken's ``Encoding.encode`` (``tiktoken/core.py``), whatever library encodes:

* ``allowed_special``: a set of special-token strings, or ``"all"``; ``disallowed_special``: a set, or
  ``"all"`` (the default), which means every special string *not* allowed;
* a disallowed string anywhere in the text raises :class:`~tokkit.errors.SpecialTokenError`, also when
  the same string is allowed too (an explicit set in both arguments: tiktoken raises);
* an explicit ``disallowed_special`` set checks only its own strings (``{"<|fim_middle|>"}`` lets
  ``<|endoftext|>`` through as text);
* allowed strings found in the text are encoded as their special ids, every other special string as
  ordinary text. The text is scanned as tiktoken's core scans it: the leftmost special string; if it
  is not allowed, the scan resumes one character after its start (:meth:`SpecialPolicy.split`).

"Special strings" are those of :attr:`tokkit.vocab.TextVocab.specials`: tiktoken's ``special_tokens_set``,
sentencepiece's control and unknown pieces, HF added tokens flagged special plus control-like added
tokens (Qwen's ``<think>``, Gemma's ``<unused0>``; :func:`tokkit.formats.hf_json.control_like`).
:func:`special_ids` is a different set, the one ``decode(skip_special_tokens=True)`` drops: what the
reference library marks special.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Iterator, Literal

from tokkit.errors import SpecialTokenError

__all__ = ["SpecialPolicy", "Spec", "Plan", "ORDINARY", "special_ids"]

Spec = AbstractSet[str] | Literal["all"]


@dataclass(frozen=True)
class Plan:
    """What to do with one text: ``special`` = the special strings in it to encode as special tokens;
    ``text_too`` = other special strings in it are to be encoded as ordinary text."""

    special: frozenset[str]
    text_too: bool


_NONE = Plan(frozenset(), False)
#: ``encode_ordinary``: every special string is text.
ORDINARY = Plan(frozenset(), True)


@dataclass(frozen=True)
class SpecialPolicy:
    """The special strings of one tokenizer and tiktoken's rule over them (module docstring)."""

    texts: frozenset[str]
    name: str = ""
    _re: Any = field(init=False, repr=False, compare=False)
    starts: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        texts = sorted((t for t in self.texts if t), key=lambda t: (-len(t), t))  # longest first, as HF matches
        object.__setattr__(self, "_re", re.compile("|".join(map(re.escape, texts))) if texts else None)
        object.__setattr__(self, "starts", tuple(sorted({t[0] for t in texts})))

    def may_hold(self, text: str) -> bool:
        """False when ``text`` cannot hold a special string (one C-level ``in`` per distinct first character)."""
        for c in self.starts:
            if c in text:
                return True
        return False

    def found(self, text: str) -> set[str]:
        """The special strings ``text`` holds (non-overlapping, leftmost-longest)."""
        return set(self._re.findall(text)) if self._re is not None and self.may_hold(text) else set()

    def plan(self, text: str, allowed: Spec = frozenset(), disallowed: Spec | tuple[()] = "all") -> Plan:
        """tiktoken's decision for ``text``: raise on a disallowed string, else the :class:`Plan`."""
        if self._re is None or not self.may_hold(text):
            return _NONE
        allow = self.texts if allowed == "all" else frozenset(allowed)
        if disallowed == "all":  # every special string not allowed
            found = self.found(text)
            bad, both = found - allow, frozenset()
        else:  # an explicit set checks only its own strings
            bad = {t for t in disallowed if t in text}
            both = bad & allow
            if bad:
                self._raise(bad, both=both)
            if not allow:
                return ORDINARY  # nothing is allowed: every special string in the text is text
            found = self.found(text)
        if bad:
            self._raise(bad, both=both)
        special = frozenset(found & allow)
        return Plan(special, bool(found - special))

    def _raise(self, bad: set[str], *, both: AbstractSet[str]) -> None:
        shown = sorted(bad)
        if both:
            raise SpecialTokenError(
                f"text contains special-token string(s) {sorted(both)} of {self.name} that are in both allowed_special "
                "and disallowed_special; expected each string in at most one of them (tiktoken raises too). "
                "Remove it from disallowed_special to encode it as a special token")
        raise SpecialTokenError(
            f"text contains special-token string(s) {shown} of {self.name}; expected plain text. "
            f"Pass allowed_special={set(shown)!r} (or 'all') to encode them as special tokens, "
            "disallowed_special=() to encode them as text, or remove them from the text")

    def split(self, text: str, special: AbstractSet[str]) -> Iterator[tuple[str, bool]]:
        """``(piece, is_special)`` in order, cutting ``text`` at the strings of ``special`` only, as
        tiktoken's core scans: a special string that is not in ``special`` is text, and the scan resumes
        one character after its start."""
        pos = find = 0
        while self._re is not None and special:
            m = self._re.search(text, find)
            if m is None:
                break
            if m.group() not in special:
                find = m.start() + 1
                continue
            if m.start() > pos:
                yield text[pos:m.start()], False
            yield m.group(), True
            pos = find = m.end()
        if pos < len(text):
            yield text[pos:], False


def special_ids(backend: str, native: Any, vocab: Any) -> frozenset[int]:
    """The ids ``decode(skip_special_tokens=True)`` drops: the ones the reference library marks special.

    HF files: added tokens flagged ``special`` (``tokenizers`` and transformers skip exactly these; Qwen's
    ``<think>`` and Gemma's 6,246 unflagged added tokens stay); sentencepiece: control and unknown pieces
    (transformers' ``all_special_ids`` of the converted tokenizer); tiktoken and Tekken: the special tokens.
    """
    if backend in ("hf", "gguf"):
        return frozenset(i for i, t in native.get_added_tokens_decoder().items() if t.special)
    return frozenset(s.id for s in vocab.specials)
