"""Text cut at special tokens: sentencepiece, and HF files when only some special strings are allowed.

sentencepiece encodes a special string such as ``</s>`` as ordinary text, so :class:`Segments` cuts
the text at the special strings the plan allows (:meth:`tokkit.formats.special_policy.SpecialPolicy.split`)
and encodes each piece between them as sentencepiece encodes a text, dummy-prefix space included:
what mistral-common does with the text between control tokens, what the HF files of Llama 2 and
Mistral do (their ``Prepend`` normalizer runs on every piece between added tokens; transformers'
default ``legacy=True``), and so what ``Tokenizer.save``'s export gives in transformers. The exact HF
conversion gives the offsets. :attr:`Segments.no_prefix` (the conversion without the prefix,
:func:`tokkit.reachability.without_dummy_prefix`) encodes a continuation for callers that glue
pieces of one text (``Tokenizer._encode_batch_no_prefix``).

An HF file encodes every added token it knows; when a text holds allowed special strings *and* special
strings to keep as text, :meth:`Segments.hf_mixed` cuts the text at the allowed ones and encodes the
pieces with the HF encoder that keeps every special string as text. That is what ``tokenizers`` does
itself (it cuts at added tokens first, then normalizes and pre-tokenizes each piece), except where a
pre-tokenizer adds its prefix only at the start of the text (``prepend_scheme: first``): such files,
and post-processors other than fixed affixes, get an HF copy that matches only the allowed strings
(a full rebuild of the tokenizer: seconds for Gemma's).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokkit.formats.special_policy import Plan
    from tokkit.tokenizer import Tokenizer

__all__ = ["Segments"]


class Segments:
    """Encoders for the pieces of a text between special tokens (module docstring)."""

    def __init__(self, tok: "Tokenizer") -> None:
        self.tok = tok

    @cached_property
    def no_prefix(self) -> Any:
        """The HF encoder of a continuation: no dummy-prefix space, special strings as text."""
        from tokkit.reachability import without_dummy_prefix

        hf = without_dummy_prefix(self.tok.to_hf())
        hf.encode_special_tokens = True
        return hf

    @cached_property
    def first(self) -> Any:
        """The exact HF conversion, special strings as text (the first piece, for its offsets)."""
        hf = self.tok.to_hf()
        hf.encode_special_tokens = True
        return hf

    def encode(self, text: str, special: frozenset[str]) -> list[int]:
        """Ids of ``text`` with the strings of ``special`` as special tokens."""
        by_text = {s.text: s.id for s in self.tok.vocab.specials}
        ids: list[int] = []
        encode = self.tok.native.encode
        for piece, is_special in self.tok._policy.split(text, special):
            ids += [by_text[piece]] if is_special else encode(piece)
        return ids

    def with_offsets(self, text: str, plan: "Plan") -> tuple[list[int], list[tuple[int, int]]]:
        """``(ids, offsets)`` of :meth:`encode`, offsets from the HF conversion, shifted per piece."""
        by_text = {s.text: s.id for s in self.tok.vocab.specials}
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        pos = 0
        for piece, is_special in self.tok._policy.split(text, plan.special):
            if is_special:
                ids.append(by_text[piece])
                offsets.append((pos, pos + len(piece)))
            else:
                enc = self.first.encode(piece, add_special_tokens=False)
                ids += enc.ids
                offsets += [(s + pos, e + pos) for s, e in enc.offsets]
            pos += len(piece)
        return ids, offsets

    @cached_property
    def _hf_affixes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        from tokkit.formats.fast_bpe import _affixes

        n = self.tok.native
        pre = n.pre_tokenizer
        if pre is not None and b'"first"' in pre.__getstate__():
            return None  # the prefix depends on where a piece sits in the text
        post = n.post_processor
        return _affixes(json.loads(post.__getstate__()) if post is not None else None)

    def hf_mixed(self, text: str, special: frozenset[str], add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
        """``(ids, offsets)`` of an HF file's encoding with only the strings of ``special`` matched."""
        affixes = self._hf_affixes
        if affixes is None:
            enc = self.tok._hf_variant(special).encode(text, add_special_tokens=add_special_tokens)
            return list(enc.ids), list(enc.offsets)
        by_text = {s.text: s.id for s in self.tok.vocab.specials}
        ordinary = self.tok._hf_variant(frozenset())
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        pos = 0
        for piece, is_special in self.tok._policy.split(text, special):
            if is_special:
                ids.append(by_text[piece])
                offsets.append((pos, pos + len(piece)))
            else:
                enc = ordinary.encode(piece, add_special_tokens=False)
                ids += enc.ids
                offsets += [(s + pos, e + pos) for s, e in enc.offsets]
            pos += len(piece)
        if add_special_tokens:
            pre, suf = affixes
            ids, offsets = [*pre, *ids, *suf], [*[(0, 0)] * len(pre), *offsets, *[(0, 0)] * len(suf)]
        return ids, offsets
