"""Character offsets per token: ``(start, end)`` into the text, as HF's ``offset_mapping``.

The rule, every backend: a token spans every character any of its bytes belongs to, so the tokens
of one character cut into several (an emoji's four bytes) all get that character's span, and a
token that starts inside a character starts at that character (tiktoken's ``decode_with_offsets``
rule for the start). Tokens added by ``add_special_tokens`` (BOS) get ``(0, 0)``.

* HF files: the offsets ``tokenizers`` computes for the same ids (HF's ``offset_mapping``, native),
  from the HF tokenizer that encodes the text's special strings as the plan says.
* sentencepiece: the offsets of the exact HF conversion (:meth:`tokkit.tokenizer.Tokenizer.to_hf`:
  what transformers' fast tokenizer gives), segment by segment between special tokens; sentencepiece's
  own offsets give a cut character only to its last byte piece.
* tiktoken and Tekken: from the token bytes (:func:`byte_offsets`), relative to ``decode(ids)``, which
  is the text itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokkit.formats.special_policy import Plan
    from tokkit.tokenizer import Tokenizer

__all__ = ["byte_offsets", "char_starts", "encode_with_offsets"]

_CONT = bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes


def byte_offsets(pieces: list[bytes], base: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of consecutive token byte strings (the module's rule)."""
    out, n = [], base
    for tb in pieces:
        start = n - 1 if tb and 0x80 <= tb[0] < 0xC0 and n > base else n
        n += len(tb.translate(None, _CONT))  # characters whose first byte is in this token
        out.append((start, max(n, start + 1) if tb else start))
    return out


def char_starts(pieces: list[bytes]) -> list[int]:
    """tiktoken's ``decode_with_offsets`` starts: the character each token begins in."""
    return [s for s, _ in byte_offsets(pieces)]


def encode_with_offsets(tok: "Tokenizer", text: str, plan: "Plan", add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
    """``(ids, offsets)`` of ``text`` under ``plan`` (ids equal to ``tok.encode``'s)."""
    b = tok.backend
    if b in ("hf", "gguf"):
        if plan.special and plan.text_too:
            ids, offsets = tok._segments.hf_mixed(text, plan.special, add_special_tokens)
        else:
            enc = (tok.native if not plan.text_too else tok._hf_variant(plan.special)).encode(text, add_special_tokens=add_special_tokens)
            ids, offsets = list(enc.ids), list(enc.offsets)
    elif b == "spm":
        ids, offsets = tok._segments.with_offsets(text, plan)
        if add_special_tokens and tok.native.bos_id() >= 0:
            ids, offsets = [tok.native.bos_id(), *ids], [(0, 0), *offsets]
    else:
        ids = tok._encode_plan(text, plan, False)
        offsets = byte_offsets(tok._decoder.tokens_bytes(ids))
    bos = tok._reference_bos if add_special_tokens else None
    if bos is not None:  # prepended always, as the references do (Tokenizer._reference_bos)
        ids, offsets = [bos, *ids], [(0, 0), *offsets]
    return ids, offsets
