"""Chunks of a text on which two tokenizations agree: they end where both have a token boundary.

Minixhofer, Vulić, Ponti 2025 ("Universal Cross-Tokenizer Distillation via Approximate Likelihood
Matching", arXiv:2503.20083), as ``bminixhofer/tokenkit`` implements its ``alm_unconstrained`` mode
(``tokenkit/align.py`` ``get_alignment_indices``): every byte position where *both* segmentations of
the same text have a token boundary closes a chunk. A chunk's likelihood is the product of its
tokens' probabilities, so the two models' chunk likelihoods describe the same event ("this byte
string comes next") and can be compared although the tokenizers differ.

Tokens are byte strings (``TextVocab.tokens``: SentencePiece's ``▁`` is a space, ``<0xNN>`` a byte),
so the comparison is byte-exact. A tokenization whose bytes are not the text (a normalizer, an
unknown token) cannot be aligned and is reported as such (:func:`token_ends` returns None); one that
only adds SentencePiece's dummy-prefix space is shifted back by one byte.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from typing import Sequence

__all__ = ["Chunks", "token_ends", "common_chunks"]


def token_ends(tokens: Sequence[bytes], text: bytes) -> list[int] | None:
    """Byte offset in ``text`` where each token ends, or None when the tokens do not spell ``text``.

    A leading space that ``text`` lacks (SentencePiece's dummy prefix) is dropped: the first token's
    end moves back by one byte (it still covers the text's first bytes).
    """
    joined = b"".join(tokens)
    ends = list(accumulate(len(t) for t in tokens))
    if joined == text:
        return ends
    if joined == b" " + text:
        return [max(e - 1, 0) for e in ends]
    return None


@dataclass(frozen=True)
class Chunks:
    """Chunk index of every token on both sides of one text.

    Attributes:
        student: ``student[t]`` = chunk of student token ``t`` (non-decreasing, ``0..n-1``).
        teacher: ``teacher[t]`` = chunk of teacher token ``t``.
        n: number of chunks; every chunk holds at least one token on each side.
    """

    student: tuple[int, ...]
    teacher: tuple[int, ...]
    n: int


def common_chunks(student_ends: Sequence[int], teacher_ends: Sequence[int]) -> Chunks:
    """Group tokens into the smallest chunks whose ends are boundaries on both sides.

    Args:
        student_ends: non-decreasing end offsets of the student's tokens (same text as the teacher's).
        teacher_ends: the teacher's.

    Returns:
        :class:`Chunks`. Zero-length tokens join the chunk of the token before them (the first chunk
        when they lead). Both sides must end at the same offset (the text's length).
    """
    if not student_ends or not teacher_ends:
        return Chunks((), (), 0)
    if student_ends[-1] != teacher_ends[-1]:
        raise ValueError(f"the two tokenizations cover {student_ends[-1]} and {teacher_ends[-1]} bytes; "
                         "they must spell the same text")
    bounds = sorted(set(student_ends) & set(teacher_ends) - {0})  # chunk k ends at bounds[k]

    def assign(ends: Sequence[int]) -> tuple[int, ...]:
        # a token ending at e belongs to the first chunk whose end is >= e
        return tuple(bisect_left(bounds, max(e, 1)) for e in ends)

    return Chunks(assign(student_ends), assign(teacher_ends), len(bounds))
