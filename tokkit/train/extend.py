"""Continued BPE: append merges to an existing tokenizer so that old ids, old merges and old text stay as they are.

The merges are learnt over the *old* segmentation of the new text (:mod:`tokkit.train.extend_words`):
most frequent adjacent pair of old ids first, ties to the smallest ``(left id, right id)``; each new
merge ranks after every existing merge and its token gets the next id after the last existing id.
Because HF BPE (and tiktoken) apply merges lowest rank first, the old merges run to completion before
any new one can fire (``../shared/reference/adapt.md`` §1.1), which gives the guarantee:

    a pre-token whose old segmentation holds no adjacent pair that a new merge joins is segmented
    exactly as before (under ``ignore_merges``, tiktoken's rule, also: it is not itself a new token).

``keep_texts`` makes it total for a protected text: a candidate whose pair occurs in a protected
word's old segmentation, or whose string is a protected pre-token, is skipped (counted in the report),
so the protected text's ids are identical. A candidate is also skipped when

* either side is a special/added token or a byte-fallback ``<0xNN>`` piece;
* its string already exists (an id-free "alternative route" to an old token: it would re-segment old
  text for no new token, so it is not learnt);
* (SentencePiece layout) it would hold ``▁`` after its first character, i.e. join two words;
* it is not *rank-consistent*: BPE on the token's own string, with the merges so far, must end in
  exactly the pair ``(left, right)``. This keeps every new token reachable and the tiktoken export of a
  byte-level result exact (tiktoken merges by concatenation rank, HF by pair rank; they agree when
  every token is its own merge's result).

SentencePiece-style tokenizers with byte fallback first get the new text's characters that they lack
as single-character pieces (they were bytes before: the Chinese-LLaMA step), then merges.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from tokkit.train.extend_words import SP_SPACE, ExtendError, WordCutter

__all__ = ["ExtendSpec", "NewToken", "LearnedMerges", "learn_merges", "new_characters"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtendSpec:
    """What to learn: ``add`` new merges seen at least ``min_frequency`` times."""

    add: int
    min_frequency: int = 2


@dataclass(frozen=True)
class NewToken:
    """One appended token: id, model-alphabet string, the merged pair (None for a new character) and its count."""

    id: int
    text: str
    pair: tuple[int, int] | None
    count: int


@dataclass
class LearnedMerges:
    """The result of :func:`learn_merges` (new tokens in id order) and why candidates were skipped."""

    tokens: list[NewToken]
    skipped: Counter[str] = field(default_factory=Counter)
    exhausted: bool = False


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """HF BPE of one word with ``ranks``: lowest rank first, leftmost among equals (``word.rs``)."""
    syms = list(word)
    while len(syms) > 1:
        best, at = None, -1
        for i in range(len(syms) - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        syms[at:at + 2] = [syms[at] + syms[at + 1]]
    return syms


class _Learner:
    """The merge loop over counted words (lazy max-heap of pair counts, as HF's trainer)."""

    def __init__(self, words: Counter[tuple[int, ...]], id_to_str: dict[int, str], mergeable: set[int],
                 ranks: dict[tuple[str, str], int], *, sentencepiece: bool,
                 protected_pairs: set[tuple[int, int]], protected_strings: set[str]) -> None:
        self.words = [list(w) for w in words]
        self.counts = list(words.values())
        self.id_to_str = id_to_str
        self.str_to_id = {s: i for i, s in id_to_str.items()}
        self.mergeable = mergeable
        self.ranks = ranks
        self.sp = sentencepiece
        self.protected_pairs = protected_pairs
        self.protected_strings = protected_strings
        self.pc: dict[tuple[int, int], int] = {}
        self.where: dict[tuple[int, int], set[int]] = {}
        for iw, (w, n) in enumerate(zip(self.words, self.counts)):
            for p in zip(w, w[1:]):
                self.pc[p] = self.pc.get(p, 0) + n
                self.where.setdefault(p, set()).add(iw)
        self.heap = [(-c, a, b) for (a, b), c in self.pc.items() if c > 0]
        heapq.heapify(self.heap)

    def reason(self, a: int, b: int) -> str | None:
        """Why the pair may not be merged, or None."""
        if a not in self.mergeable or b not in self.mergeable:
            return "special or byte-fallback piece"
        s = self.id_to_str[a] + self.id_to_str[b]
        if s in self.str_to_id:
            return "string already in the vocabulary"
        if self.sp and SP_SPACE in s[1:]:
            return "would join two words"
        if (a, b) in self.protected_pairs or s in self.protected_strings:
            return "would change the protected text"
        if _bpe(s, self.ranks) != [self.id_to_str[a], self.id_to_str[b]]:
            return "not rank-consistent"
        return None

    def merge(self, a: int, b: int, new: int) -> None:
        """Replace every adjacent ``(a, b)`` by ``new`` in the words that hold it; update the pair counts."""
        changed: set[tuple[int, int]] = set()
        for iw in sorted(self.where.pop((a, b), ())):
            w, n = self.words[iw], self.counts[iw]
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    if i > 0:
                        self._add((w[i - 1], a), -n, iw, changed)
                        self._add((w[i - 1], new), n, iw, changed)
                    if i + 2 < len(w):
                        self._add((b, w[i + 2]), -n, iw, changed)
                        self._add((new, w[i + 2]), n, iw, changed)
                    w[i:i + 2] = [new]
                i += 1
        self.pc.pop((a, b), None)
        for p in sorted(changed):
            c = self.pc.get(p, 0)
            if c > 0:
                heapq.heappush(self.heap, (-c, p[0], p[1]))

    def _add(self, p: tuple[int, int], d: int, iw: int, changed: set[tuple[int, int]]) -> None:
        self.pc[p] = self.pc.get(p, 0) + d
        if d > 0:
            self.where.setdefault(p, set()).add(iw)
        changed.add(p)


def learn_merges(words: Counter[tuple[int, ...]], *, spec: ExtendSpec, id_to_str: dict[int, str], next_id: int,
                 mergeable: set[int], ranks: dict[tuple[str, str], int], sentencepiece: bool,
                 protected_pairs: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
                 protected_strings: set[str] = frozenset(),  # type: ignore[assignment]
                 progress: bool = False) -> LearnedMerges:
    """Learn up to ``spec.add`` merges over ``words`` (word -> count, words as old-id tuples).

    Args:
        id_to_str: model-alphabet string of every id a word may hold.
        next_id: the first new id (one past the last existing id, added tokens included).
        mergeable: ids that may take part in a merge (ordinary, non-fallback).
        ranks: the existing merges ``(left, right) -> rank``; new merges are appended to it.
        sentencepiece: forbid ``▁`` after a new token's first character.
        protected_pairs / protected_strings: what the protected text's words hold (see module doc).

    Returns:
        The new tokens in id order, each with its pair and count when it was learnt; ``exhausted``
        when the text ran out of pairs seen ``min_frequency`` times before ``spec.add`` merges.
    """
    from tqdm.auto import tqdm

    L = _Learner(words, dict(id_to_str), set(mergeable), ranks, sentencepiece=sentencepiece,
                 protected_pairs=set(protected_pairs), protected_strings=set(protected_strings))
    out = LearnedMerges([])
    bar = tqdm(total=spec.add, desc="new merges", unit="merge", disable=not progress, mininterval=1.0)
    rank = max(ranks.values(), default=-1) + 1
    rejected: set[tuple[int, int]] = set()
    while len(out.tokens) < spec.add:
        if not L.heap:
            out.exhausted = True
            break
        negc, a, b = heapq.heappop(L.heap)
        cur = L.pc.get((a, b), 0)
        if -negc != cur:  # stale: its current count (if any) is in the heap already
            continue
        if cur < max(spec.min_frequency, 1):
            out.exhausted = True
            break
        if (a, b) in rejected:
            continue
        why = L.reason(a, b)
        if why is not None:
            out.skipped[why] += 1
            rejected.add((a, b))  # never again (the decision does not depend on later merges' counts)
            continue
        s = L.id_to_str[a] + L.id_to_str[b]
        new = next_id + len(out.tokens)
        L.id_to_str[new] = s
        L.str_to_id[s] = new
        L.mergeable.add(new)
        ranks[(L.id_to_str[a], L.id_to_str[b])] = rank
        rank += 1
        out.tokens.append(NewToken(new, s, (a, b), cur))
        L.merge(a, b, new)
        bar.update(1)
    bar.close()
    return out


def new_characters(cutter: WordCutter, docs: Iterable[str], *, known: set[str], min_frequency: int,
                   protected: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Characters of ``docs`` (after normalization) missing from ``known``, seen ``min_frequency`` times,
    most frequent first (ties by code point); characters of a protected text are left out."""
    counts: Counter[str] = Counter()
    for d in docs:
        counts.update(cutter.hf.normalizer.normalize_str(d) if cutter.hf.normalizer is not None else d)
    banned: set[str] = set()
    for t in protected:
        banned.update(t)
    keep = [(c, n) for c, n in counts.items() if c not in known and c not in banned and n >= max(min_frequency, 1)]
    keep.sort(key=lambda cn: (-cn[1], ord(cn[0])))
    return keep
