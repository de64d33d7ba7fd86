"""Snippets of real text for learning new rows: each new token's contexts, tokenized twice and aligned.

Token Distillation (Dobler, Elliott & de Melo, ICLR 2026, arXiv:2505.20133) needs, for every new token,
short pieces of real text that contain it, read once with the **teacher's** tokenization (the original
model and tokenizer: the token's old multi-token spelling) and once with the **student's** (the new
tokenizer: the token as one id). This module finds them and lines the two readings up.

* **Windows.** Each document is encoded with the student tokenizer and cut into windows of about
  ``window_tokens`` student tokens, at token starts that begin with white space (so a window is whole
  words); the window's text is stripped of leading white space and re-encoded by both tokenizers.
* **Selection.** Windows are visited in a seeded order; for each new token, rarest first, windows that
  contain it are taken until it occurs ``per_token`` times in the selection (a window counts for every
  new token in it, so dense text serves many tokens at once). Work is bounded by
  ``per_token × new tokens`` occurrences whatever the corpus size.
* **Alignment.** Position ``j`` of the student's sequence and ``i`` of the teacher's correspond when
  both tokens end at the same byte of the window's text. For an extended tokenizer every student
  boundary is a teacher boundary (a new token is a merge of old ones), so the teacher positions inside a
  merged spelling are dropped and its **last** piece is kept, as in the paper's alignment mask; for a
  transplant the common boundaries are kept. Only pairs from the first trainable student position on
  carry signal (before it both models compute the same thing), so earlier pairs are left out.

Torch-free: the result is plain lists, batched by :mod:`tokkit.transplant.methods.distill`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from tokkit.errors import TokkitError
from tokkit.transplant.heal.chunks import token_ends

__all__ = ["Snippet", "SnippetSet", "mine_snippets", "aligned_pairs"]

log = logging.getLogger(__name__)

_SPACE = frozenset(b" \t\n\r\f\v")


@dataclass(frozen=True)
class Snippet:
    """One window of text, read by both models.

    Attributes:
        teacher: the teacher's ids, its start token first (``(T_t,)``).
        student: the student's ids, its start token first (``(T_s,)``).
        pairs: ``(teacher position, student position)`` of every aligned pair that carries signal.
    """

    teacher: tuple[int, ...]
    student: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SnippetSet:
    """The selected snippets and what they cover.

    Attributes:
        snippets: in a seeded order.
        counts: new id -> its occurrences in the selection (ids with none are absent).
        missing: new ids that occur in no window of the corpus (they keep their initial rows).
        windows: windows the corpus gave; bytes: UTF-8 bytes of the corpus read.
    """

    snippets: tuple[Snippet, ...]
    counts: dict[int, int]
    missing: tuple[int, ...]
    windows: int
    bytes: int

    @property
    def student_tokens(self) -> int:
        return sum(len(s.student) for s in self.snippets)

    @property
    def teacher_tokens(self) -> int:
        return sum(len(s.teacher) for s in self.snippets)


def aligned_pairs(t_ends: Sequence[int], s_ends: Sequence[int], *, t_offset: int, s_offset: int,
                  first_student: int) -> tuple[tuple[int, int], ...]:
    """``(teacher pos, student pos)`` of tokens that end at the same byte, student position ≥ ``first_student``.

    Positions are in the full sequences (after the ``t_offset`` / ``s_offset`` start tokens); a pair
    ending at byte 0 (an empty token) is skipped.
    """
    where = {e: i for i, e in enumerate(t_ends)}  # the last teacher token ending at each byte
    out = []
    for j, e in enumerate(s_ends):
        if j + s_offset < first_student or e == 0:
            continue
        i = where.get(e)
        if i is not None:
            out.append((i + t_offset, j + s_offset))
    return tuple(out)


def _windows(ids: Sequence[int], tokens: Sequence[bytes], size: int) -> list[tuple[int, int]]:
    """``(start, end)`` token spans of about ``size`` tokens, cut where a token starts with white space."""
    out, start, n = [], 0, len(ids)
    while start < n:
        end = min(n, start + size)
        if end < n:
            cut = end
            while cut > start + size // 2 and not (tokens[ids[cut]][:1] and tokens[ids[cut]][0] in _SPACE):
                cut -= 1
            end = cut if cut > start + size // 2 else end
        out.append((start, end))
        start = end
    return out


def mine_snippets(texts: Iterable[str], *, teacher, student, new_ids: Sequence[int], per_token: int = 16,
                  window_tokens: int = 32, seed: int = 0, teacher_prefix: Sequence[int] = (),
                  student_prefix: Sequence[int] = (), max_snippets: int | None = None) -> SnippetSet:
    """Select snippets of ``texts`` so that each id in ``new_ids`` occurs up to ``per_token`` times.

    Args:
        texts: the corpus (documents).
        teacher, student: :class:`tokkit.tokenizer.Tokenizer` handles (``encode_batch``, ``vocab``).
        new_ids: the student ids whose rows are learnt.
        per_token: wanted occurrences of each new id in the selection.
        window_tokens: student tokens per window (about).
        seed: order of the windows (the selection is deterministic for a seed).
        teacher_prefix, student_prefix: start tokens put before each reading (conditioned on, not aligned).
        max_snippets: a hard cap on the selection (None: none).

    Raises:
        TokkitError: the corpus holds no text, or none of its windows contains a new id.
    """
    if per_token < 1 or window_tokens < 2:
        raise TokkitError(f"snippets: per_token must be >= 1 and window_tokens >= 2 (found {per_token}, {window_tokens})")
    docs = [t for t in texts if t and t.strip()]
    n_bytes = sum(len(t.encode("utf-8")) for t in docs)
    if not docs:
        raise TokkitError("the corpus for the new rows holds no text; give text that contains the new tokens")
    s_tokens = student.vocab.tokens
    new = frozenset(new_ids)
    windows: list[str] = []
    for doc, ids in zip(docs, student.encode_batch(docs)):
        raw = doc.encode("utf-8")
        ends = token_ends([s_tokens[i] for i in ids], raw)
        if ends is None:
            continue
        for a, b in _windows(ids, s_tokens, window_tokens):
            if not new.intersection(ids[a:b]):
                continue
            start = ends[a - 1] if a else 0
            piece = raw[start:ends[b - 1]].decode("utf-8", errors="ignore").lstrip()
            if piece:
                windows.append(piece)
    order = list(range(len(windows)))
    random.Random(f"snippets:{seed}").shuffle(order)
    windows = [windows[i] for i in order]
    s_ids = student.encode_batch(windows)
    postings: dict[int, list[int]] = {}
    for w, ids in enumerate(s_ids):
        for i in dict.fromkeys(ids):
            if i in new:
                postings.setdefault(i, []).append(w)
    if not postings:
        raise TokkitError(f"none of the {len(new):,} new tokens occurs in the corpus ({n_bytes:,} bytes); give text "
                          "that contains them (the text the tokenizer was extended on, or --corpus for a transplant)")
    count: dict[int, int] = {}
    chosen: list[int] = []
    taken = set()
    for tok in sorted(postings, key=lambda i: (len(postings[i]), i)):
        for w in postings[tok]:
            if count.get(tok, 0) >= per_token or (max_snippets is not None and len(chosen) >= max_snippets):
                break
            if w in taken:
                continue
            taken.add(w)
            chosen.append(w)
            for i in s_ids[w]:
                if i in new:
                    count[i] = count.get(i, 0) + 1
    chosen.sort()
    texts_c = [windows[w] for w in chosen]
    t_ids = teacher.encode_batch(texts_c)
    t_tokens = teacher.vocab.tokens
    tp, sp = tuple(teacher_prefix), tuple(student_prefix)
    out = []
    for text, w, tids in zip(texts_c, chosen, t_ids):
        sids = s_ids[w]
        raw = text.encode("utf-8")
        te, se = token_ends([t_tokens[i] for i in tids], raw), token_ends([s_tokens[i] for i in sids], raw)
        if te is None or se is None:
            continue
        first = next(j for j, i in enumerate(sids) if i in new) + len(sp)
        pairs = aligned_pairs(te, se, t_offset=len(tp), s_offset=len(sp), first_student=first)
        if pairs:
            out.append(Snippet(tp + tuple(tids), sp + tuple(sids), pairs))
    missing = tuple(sorted(new - set(postings)))
    log.info("snippets: %d of %d windows for %d new ids (%d without any), %d student tokens",
             len(out), len(windows), len(new), len(missing), sum(len(s.student) for s in out))
    return SnippetSet(tuple(out), count, missing, len(windows), n_bytes)
