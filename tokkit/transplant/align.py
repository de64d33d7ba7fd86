"""Align two vocabularies on exact bytes (any tokenizer family) and special tokens by role.

A destination token matches a source token when their **bytes** are equal, whatever the spelling:
GPT-2's byte map (``Ġthe``), SentencePiece's word marker (``▁the``) and byte fallback (``<0x0A>``)
all become the same bytes in :class:`~tokkit.vocab.TextVocab` (``b" the"``, ``b"\\n"``). mergekit
strips only ``Ġ``/``▁`` and TokenAdapt compares raw strings, both undercounting cross-family
overlap (tokenkit reports 85,699 vs 25,632 shared tokens for Gemma-2/Llama-3).

Special tokens are matched by literal text first, then role by role (``bos``, ``eos``, ``pad``,
``unk``, ``eot``, ``chat``, ...), pairing the i-th id of a role in one vocab with the i-th in the
other, so list-valued roles are never collapsed onto one id (mergekit defect §1.4-5). Tokens with
no counterpart are ``new`` (reconstructed by a method) or ``special_unmatched``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum

from tokkit.vocab import TextVocab

__all__ = ["Match", "Alignment", "align_vocabs", "canonical_index"]

#: Roles that identify a token's function; ``control`` (unknown role) is matched by text only.
MAPPED_ROLES = ("bos", "eos", "pad", "unk", "mask", "sep", "cls", "eot", "chat", "fim", "tool", "image")


class Match(str, Enum):
    """How a destination row is obtained (the provenance report's ``kind``)."""

    COPIED = "copied"  # same bytes, same spelling family
    BYTE_MATCHED = "byte_matched"  # same bytes, spelled differently (Ġ / ▁ / <0xNN>)
    SPECIAL_TEXT = "special_text"  # special token with the same literal text
    SPECIAL_ROLE = "special_role"  # special token with the same role (bos <-> bos ...)
    SPECIAL_UNMATCHED = "special_unmatched"  # special token with no counterpart: fallback init
    NEW = "new"  # reconstructed by the method
    UNUSED = "unused"  # id with no token: zero row


@dataclass(frozen=True)
class Alignment:
    """Per destination id: the matched source id (or -1) and how it matched.

    Attributes:
        src: the base model's vocabulary.
        dst: the new vocabulary.
        source_id: ``source_id[i]`` is the source id copied into destination row ``i``, or -1.
        kind: ``kind[i]`` is the :class:`Match` of destination id ``i``.
    """

    src: TextVocab
    dst: TextVocab
    source_id: tuple[int, ...]
    kind: tuple[Match, ...]

    def ids(self, *kinds: Match) -> list[int]:
        """Destination ids whose kind is one of ``kinds``, ascending."""
        want = set(kinds)
        return [i for i, k in enumerate(self.kind) if k in want]

    @property
    def new_ids(self) -> list[int]:
        return self.ids(Match.NEW)

    def anchors(self) -> tuple[list[int], list[int]]:
        """Shared ordinary tokens: (destination ids, source ids), the dictionary of OMP."""
        d = self.ids(Match.COPIED, Match.BYTE_MATCHED)
        return d, [self.source_id[i] for i in d]

    def counts(self) -> dict[str, int]:
        c = Counter(k.value for k in self.kind)
        return {m.value: c.get(m.value, 0) for m in Match}

    def holding_out(self, dst_ids: list[int]) -> "Alignment":
        """A copy where the anchors ``dst_ids`` are marked new (the held-out-anchor check)."""
        kind = list(self.kind)
        sid = list(self.source_id)
        for i in dst_ids:
            kind[i], sid[i] = Match.NEW, -1
        return Alignment(self.src, self.dst, tuple(sid), tuple(kind))


def _match_specials(src: TextVocab, dst: TextVocab) -> dict[int, tuple[int, Match]]:
    out: dict[int, tuple[int, Match]] = {}
    src_by_text = {}
    for s in src.specials:
        src_by_text.setdefault(s.text, s.id)
    used: set[int] = set()
    for s in dst.specials:
        if s.text in src_by_text:
            out[s.id] = (src_by_text[s.text], Match.SPECIAL_TEXT)
            used.add(src_by_text[s.text])
    src_roles, dst_roles = src.roles, dst.roles
    for role in MAPPED_ROLES:
        free = [i for i in src_roles.get(role, ()) if i not in used]
        todo = [i for i in dst_roles.get(role, ()) if i not in out]
        for d_id, s_id in zip(todo, free):
            out[d_id] = (s_id, Match.SPECIAL_ROLE)
    # an end token matches across eos/eot naming (Llama-3 <|eot_id|> vs </s>) when nothing else did
    for a, b in (("eos", "eot"), ("eot", "eos")):
        free = [i for i in src_roles.get(b, ()) if i not in {v[0] for v in out.values()}]
        todo = [i for i in dst_roles.get(a, ()) if i not in out]
        for d_id, s_id in zip(todo, free):
            out[d_id] = (s_id, Match.SPECIAL_ROLE)
    return out


def canonical_index(vocab: TextVocab) -> dict[bytes, int]:
    """Bytes -> id of ordinary tokens, preferring a real piece over its ``<0xNN>`` byte-fallback twin.

    SentencePiece vocabularies hold ``a`` and ``<0x61>`` with equal bytes, and the fallback id is
    usually the lower one; its row is barely trained, so matching bytes to it would replace the
    model's ``' '``, ``'.'`` and ``'e'`` rows with near-untrained ones.
    """
    fallback = set(vocab.byte_fallback_ids)
    skip = vocab.special_ids | vocab.unused_ids
    out: dict[bytes, int] = {}
    for i, t in enumerate(vocab.tokens):
        if t and i not in skip and i not in fallback:
            out.setdefault(t, i)
    for i in vocab.byte_fallback_ids:  # bytes with no real piece
        out.setdefault(vocab.tokens[i], i)
    return out


def align_vocabs(src: TextVocab, dst: TextVocab) -> Alignment:
    """Match every destination id to a source id by bytes (ordinary tokens) or text/role (specials).

    A destination byte-fallback token maps to the source's byte-fallback token of the same byte when
    the source has them (same spelling), else to the source's piece with that byte.
    """
    specials = _match_specials(src, dst)
    index = canonical_index(src)
    dst_byte = {i: b for b, i in enumerate(dst.byte_fallback_ids)}
    dst_special = dst.special_ids
    dst_fallback = set(dst.byte_fallback_ids)
    src_fallback = set(src.byte_fallback_ids)
    same_family = src.family == dst.family
    sid: list[int] = []
    kind: list[Match] = []
    for i, tok in enumerate(dst.tokens):
        if i in dst_special:
            s, m = specials.get(i, (-1, Match.SPECIAL_UNMATCHED))
        elif i in dst.unused_ids or not tok:
            s, m = -1, Match.UNUSED
        else:
            j = src.byte_fallback_ids[dst_byte[i]] if (i in dst_byte and src.byte_fallback_ids) else index.get(tok)
            if j is None:
                s, m = -1, Match.NEW
            else:
                exact = same_family and (i in dst_fallback) == (j in src_fallback)
                s, m = j, Match.COPIED if exact else Match.BYTE_MATCHED
        sid.append(s)
        kind.append(m)
    return Alignment(src, dst, tuple(sid), tuple(kind))
