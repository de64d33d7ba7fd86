"""BPE training from pre-token counts that reproduces HF ``tokenizers``' ``BpeTrainer`` merge for merge.

HF ``tokenizers`` cannot train from counts from Python (tokenizers#760): its trainer first counts
every pre-token of the corpus in RAM, then runs ``BpeTrainer::do_train(word_counts)``. This module
is a port of that second half (tokenizers 0.20–0.23, ``models/bpe/trainer.rs`` and ``word.rs``), so a
count table made anywhere (:mod:`tokkit.train.count_table`) trains the tokenizer that
``train_from_iterator`` would have trained on the raw text: same alphabet ids (specials, then the
alphabet sorted by code point), same merges in the same order — the max-count pair first, ties to
the smallest ``(left id, right id)``, stale heap entries re-queued with their current count, the
``min_frequency`` stop and the ``max_token_length`` rule of ``Word::merge`` (a new pair is only
formed while its length in characters stays below the cap).

Memory: the words that hold a pair are kept as a sorted ``array('i')`` of word ids (4 bytes each)
rather than a Python ``set`` (about 30-60 bytes per entry plus 216 per set), which is what made the
loop's peak exceed HF's own trainer (issue 17); pairs whose count falls to 0 leave the count
dictionary, and the word dictionary is dropped once the state is built.

One deliberate difference: pair counts are Python integers. HF keeps them in ``i32`` and
overflows past 2^31 occurrences of a pair (tokenizers#437, #2058: "the" split into t/h/e at 160 GB);
below that the two are identical, above it ours is the correct one.

The merge loop checkpoints its whole state every ``checkpoint_seconds`` (or ``checkpoint_every`` merges)
into one file (:mod:`tokkit.train.bpe_checkpoint`: plain arrays plus JSON, written atomically, never a
pickle); ``resume=True`` continues from it and ends with exactly the merges of an uninterrupted run.
"""

from __future__ import annotations

import heapq
import logging
from array import array
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tokkit.train.bpe_checkpoint import BpeCheckpointError, is_merge_state, load_state, save_state

__all__ = ["BpeSpec", "BpeCheckpointError", "train_bpe_counts", "to_hf_model", "is_merge_state"]

LOG = logging.getLogger(__name__)
#: Word ids of a pair's positions: 4-byte signed (tables up to 2^31 records; the table itself would not fit first).
_POS = "i"


@dataclass(frozen=True)
class BpeSpec:
    """The ``BpeTrainer`` options that decide the result (same names and meaning as HF's)."""

    vocab_size: int
    min_frequency: int = 0
    special_tokens: tuple[str, ...] = ()
    initial_alphabet: tuple[str, ...] = ()
    max_token_length: int | None = None


@dataclass
class _State:
    spec: BpeSpec
    fingerprint: tuple[int, int]  # (number of words, total count): a cheap check that a checkpoint fits
    id_to_word: list[str]
    word_to_id: dict[str, int]
    words: list[list[int]]
    lens: list[list[int]]  # per symbol, its length in characters (only read when a length cap is set)
    counts: list[int]
    pair_counts: dict[tuple[int, int], int]
    heap: list[tuple[int, int, int, int, Any]]  # (-count, left, right, seq, positions: ascending word ids)
    merges: list[tuple[tuple[int, int], int]] = field(default_factory=list)
    seq: int = 0
    done: bool = False


def _initial_state(word_counts: Mapping[str, int], spec: BpeSpec) -> _State:
    w2id: dict[str, int] = {}
    id2w: list[str] = []
    for t in spec.special_tokens:
        if t not in w2id:
            w2id[t] = len(id2w)
            id2w.append(t)
    alphabet = set(spec.initial_alphabet)
    for w in word_counts:
        alphabet.update(w)
    for c in sorted(alphabet, key=ord):  # HF: sort_unstable_by_key(char as u32); no limit_alphabet
        if c not in w2id:
            w2id[c] = len(id2w)
            id2w.append(c)
    words: list[list[int]] = []
    counts: list[int] = []
    for w, n in word_counts.items():
        words.append([w2id[c] for c in w])
        counts.append(int(n))
    lens = [[1] * len(w) for w in words] if spec.max_token_length is not None else []
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], array] = {}
    for i, (syms, n) in enumerate(zip(words, counts)):
        for p in zip(syms, syms[1:]):
            pair_counts[p] = pair_counts.get(p, 0) + n
            s = where.get(p)
            if s is None:
                where[p] = array(_POS, (i,))
            elif s[-1] != i:  # words are visited in order: the array stays sorted and unique
                s.append(i)
    st = _State(spec, (len(words), sum(counts)), id2w, w2id, words, lens, counts, pair_counts, [])
    for p, pos in where.items():
        c = pair_counts[p]
        if c > 0:
            st.heap.append((-c, p[0], p[1], st.seq, pos))
            st.seq += 1
    heapq.heapify(st.heap)
    return st


