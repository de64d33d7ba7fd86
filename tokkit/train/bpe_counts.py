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

The merge loop checkpoints its whole state (words, pair counts, heap) as plain arrays plus JSON in
one ``.npz`` (loaded with ``allow_pickle=False``: a crafted file can never run code) every
``checkpoint_seconds`` (or ``checkpoint_every`` merges) into one file, written atomically; ``resume=True`` continues from it
and ends with exactly the merges of an uninterrupted run.
"""

from __future__ import annotations

import heapq
import json
import logging
from array import array
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tokkit.errors import FormatError
from tokkit.output_checks import temp_name

__all__ = ["BpeSpec", "BpeCheckpointError", "train_bpe_counts", "to_hf_model"]

LOG = logging.getLogger(__name__)
_CKPT_VERSION = 2  # 2: arrays + JSON in an .npz (1 was a pickle, never read again)
#: Word ids of a pair's positions: 4-byte signed (tables up to 2^31 records; the table itself would not fit first).
_POS = "i"


class BpeCheckpointError(FormatError):
    """A merge-loop checkpoint that does not belong to this training run."""


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


def _ragged(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints -> (flat int64 values, int64 offsets of length len(rows) + 1)."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter((x for r in rows for x in r), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def _unragged(flat: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    vals, offs = flat.tolist(), offsets.tolist()
    return [vals[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]


def _save(st: _State, path: Path) -> None:
    """Write the merge-loop state as plain arrays and JSON in one ``.npz`` (no pickle: loading runs no code)."""
    meta = {"format": "tokkit-bpe-merge-state", "version": _CKPT_VERSION,
            "spec": {k: getattr(st.spec, k) for k in st.spec.__dataclass_fields__},
            "fingerprint": list(st.fingerprint), "id_to_word": st.id_to_word, "seq": st.seq, "done": st.done}
    words, word_offsets = _ragged(st.words)
    lens, lens_offsets = _ragged(st.lens)
    heap_pos, heap_offsets = _ragged([sorted(e[4]) for e in st.heap])
    pairs = np.array(list(st.pair_counts.keys()), dtype=np.int64).reshape(-1, 2)
    arrays = {
        "meta": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
        "words": words, "word_offsets": word_offsets, "lens": lens, "lens_offsets": lens_offsets,
        "counts": np.array(st.counts, dtype=np.int64),
        "pairs": pairs, "pair_counts": np.array(list(st.pair_counts.values()), dtype=np.int64),
        "heap": np.array([e[:4] for e in st.heap], dtype=np.int64).reshape(-1, 4),
        "heap_pos": heap_pos, "heap_offsets": heap_offsets,
        "merges": np.array([(a, b, n) for (a, b), n in st.merges], dtype=np.int64).reshape(-1, 3),
    }
    tmp = temp_name(path)  # a killed save leaves what the next check of this output removes
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_merge_state(path: Path) -> bool:
    """True when ``path`` is a merge-loop checkpoint tokkit wrote (its ``meta`` header; only that member is read)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(z["meta"].tobytes().decode("utf-8")).get("format") == "tokkit-bpe-merge-state"
    except Exception:  # not an npz, no meta, not JSON: not ours
        return False


