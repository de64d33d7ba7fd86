"""The vocabulary as flat byte arrays: k-th byte of many tokens at once, prefix lookups, scatter-logsumexp.

A :class:`TokenTable` is built once per vocabulary from :class:`tokkit.vocab.TextVocab` (never by
re-deriving token bytes): ``tokens[i]`` is exactly what token ``i`` contributes to the decoded byte
stream. Special and unused ids are excluded from :attr:`TokenTable.ordinary` so their literal text
never leaks into byte strings. Prefix queries ("tokens whose bytes start with r") use bisection on
the sorted byte strings (ByteSampler's ``TokenSlicer`` idea), so no per-byte linear scan of the vocab.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from tokkit.vocab import TextVocab

__all__ = ["TokenTable", "scatter_logsumexp", "logsumexp"]

#: Index of the end-of-text event in every next-byte vector (bytes are 0..255).
EOS = 256


def logsumexp(x: np.ndarray) -> float:
    """log Σ exp(x) in float64, -inf for an empty or all -inf input."""
    if x.size == 0:
        return float("-inf")
    m = float(np.max(x))
    if m == float("-inf"):
        return m
    return m + float(np.log(np.sum(np.exp(x - m))))


def scatter_logsumexp(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """``out[j] = log Σ_{i: index[i]==j} exp(values[i])`` with a per-bucket max (no underflow).

    Args:
        index: (n,) int bucket of each value, in ``0..size-1``.
        values: (n,) float64 log-masses.
        size: number of buckets.

    Returns:
        (size,) float64; empty buckets are -inf.
    """
    out = np.full(size, -np.inf)
    if index.size == 0:
        return out
    mx = np.full(size, -np.inf)
    np.maximum.at(mx, index, values)
    safe = np.where(np.isfinite(mx), mx, 0.0)
    sums = np.bincount(index, weights=np.exp(values - safe[index]), minlength=size)
    with np.errstate(divide="ignore"):
        out = np.where(sums > 0, np.log(sums) + safe, -np.inf)
    return out


@dataclass(frozen=True)
class TokenTable:
    """Flat byte view of a vocabulary.

    Attributes:
        vocab: the source vocabulary.
        ordinary: (n,) int64 ids that spell text (not special, not unused, not empty).
        flat: (total,) uint8 all token bytes concatenated.
        offset: (V,) int64 start of token i in ``flat``.
        length: (V,) int64 byte length of token i (0 for special/unused ids).
    """

    vocab: TextVocab
    ordinary: np.ndarray
    flat: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    _sorted: list[bytes] = field(repr=False)
    _sorted_ids: np.ndarray = field(repr=False)

    @classmethod
    def from_vocab(cls, vocab: TextVocab) -> "TokenTable":
        V = len(vocab)
        skip = vocab.special_ids | vocab.unused_ids
        toks = [b"" if i in skip else vocab.tokens[i] for i in range(V)]
        length = np.array([len(t) for t in toks], dtype=np.int64)
        offset = np.zeros(V, dtype=np.int64)
        offset[1:] = np.cumsum(length)[:-1]
        flat = np.frombuffer(b"".join(toks), dtype=np.uint8).copy()
        ordinary = np.array([i for i in range(V) if length[i] > 0], dtype=np.int64)
        order = sorted(ordinary.tolist(), key=lambda i: toks[i])
        return cls(vocab, ordinary, flat, offset, length, [toks[i] for i in order], np.array(order, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.vocab)

    def token(self, i: int) -> bytes:
        """Byte string of an ordinary id (b"" for special/unused ids)."""
        o, n = int(self.offset[i]), int(self.length[i])
        return self.flat[o:o + n].tobytes()

    def byte_at(self, ids: np.ndarray, k: int) -> np.ndarray:
        """(n,) int64: byte ``k`` of each token in ``ids``, or -1 where the token is shorter."""
        ok = self.length[ids] > k
        out = np.full(ids.shape, -1, dtype=np.int64)
        out[ok] = self.flat[self.offset[ids[ok]] + k]
        return out

    def with_prefix(self, prefix: bytes) -> np.ndarray:
        """(n,) int64 ordinary ids whose bytes start with ``prefix`` (binary search, no scan)."""
        lo = bisect.bisect_left(self._sorted, prefix)
        hi = lo
        # the upper end: the first string not starting with prefix
        if prefix:
            hi = bisect.bisect_left(self._sorted, _next_prefix(prefix), lo) if _next_prefix(prefix) else len(self._sorted)
        else:
            hi = len(self._sorted)
        return self._sorted_ids[lo:hi]

    def spelled_bytes(self) -> frozenset[int]:
        """Byte values that occur in some ordinary token (the others have probability 0 as text)."""
        return frozenset(np.unique(self.flat).tolist())

    def unspelled_bytes(self) -> list[int]:
        """Byte values that no ordinary token contains, sorted (e.g. 21 for SmolLM2's GGUF vocabulary)."""
        have = self.spelled_bytes()
        return [b for b in range(256) if b not in have]

    def decode(self, ids) -> bytes:
        return b"".join(self.token(int(i)) for i in ids)


def _next_prefix(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: no bound)."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)