def _merge_words(st: _State, a: int, b: int, new: int, pos: Any, max_len: int) -> None:
    """``Word::merge`` on every word in ``pos`` plus the trainer's pair-count update."""
    pc = st.pair_counts
    where: dict[tuple[int, int], array] = {}
    capped = st.spec.max_token_length is not None

    def change(p: tuple[int, int], d: int, iw: int) -> None:
        c = pc.get(p, 0) + d * st.counts[iw]
        if c:
            pc[p] = c
        else:  # a pair that occurs nowhere any more: a missing key reads as 0 (79k of 512k pairs on a 294k table)
            pc.pop(p, None)
        if d > 0:
            s = where.get(p)
            if s is None:
                where[p] = array(_POS, (iw,))
            elif s[-1] != iw:  # words are visited in ascending order: sorted and unique
                s.append(iw)

    for iw in (pos if isinstance(pos, array) else sorted(pos)):  # a set when read back from a checkpoint
        syms = st.words[iw]
        lens = st.lens[iw] if capped else None
        if len(syms) > _LONG_WORD:
            _merge_long_word(st, iw, a, b, new, max_len, change)
            continue
        i = 0
        while i < len(syms):
            if syms[i] == a and i + 1 < len(syms) and syms[i + 1] == b:
                nl = lens[i] + lens[i + 1] if lens is not None else 0
                if i > 0:
                    change((syms[i - 1], a), -1, iw)
                    if lens is None or lens[i - 1] + nl < max_len:
                        change((syms[i - 1], new), 1, iw)
                second = syms[i + 1]
                syms[i:i + 2] = [new]
                if lens is not None:
                    lens[i:i + 2] = [nl]
                if i < len(syms) - 1:
                    change((second, syms[i + 1]), -1, iw)
                    if lens is None or lens[i + 1] + nl < max_len:
                        change((new, syms[i + 1]), 1, iw)
            i += 1
    for p, ps in where.items():
        c = pc.get(p, 0)
        if c > 0:
            heapq.heappush(st.heap, (-c, p[0], p[1], st.seq, ps))
            st.seq += 1


#: Words longer than this (in symbols) are merged by copying (:func:`_merge_long_word`) rather than in place.
_LONG_WORD = 256


def _merge_long_word(st: _State, iw: int, a: int, b: int, new: int, max_len: int,
                     change: Callable[[tuple[int, int], int, int], None]) -> None:
    """The in-place loop of :func:`_merge_words` on one long word, in time linear in its length.

    HF's ``Word::merge`` (and the in-place loop) replaces each occurrence where it stands (a Vec insert and two
    removes), which moves the rest of the word each time: quadratic on one long pre-token (``'a' * 200_000``
    took 14 s in HF's trainer, 60 s at 400k). This is the same left-to-right scan copying the word into a new
    list and jumping from one ``a`` to the next: the same occurrences merged and the same pair-count changes in
    the same order, so the same merges.
    """
    syms = st.words[iw]
    lens = st.lens[iw] if st.spec.max_token_length is not None else None
    n, i, done = len(syms), 0, 0  # syms[done:i] are still to be copied
    out: list[int] = []
    out_lens: list[int] = []
    while True:
        try:
            i = syms.index(a, i, n - 1)
        except ValueError:
            break
        if syms[i + 1] != b:
            i += 1
            continue
        out += syms[done:i]
        nl = 0
        if lens is not None:
            out_lens += lens[done:i]
            nl = lens[i] + lens[i + 1]
        if out:
            change((out[-1], a), -1, iw)
            if lens is None or out_lens[-1] + nl < max_len:
                change((out[-1], new), 1, iw)
        out.append(new)
        if lens is not None:
            out_lens.append(nl)
        if i + 2 < n:
            change((b, syms[i + 2]), -1, iw)
            if lens is None or lens[i + 2] + nl < max_len:
                change((new, syms[i + 2]), 1, iw)
        i = done = i + 2
    if done:  # else the pair is not in this word (any more)
        st.words[iw] = out + syms[done:]
        if lens is not None:
            st.lens[iw] = out_lens + lens[done:]


