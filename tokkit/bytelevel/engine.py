"""The cover recursion: exact next-byte distributions from next-token distributions.

Byte-Token Representation (Phan et al., arXiv 2410.09303; the "covering" of Vieira et al., arXiv
2412.03719): the probability that the output starts with bytes ``x`` is the sum of token-prefix
probabilities ``Q(τ)`` over the *cover* of ``x``, the valid ``τ`` whose last token straddles or
reaches the end of ``x``. Next-byte probabilities are ratios of such sums, and covers evolve by

    cover(x·b) = {τ ∈ cover(x) : dec(τ)[|x|] = b} ∪ {e·t : e ∈ exact(x), t[0] = b, valid(e·t)}

where ``exact(x)`` are the valid sequences decoding to exactly ``x`` (one under prefix closure,
several at trailing whitespace of look-ahead regex pre-tokenizers). Each exact sequence costs one
LM call; nothing else does.

Covers are stored as *groups*: a head ``h`` (tokens before the last), the number ``k`` of bytes of
the last token already matched, and (n,) arrays of candidate last-token ids and their log ``Q``, so
thousands of covers share one head and the per-byte update is a numpy filter on "byte k of t == b".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tokkit.bytelevel.canon import Canonicalizer
from tokkit.bytelevel.lm import TokenLM
from tokkit.bytelevel.table import EOS, logsumexp, scatter_logsumexp
from tokkit.errors import ImpossiblePrefixError

__all__ = ["NextByte", "CoverState"]


@dataclass(frozen=True)
class NextByte:
    """One next-byte distribution.

    Attributes:
        logprobs: (257,) float64 log-probabilities of bytes 0..255 and end-of-text (index 256),
            normalised to sum to 1.
        log_z: ``log Z_n``: log of the mass the canonical covers keep, relative to ``P(x)``; 0 when the
            LM puts no mass outside canonical encodings (and on no special token), negative otherwise.
        log_prefix: ``log P̃(x)``, the unnormalised cover mass of the prefix (BTR sum).
        pruned: share of the cover mass the beam has dropped so far, ``1 - Π_n (1 - f_n)`` with
            ``f_n`` the share dropped at byte ``n`` (0 without a beam). Every next-byte probability
            is then within ``pruned`` of the unpruned one's share of the kept mass; report it with
            beam results.
    """

    logprobs: np.ndarray
    log_z: float
    log_prefix: float
    pruned: float = 0.0


@dataclass
class _Group:
    head: tuple[int, ...]
    k: int
    ids: np.ndarray   # (n,) int64 candidate last tokens
    logq: np.ndarray  # (n,) float64 log Q(head + (t,))


class CoverState:
    """The covers of a byte stream, advanced one byte at a time.

    Args:
        canon: validity oracle (canonical or all-tokenizations target).
        lm: the token LM.
        eos_ids: token ids whose probability is the end-of-text event.
        exact: starting exact sequences with their log Q (default: the empty sequence).
        stream: bytes those sequences decode to.
        canonical_eos: count end-of-text only after the canonical encoding of the stream (canonical
            target) instead of after any exact sequence (all-tokenizations target).
        beam: keep at most this many exact sequences per byte (all-tokenizations target; None = all).
    """

    def __init__(self, canon: Canonicalizer, lm: TokenLM, *, eos_ids: Sequence[int],
                 exact: Sequence[tuple[tuple[int, ...], float]] = (((), 0.0),), stream: bytes = b"",
                 canonical_eos: bool = True, beam: int | None = None) -> None:
        self.canon = canon
        self.table = canon.table
        self.lm = lm
        self.eos_ids = np.asarray(sorted(set(int(i) for i in eos_ids)), dtype=np.int64)
        self.stream = bytes(stream)
        self.groups: list[_Group] = []
        self.exact: list[tuple[tuple[int, ...], float]] = list(exact)
        self.canonical_eos = canonical_eos
        self.beam = beam
        self._next: NextByte | None = None
        #: share of the cover mass dropped by the beam so far (see NextByte.pruned)
        self.pruned = 0.0
        #: end-of-text mass that no exact sequence carries: SentencePiece's empty text is ``()``·EOS
        #: although its stream is the dummy space alone (set by ByteLM for that one state).
        self.extra_stop = float("-inf")

    # ------------------------------------------------------------------ state
    def mass(self) -> float:
        """log P̃(stream): total log Q over all covers (before the pending LM calls)."""
        parts = [g.logq for g in self.groups] + [np.array([lq for _, lq in self.exact] + [self.extra_stop])]
        return logsumexp(np.concatenate(parts)) if parts else float("-inf")

    def exact_sequences(self) -> list[tuple[tuple[int, ...], float]]:
        """The covers that end exactly at the end of the stream, with their log Q."""
        return list(self.exact)

    def _expand(self) -> float:
        """Ask the LM at every exact sequence; turn each into a group of its valid next tokens."""
        stop = self.extra_stop
        self.extra_stop = float("-inf")
        enc: tuple[int, ...] | None | bool = False
        tab = self.table
        rows = self._batched_rows()
        for r, (seq, lq) in enumerate(self.exact):
            q = rows[r] if rows is not None else self.lm.next_logprobs(seq)
            mask = self.canon.extend_mask(seq)
            ids = tab.ordinary[mask]
            if ids.size:
                self.groups.append(_Group(seq, 0, ids, lq + q[ids]))
            if self.eos_ids.size:
                if self.canonical_eos:
                    if enc is False:
                        enc = self.canon.encode(self.stream)
                    if enc is None or tuple(seq) != tuple(enc):  # type: ignore[arg-type]
                        continue
                stop = np.logaddexp(stop, lq + logsumexp(q[self.eos_ids]))
        self.exact = []
        return float(stop)

    def _batched_rows(self) -> np.ndarray | None:
        """With several exact sequences (beam of the all-tokenizations target, look-ahead splits),
        ask an LM that can batch once for all of them (:meth:`HFCausalLM.next_logprobs_many`)."""
        if len(self.exact) < 2 or not hasattr(self.lm, "next_logprobs_many"):
            return None
        return self.lm.next_logprobs_many([seq for seq, _ in self.exact])

    def next_byte(self) -> NextByte:
        """The distribution of the next byte (one LM call per exact sequence; cached until push)."""
        if self._next is not None:
            return self._next
        log_px = self.mass()
        stop = self._expand()
        m = np.full(257, -np.inf)
        for g in self.groups:
            m = np.logaddexp(m, scatter_logsumexp(self.table.byte_at(g.ids, g.k), g.logq, 257))
        m[EOS] = np.logaddexp(m[EOS], stop)
        total = logsumexp(m)
        if total == float("-inf"):
            raise ImpossiblePrefixError(self._why_impossible(log_px))
        self._next = NextByte(m - total, total - log_px, log_px, self.pruned)
        return self._next

    def _why_impossible(self, log_px: float) -> str:
        """The error message for a prefix with no next-byte distribution (never a silent all -inf)."""
        tail = self.stream[-12:]
        if log_px == float("-inf"):
            have = self.table.spelled_bytes()
            missing = sorted({b for b in self.stream if b not in have})
            why = (f"bytes {', '.join(f'0x{b:02x}' for b in missing)} have no token in the vocabulary"
                   if missing else "no token sequence the target allows spells it")
            return (f"expected a prefix the model can produce, found one of probability 0 ({why}); "
                    f"prefix ends {tail!r} ({len(self.stream)} bytes); remove or replace those bytes")
        return (f"expected a prefix with a continuation, found that the LM gives every continuation of "
                f"{tail!r} (last of {len(self.stream)} bytes) probability 0; check the LM's output")

    def push(self, b: int) -> None:
        """Advance by one byte (the recursion above)."""
        if not 0 <= b < 256:
            raise ValueError(f"a byte is 0..255, found {b}")
        self.next_byte()
        tab = self.table
        groups: list[_Group] = []
        exact: list[tuple[tuple[int, ...], float]] = []
        for g in self.groups:
            sel = tab.byte_at(g.ids, g.k) == b
            if not sel.any():
                continue
            ids, lq = g.ids[sel], g.logq[sel]
            done = tab.length[ids] == g.k + 1
            for t, l in zip(ids[done].tolist(), lq[done].tolist()):
                exact.append((g.head + (t,), l))
            if (~done).any():
                groups.append(_Group(g.head, g.k + 1, ids[~done], lq[~done]))
        if self.beam is not None and len(exact) > self.beam:
            exact = sorted(exact, key=lambda e: -e[1])
            dropped = np.array([lq for _, lq in exact[self.beam:]])
            kept = np.concatenate([np.array([lq for _, lq in exact[: self.beam]])] + [g.logq for g in groups])
            share = float(np.exp(logsumexp(dropped) - np.logaddexp(logsumexp(dropped), logsumexp(kept))))
            self.pruned = 1.0 - (1.0 - self.pruned) * (1.0 - share)
            exact = exact[: self.beam]
        self.groups, self.exact = groups, exact
        self.stream += bytes([b])
        self._next = None

    def contexts_needed(self) -> list[tuple[int, ...]]:
        return [seq for seq, _ in self.exact]
