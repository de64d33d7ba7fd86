"""The shared vocabulary interface: a text vocab is an id-indexed tuple of byte strings.

minbpe (``vocab: int -> bytes``), tiktoken (``token_byte_values()``) and genlm-bytes
(``TokenByteTrie(decode: list[bytes])``) converged on this representation; every tokkit domain
package (training, transplantation, byte-level LMs) works on it, and an image codebook is a
:class:`CodebookVocab` with ids only. This module is torch-free.

Special tokens are explicit: each has an id, its literal text and an optional role (``bos``,
``eos``, ``pad``, ``unk``, ``chat``, ``fim``, ...). A role can name several ids (Llama-3 has two
end-of-turn tokens), so roles map to tuples and are never collapsed to one id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable

from tokkit.errors import VocabMismatchError

__all__ = ["Vocab", "SpecialToken", "TextVocab", "CodebookVocab", "VocabReport", "ROLES"]

#: The special-token roles tokkit knows. ``control`` is a special token with no known role.
ROLES = ("bos", "eos", "pad", "unk", "mask", "sep", "cls", "eot", "chat", "fim", "tool", "image", "control")


@runtime_checkable
class Vocab(Protocol):
    """Anything with ids ``0..len(vocab)-1`` and a set of special ids (text or image)."""

    def __len__(self) -> int: ...

    @property
    def special_ids(self) -> frozenset[int]: ...


@dataclass(frozen=True)
class SpecialToken:
    """One special (control or added) token: its id, literal text and role (see :data:`ROLES`)."""

    id: int
    text: str
    role: str = "control"


@dataclass(frozen=True)
class VocabReport:
    """What a vocabulary holds that a naive user of it would get wrong.

    Attributes:
        duplicates: groups of non-special ids whose byte strings are equal (SentencePiece byte
            fallback ``<0x61>`` vs ``a``); each group sorted, the canonical id first where known.
        unused_ids: ids with no token at all (holes in tiktoken's id space, GGUF ``UNUSED``).
        unreachable_ids: ids the tokenizer never emits for their own bytes (filled in by
            :meth:`tokkit.tokenizer.Tokenizer.report`, which can run the encoder).
        unencodable_bytes: byte values that occur in no ordinary token: text containing them
            cannot be encoded exactly (SmolLM2's GGUF vocabulary: 21, e.g. 0x16; encoders drop them).
    """

    duplicates: tuple[tuple[int, ...], ...] = ()
    unused_ids: tuple[int, ...] = ()
    unreachable_ids: tuple[int, ...] = ()
    unencodable_bytes: tuple[int, ...] = ()


@dataclass(frozen=True)
class TextVocab:
    """An id-indexed sequence of byte strings plus special tokens.

    ``tokens[i]`` is exactly the byte string that token ``i`` contributes to decoded text (with
    ``▁`` mapped to a space, ``<0xNN>`` to the byte ``NN``, the GPT-2 byte map undone). Special
    tokens hold the UTF-8 of their literal text and are listed in ``specials``; unused ids hold
    ``b""`` and are listed in ``unused_ids``.

    Attributes:
        tokens: byte string of every id, ``len(tokens)`` is the vocabulary size.
        specials: the special tokens, sorted by id.
        family: how the source spells tokens: ``byte_level`` (GPT-2 map), ``sentencepiece``
            (``▁`` + ``<0xNN>``), ``tiktoken``, ``tekken``, ``wordpiece``, ``unigram``, ``chars``.
        name: a label for reports (alias or file name).
        byte_fallback_ids: ``byte_fallback_ids[b]`` is the id of the single-byte token for byte
            ``b`` when the family has ``<0xNN>`` tokens, else empty.
        unused_ids: ids with no token.
        strip_leading_space: the tokenizer's decoder drops one leading space (SentencePiece's
            dummy prefix), so decoded text starts without it.
    """

    tokens: tuple[bytes, ...]
    specials: tuple[SpecialToken, ...] = ()
    family: str = "byte_level"
    name: str = ""
    byte_fallback_ids: tuple[int, ...] = ()
    unused_ids: frozenset[int] = frozenset()
    strip_leading_space: bool = False
    _index: dict[bytes, int] = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.tokens)
        for s in self.specials:
            if not 0 <= s.id < n:
                raise VocabMismatchError(
                    f"special token {s.text!r} has id {s.id} but the vocab has {n} ids (0..{n - 1}); "
                    "fix the special-token list or pass the full token list"
                )
        if self.byte_fallback_ids and len(self.byte_fallback_ids) != 256:
            raise VocabMismatchError(
                f"byte_fallback_ids must list 256 ids (one per byte), found {len(self.byte_fallback_ids)}"
            )

    # ---------------------------------------------------------------- basic access
    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, token_id: int) -> bytes:
        return self.tokens[token_id]

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of all special tokens."""
        return frozenset(s.id for s in self.specials)

    @property
    def roles(self) -> Mapping[str, tuple[int, ...]]:
        """Role -> ids holding it (several ids per role are kept, in id order)."""
        out: dict[str, list[int]] = defaultdict(list)
        for s in self.specials:
            out[s.role].append(s.id)
        return {r: tuple(ids) for r, ids in out.items()}

    def role_id(self, role: str) -> int | None:
        """The first id with ``role``, or None (use :attr:`roles` for all of them)."""
        ids = self.roles.get(role, ())
        return ids[0] if ids else None

    def id_of(self, token: bytes) -> int | None:
        """The id of a non-special token with these bytes: among duplicates a real piece before its ``<0xNN>`` twin."""
        if self._index is None:
            index: dict[bytes, int] = {}
            fallback = set(self.byte_fallback_ids)
            for i in self.ordinary_ids():
                if i not in fallback:
                    index.setdefault(self.tokens[i], i)
            for i in self.byte_fallback_ids:
                index.setdefault(self.tokens[i], i)
            object.__setattr__(self, "_index", index)
        return self._index.get(token)

    def ordinary_ids(self) -> list[int]:
        """Ids that are neither special nor unused (the tokens that spell text)."""
        skip = self.special_ids | self.unused_ids
        return [i for i in range(len(self.tokens)) if i not in skip]

    # ---------------------------------------------------------------- report
    def report(self) -> VocabReport:
        """Duplicated byte strings and unused ids (reachability needs the encoder: see Tokenizer)."""
        groups: dict[bytes, list[int]] = defaultdict(list)
        for i in self.ordinary_ids():
            groups[self.tokens[i]].append(i)
        fallback = set(self.byte_fallback_ids)
        dups = []
        for ids in groups.values():
            if len(ids) > 1:
                # canonical first: a real piece before its <0xNN> fallback twin
                dups.append(tuple(sorted(ids, key=lambda i: (i in fallback, i))))
        return VocabReport(duplicates=tuple(sorted(dups)), unused_ids=tuple(sorted(self.unused_ids)),
                           unencodable_bytes=self.unencodable_bytes())

    def unencodable_bytes(self) -> tuple[int, ...]:
        """Byte values that no ordinary token contains (sorted); text holding one cannot be spelled."""
        seen = set()
        for i in self.ordinary_ids():
            seen.update(self.tokens[i])
        return tuple(b for b in range(256) if b not in seen)

    def summary(self) -> dict[str, object]:
        """A JSON-friendly description (size, family, specials by role)."""
        return {
            "name": self.name,
            "size": len(self),
            "family": self.family,
            "specials": [{"id": s.id, "text": s.text, "role": s.role} for s in self.specials],
            "byte_fallback": bool(self.byte_fallback_ids),
            "unused_ids": len(self.unused_ids),
        }


@dataclass(frozen=True)
class CodebookVocab:
    """An image (or any non-text) codebook: ids ``0..size-1`` and no byte strings.

    Attributes:
        size: number of codes.
        specials: reserved codes (pad / mask), with roles as for text.
        name: label for reports.
    """

    size: int
    specials: tuple[SpecialToken, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise VocabMismatchError(f"a codebook needs at least one code, found size={self.size}")

    def __len__(self) -> int:
        return self.size

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(s.id for s in self.specials)