def _step(st: _State, max_len: int) -> bool:
    """One iteration of HF's merge loop; False when training is over."""
    if len(st.word_to_id) >= st.spec.vocab_size or not st.heap:
        return False
    negc, a, b, _, pos = heapq.heappop(st.heap)
    cur = st.pair_counts.get((a, b), 0)
    if -negc != cur:  # stale entry: re-queue with the current count (and the same positions)
        heapq.heappush(st.heap, (-cur, a, b, st.seq, pos))
        st.seq += 1
        return True
    if cur < 1 or st.spec.min_frequency > cur:
        return False
    token = st.id_to_word[a] + st.id_to_word[b]
    new = st.word_to_id.get(token)
    if new is None:
        new = len(st.id_to_word)
        st.id_to_word.append(token)
        st.word_to_id[token] = new
    st.merges.append(((a, b), new))
    _merge_words(st, a, b, new, pos, max_len)
    return True


def train_bpe_counts(word_counts: Mapping[str, int] | Callable[[], Mapping[str, int]], spec: BpeSpec, *,
                     progress: bool = True,
                     checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
                     checkpoint_seconds: float = 120.0, resume: bool = False,
                     stop_after: int | None = None,
                     on_merge: Callable[[int], None] | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train BPE on ``{pre-token string: count}`` exactly as HF's ``BpeTrainer`` would.

    Args:
        word_counts: pre-tokens as the trainer sees them (byte-level spelled for byte-level BPE), or a
            function that returns them: it is called once and its result dropped as soon as the merge
            state is built, so the dictionary does not stay in memory beside the loop.
        spec: trainer options.
        checkpoint: file for the merge-loop state, written every ``checkpoint_seconds`` (and every
            ``checkpoint_every`` merges when given) and at the end; a save costs about the table's size.
        resume: continue from ``checkpoint`` when it exists.
        stop_after: stop after this many merges in this call (leaves the checkpoint; for tests and
            for splitting a long run across jobs).

    Returns:
        ``(vocab, merges)``: token -> id (specials, alphabet, merged tokens) and the merges in rank
        order, as HF serialises them (a pair merged twice keeps its last rank).
    """
    from tqdm.auto import tqdm

    ckpt = Path(checkpoint) if checkpoint is not None else None
    counts = word_counts() if callable(word_counts) else word_counts
    fingerprint = (len(counts), sum(int(v) for v in counts.values()))
    st = load_state(ckpt, spec, fingerprint) if resume and ckpt is not None and ckpt.exists() else None
    if st is None:
        st = _initial_state(counts, spec)
    del counts, word_counts  # a loader's result lives no longer than this
    if st.merges:
        LOG.info("resumed from %s after %d merges", ckpt, len(st.merges))
    max_len = spec.max_token_length if spec.max_token_length is not None else 1 << 62
    t0, start = time.perf_counter(), len(st.merges)
    bar = tqdm(total=max(spec.vocab_size - len(st.word_to_id), 0), desc="merges from counts", unit="merge",
               disable=not progress, mininterval=1.0)
    last = len(st.word_to_id)
    saved_at = time.monotonic()
    while not st.done:
        if stop_after is not None and len(st.merges) - start >= stop_after:
            break
        before = len(st.merges)
        if not _step(st, max_len):
            st.done = True
            break
        if len(st.merges) != before:
            bar.update(len(st.word_to_id) - last)
            last = len(st.word_to_id)
            if on_merge is not None:
                on_merge(len(st.merges))
            if ckpt is not None and ((checkpoint_every and len(st.merges) % checkpoint_every == 0)
                                     or time.monotonic() - saved_at >= checkpoint_seconds):
                save_state(st, ckpt)
                saved_at = time.monotonic()
    bar.close()
    if ckpt is not None and not st.done:  # stopped early: leave the state for --resume
        save_state(st, ckpt)
    LOG.info("%d merges in %.1fs", len(st.merges) - start, time.perf_counter() - t0)
    ranked: dict[tuple[int, int], int] = {}
    for rank, (pair, _) in enumerate(st.merges):
        ranked[pair] = rank  # HF collects merges into a map: a repeated pair keeps its last rank
    merges = [(st.id_to_word[p[0]], st.id_to_word[p[1]]) for p, _ in sorted(ranked.items(), key=lambda kv: kv[1])]
    return dict(st.word_to_id), merges


def to_hf_model(tok: Any, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]],
                special_tokens: Sequence[str]) -> Any:
    """``tok`` (an untrained HF tokenizer with a BPE model) with the trained vocab and merges.

    What ``Tokenizer.train`` does after ``BpeTrainer::do_train``: the model gets the vocabulary
    and merges and keeps its own options; the trainer's special tokens are added as special tokens.
    """
    import json

    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    data["model"]["vocab"] = dict(vocab)
    data["model"]["merges"] = [list(m) for m in merges]
    out = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    if special_tokens:
        out.add_special_tokens(list(special_tokens))
    return out
