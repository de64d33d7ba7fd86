"""Validity oracles: is a token sequence a prefix of *some* canonical encoding?

The canonical-tokenizations target (Phan et al., arXiv 2410.09303) sums only over token sequences
the tokenizer can output. The test used by the released Phan code, ``encode(decode(τ)) == τ``, is
only right under *prefix closure*, which regex pre-tokenizers with look-ahead (GPT-2's
``\\s+(?!\\S)``, cl100k, Llama-3) break at trailing whitespace (reference note §4). Here validity
is **extendable-prefix**: ``valid(τ) ⇔ ∃y: τ ⊑ enc(dec(τ)·y)``.

:class:`ReencodeCanon` decides it with the tokenizer as a black box:

* **Windows.** A *stable boundary* is a position ``p`` with ``s[p] == " "`` and ``s[p-1]`` not
  whitespace. When no ordinary token contains "non-whitespace byte, space" (true for every GPT-2-family
  regex and for SentencePiece, checked on the vocab at load), no canonical token crosses such a
  boundary and the encoding left of it does not depend on the right, so only the bytes since the last
  stable boundary are re-encoded.
* **Probes.** ``y`` ranges over ``""`` and, when the candidate ends in whitespace (the only place
  look-ahead moves a split), over :data:`PROBES`.
* **Junctions.** A candidate token ``t`` that starts with a space after a non-whitespace byte starts
  a new window: ``τ·t`` is valid iff the window of ``τ`` is complete and ``t`` can start a word.

Incomplete UTF-8 at the end of a window cannot be fed to a ``str`` tokenizer; there the check is
*permissive* (tokens wholly inside the complete part are checked, the straddling token accepted), so
the canonical target may count some non-canonical mass inside multi-byte characters. An ideal LM
gives such sequences zero mass, so exactness on ideal LMs is unaffected.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import OrderedDict
from typing import Protocol, Sequence

import numpy as np

from tokkit.bytelevel.table import TokenTable
from tokkit.tokenizer import Tokenizer

__all__ = ["Canonicalizer", "ReencodeCanon", "AnyCanon", "PROBES"]

LOG = logging.getLogger(__name__)

#: Continuations tried when a window ends in whitespace (look-ahead regexes split runs by what follows).
PROBES = ("", "a", " a", "\n", "0", ".")
_WS = frozenset(b" \t\n\r\x0b\x0c")


class Canonicalizer(Protocol):
    """What the cover engine needs to know about a tokenizer."""

    table: TokenTable

    def encode(self, stream: bytes) -> tuple[int, ...] | None:
        """Canonical encoding of a complete byte stream (None: not encodable, e.g. broken UTF-8)."""

    def stable_boundary(self, stream: bytes) -> int:
        """The largest position ``p`` such that every canonical encoding of every extension of
        ``stream`` starts with ``encode(stream[:p])`` (0 when none)."""

    def extend_mask(self, seq: tuple[int, ...]) -> np.ndarray:
        """(len(table.ordinary),) bool: ``valid(seq + (t,))`` for every ordinary ``t``, given ``valid(seq)``."""


def _utf8_cut(s: bytes) -> int | None:
    """Length of the longest prefix of ``s`` that is complete UTF-8; None if ``s`` is not a prefix of valid UTF-8."""
    try:
        s.decode("utf-8")
        return len(s)
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data" and e.end == len(s):
            return e.start
        return None


class ReencodeCanon:
    """Extendable-prefix validity by re-encoding windows with the real tokenizer (exact for any
    tokenizer whose only prefix-closure failures are at trailing whitespace; see module doc).

    Args:
        tokenizer: the tokkit tokenizer whose canonical encodings define validity.
        table: its :class:`TokenTable` (built from ``tokenizer.vocab``).
        cache_size: windows whose masks are kept (an LRU).
    """

    def __init__(self, tokenizer: Tokenizer, table: TokenTable, *, cache_size: int = 4096) -> None:
        self.tokenizer = tokenizer
        self.table = table
        self.strip = tokenizer.vocab.strip_leading_space
        toks = [table.token(int(i)) for i in table.ordinary]
        self.space_stable = not any(re.search(rb"[^\s] ", t) for t in toks)
        self._starts_space = np.array([t[:1] == b" " for t in toks])
        self._ends_ws = np.array([t[-1:] in (b" ", b"\t", b"\n", b"\r") for t in toks])
        self._first_ok: np.ndarray | None = None
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    # ------------------------------------------------------------------ encoding
    def _text(self, window: bytes) -> str:
        """Text the tokenizer sees for a window that starts at a stable boundary (or the stream start)."""
        if self.strip:  # SentencePiece dummy prefix: the stream starts with the space the encoder prepends
            window = window[1:] if window[:1] == b" " else window
        return window.decode("utf-8")

    def _encode_windows(self, windows: Sequence[bytes]) -> list[tuple[int, ...]]:
        texts = [self._text(w) for w in windows]
        return [tuple(ids) for ids in self.tokenizer.encode_batch(texts, allowed_special="all")]

    def encode(self, stream: bytes) -> tuple[int, ...] | None:
        if _utf8_cut(stream) != len(stream) or (self.strip and stream[:1] != b" "):
            return None
        return self._encode_windows([stream])[0]

    # ------------------------------------------------------------------ windows
    def stable_boundary(self, stream: bytes) -> int:
        if not self.space_stable:
            return 0
        for p in range(len(stream) - 1, 0, -1):
            if stream[p] == 0x20 and stream[p - 1] not in _WS:
                return p
        return 0

    def _window_start(self, seq: tuple[int, ...]) -> int:
        """Index k of the last token of ``seq`` that starts at a stable boundary (0 if none)."""
        if not self.space_stable:
            return 0
        tab = self.table
        for k in range(len(seq) - 1, 0, -1):
            cur, prev = tab.token(seq[k]), tab.token(seq[k - 1])
            if cur[:1] == b" " and prev and prev[-1] not in _WS:
                return k
        return 0

    def first_ok(self) -> np.ndarray:
        """(n,) bool: ordinary token ``t`` starting with a space can be the first token of a window."""
        if self._first_ok is None:
            tab = self.table
            idx = np.flatnonzero(self._starts_space)
            ok = np.zeros(len(tab.ordinary), dtype=bool)
            if idx.size:
                ok[idx] = self._check([()] * idx.size, [tab.token(int(tab.ordinary[i])) for i in idx],
                                      tab.ordinary[idx])
            self._first_ok = ok
        return self._first_ok

    def _check(self, heads: Sequence[tuple[int, ...]], window_bytes: Sequence[bytes], last: np.ndarray) -> np.ndarray:
        """valid(head + (t,)) for windows ``dec(head) + t`` (each starting at a stable boundary)."""
        n = len(heads)
        out = np.zeros(n, dtype=bool)
        want: list[tuple[int, ...]] = []
        texts: list[bytes] = []
        rows: list[int] = []
        head_of: tuple[int, ...] | None = None
        head_ends: list[int] = []
        for r in range(n):
            s = window_bytes[r]
            seq = heads[r] + (int(last[r]),)
            cut = _utf8_cut(s)
            if cut is None:
                continue  # not a prefix of valid UTF-8: no text produces it
            if cut < len(s):  # permissive: check the tokens that lie wholly in the complete part
                if heads[r] is not head_of:  # the callers pass one head object for many rows
                    head_of = heads[r]
                    head_ends = np.cumsum([0] + [int(self.table.length[i]) for i in head_of]).tolist()[1:]
                ends = head_ends + [len(s)]
                keep = bisect.bisect_right(ends, cut)
                if keep < len(seq) and keep and ends[keep - 1] == len(s) - int(self.table.length[seq[-1]]):
                    # the straddling token's bytes can change how BPE splits the token just before it
                    # (SmolLM2-like: н|о\xd0 in context, но alone), so that one is not checked either
                    keep -= 1
                seq = seq[:keep]
                s = s[:cut]
            if self.strip and not s:
                out[r] = True
                continue
            rows.append(r)
            want.append(seq)
            texts.append(s)
        if not rows:
            return out
        enc = self._encode_windows(texts)
        retry = []
        for j, r in enumerate(rows):
            if enc[j][: len(want[j])] == want[j]:
                out[r] = True
            elif texts[j][-1:] and texts[j][-1] in _WS:
                retry.append(j)
        for y in PROBES[1:]:
            if not retry:
                break
            enc = self._encode_windows([texts[j] + y.encode() for j in retry])
            still = []
            for j, e in zip(retry, enc):
                if e[: len(want[j])] == want[j]:
                    out[rows[j]] = True
                else:
                    still.append(j)
            retry = still
        return out

    # ------------------------------------------------------------------ masks
    def extend_mask(self, seq: tuple[int, ...]) -> np.ndarray:
        """Valid next tokens after ``seq``: computed by ``_mask`` for the open window, LRU-cached."""
        k = self._window_start(seq)
        head = tuple(seq[k:])
        hit = self._cache.get(head)
        if hit is not None:
            self._cache.move_to_end(head)
            return hit
        mask = self._mask(head)
        self._cache[head] = mask
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return mask

    def _mask(self, head: tuple[int, ...]) -> np.ndarray:
        tab = self.table
        wbytes = tab.decode(head)
        mask = np.zeros(len(tab.ordinary), dtype=bool)
        junction = self.space_stable and bool(wbytes) and wbytes[-1] not in _WS
        todo = np.arange(len(tab.ordinary))
        if junction:
            # a space after a non-space is a stable boundary: t starts a fresh window
            complete = self._complete(head, wbytes)
            sp = self._starts_space
            mask[sp] = complete & self.first_ok()[sp]
            todo = np.flatnonzero(~sp)
        if todo.size:
            ids = tab.ordinary[todo]
            mask[todo] = self._check([head] * todo.size, [wbytes + tab.token(int(t)) for t in ids], ids)
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("mask for window %r: %d of %d valid", wbytes, int(mask.sum()), mask.size)
        return mask

    def _complete(self, head: tuple[int, ...], wbytes: bytes) -> bool:
        """The window's tokens are the whole canonical encoding of its bytes when a space follows."""
        if _utf8_cut(wbytes) != len(wbytes):
            return False
        return self._encode_windows([wbytes + b" a"])[0][: len(head)] == head


class AnyCanon:
    """The all-tokenizations target (Vieira et al., arXiv 2412.03719): every sequence is valid."""

    def __init__(self, base: ReencodeCanon) -> None:
        self.base = base
        self.table = base.table

    def encode(self, stream: bytes) -> tuple[int, ...] | None:
        return self.base.encode(stream)

    def stable_boundary(self, stream: bytes) -> int:
        return 0

    def extend_mask(self, seq: tuple[int, ...]) -> np.ndarray:
        return np.ones(len(self.table.ordinary), dtype=bool)