def _read(path: Path) -> _State:
    with np.load(path, allow_pickle=False) as z:  # a pickled object array is refused, never unpickled
        a = {k: z[k] for k in z.files}
    meta = json.loads(a["meta"].tobytes().decode("utf-8"))
    if meta.get("format") != "tokkit-bpe-merge-state":
        raise ValueError("no tokkit-bpe-merge-state header")
    _check_arrays(a, len(meta["id_to_word"]))
    spec = dict(meta["spec"])
    for k in ("special_tokens", "initial_alphabet"):
        spec[k] = tuple(spec[k])
    id_to_word = list(meta["id_to_word"])
    heap_pos = _unragged(a["heap_pos"], a["heap_offsets"])
    st = _State(BpeSpec(**spec), tuple(meta["fingerprint"]), id_to_word, {w: i for i, w in enumerate(id_to_word)},
                _unragged(a["words"], a["word_offsets"]), _unragged(a["lens"], a["lens_offsets"]),
                a["counts"].tolist(),
                {(int(x), int(y)): int(c) for (x, y), c in zip(a["pairs"].tolist(), a["pair_counts"].tolist())},
                [(int(n), int(x), int(y), int(q), set(pos)) for (n, x, y, q), pos in zip(a["heap"].tolist(), heap_pos)],
                [((int(x), int(y)), int(n)) for x, y, n in a["merges"].tolist()], int(meta["seq"]), bool(meta["done"]))
    st._version = int(meta["version"])  # type: ignore[attr-defined]
    return st


def _check_arrays(a: dict[str, np.ndarray], n_sym: int) -> None:
    """A tampered state must fail here, not as an IndexError deep in the merge loop: offsets, ids, positions."""
    def ragged(flat: str, offsets: str) -> int:
        off = a[offsets]
        if off.ndim != 1 or len(off) == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != len(a[flat]):
            raise ValueError(f"{offsets} do not cut {flat} into pieces")
        return len(off) - 1

    n_words = ragged("words", "word_offsets")
    n_lens = ragged("lens", "lens_offsets")  # empty unless a length cap is set
    if n_lens not in (0, n_words) or len(a["counts"]) != n_words:
        raise ValueError("words, lens and counts disagree in length")
    for name, arr in (("words", a["words"]), ("pairs", a["pairs"]), ("heap", a["heap"][:, 1:3]),
                      ("merges", a["merges"][:, :2])):
        if arr.size and (arr.min() < 0 or arr.max() >= n_sym):
            raise ValueError(f"{name} name a symbol outside 0..{n_sym - 1}")
    ragged("heap_pos", "heap_offsets")
    if len(a["heap_offsets"]) - 1 != len(a["heap"]) or len(a["pairs"]) != len(a["pair_counts"]):
        raise ValueError("heap or pair arrays disagree in length")
    if a["heap_pos"].size and (a["heap_pos"].min() < 0 or a["heap_pos"].max() >= n_words):
        raise ValueError(f"heap positions outside 0..{n_words - 1}")


def _load(path: Path, spec: BpeSpec, fingerprint: tuple[int, int]) -> _State:
    try:
        st = _read(path)
        version = st._version  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - a truncated, foreign or pickled file: never executed, always refused
        with open(path, "rb") as f:
            head = f.read(2)
        why = ("it is a Python pickle, which tokkit never loads (unpickling can run code)" if head[:1] == b"\x80"
               else f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'unreadable'}")
        raise BpeCheckpointError(f"{path} is not a tokkit merge checkpoint ({why}); delete it to start from "
                                 "the beginning") from None
    if version != _CKPT_VERSION or st.spec != spec or st.fingerprint != fingerprint:
        diffs = [f"{k}: expected {_short(getattr(spec, k))}, found {_short(getattr(st.spec, k))}"
                 for k in spec.__dataclass_fields__ if getattr(spec, k) != getattr(st.spec, k)]
        if st.fingerprint != fingerprint:
            diffs.append(f"counts: expected {fingerprint[0]} pre-tokens / {fingerprint[1]} occurrences, found "
                         f"{st.fingerprint[0]} / {st.fingerprint[1]}")
        raise BpeCheckpointError(f"{path} belongs to another training run ({'; '.join(diffs) or 'format version'}); "
                                 "delete it or train with the same counts and options")
    return st


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


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
    st = _load(ckpt, spec, fingerprint) if resume and ckpt is not None and ckpt.exists() else None
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
                _save(st, ckpt)
                saved_at = time.monotonic()
    bar.close()
    if ckpt is not None and not st.done:  # stopped early: leave the state for --resume
        _save(st, ckpt)
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
