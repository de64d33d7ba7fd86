"""Training text for ``tokkit heal``: the held-out split, seeded windows, batches tokenized on both sides.

SOURCE is read as documents (:func:`tokkit.transplant.hypernet.data.read_corpus`: text files, .jsonl
with a ``text`` field, folders), joined with blank lines; the last ``heldout`` share (cut at a line
end) is never trained on and is scored before and after. A step draws ``batch_size`` windows of about
``seq_bytes`` UTF-8 bytes starting at a word, from ``random.Random(f"{seed}:{step}:{rank}")`` only,
so the step number is the whole data state of a run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch

from tokkit.errors import FormatError
from tokkit.tokenizer import Tokenizer
from tokkit.transplant.heal.chunks import common_chunks, token_ends
from tokkit.transplant.hypernet.data import read_corpus

__all__ = ["HealText", "load_text", "start_ids", "Side", "Batch", "make_batch"]


@dataclass(frozen=True)
class HealText:
    train: str
    heldout: str


def load_text(sources: Sequence[str], *, heldout: float, heldout_max_bytes: int, seq_bytes: int) -> HealText:
    """Read SOURCE and split off the held-out tail; refuse text shorter than one training sequence."""
    docs = read_corpus(sources)
    text = "\n\n".join(docs)
    n_held = min(int(len(text) * heldout), heldout_max_bytes)
    cut = len(text)
    if n_held > 0:
        cut = text.rfind("\n", 0, len(text) - n_held) + 1 or len(text) - n_held
        while len(text[cut:].encode()) > max(heldout_max_bytes, 1) and "\n" in text[cut + 1:]:
            cut = text.index("\n", cut + 1) + 1
    train, held = text[:cut], text[cut:]
    n = len(train.encode())
    if n < seq_bytes:
        raise FormatError(f"SOURCE {list(sources)} holds {n:,} bytes of training text (after holding out "
                          f"{len(held.encode()):,} bytes); one sequence needs --seq-bytes {seq_bytes}. Pass more text "
                          f"or a smaller --seq-bytes")
    return HealText(train, held)


def start_ids(tok: Tokenizer) -> list[int]:
    """The token(s) a sequence starts from: what the tokenizer prepends, else its bos, else its eos."""
    probe = tok.encode("a", add_special_tokens=True)
    plain = tok.encode("a")
    if len(probe) > len(plain) and probe[-len(plain):] == plain:
        return probe[: len(probe) - len(plain)]
    for role in ("bos", "eos"):
        if tok.vocab.role_id(role) is not None:
            return [tok.vocab.role_id(role)]  # type: ignore[list-item]
    raise FormatError(f"tokenizer {tok.name} has no bos/eos token to start a sequence with")


def draw_windows(text: str, rng: random.Random, n: int, *, seq_bytes: int) -> list[str]:
    """``n`` windows of ≤ ``seq_bytes`` UTF-8 bytes, each starting at a word (after whitespace)."""
    out = []
    for _ in range(n):
        start = rng.randrange(max(1, len(text) - seq_bytes + 1))
        if start and not text[start - 1].isspace():
            ws = next((i for i in range(start, min(start + 64, len(text))) if text[i].isspace()), None)
            if ws is not None:
                start = ws + 1
        w = text[start:start + seq_bytes].encode()[:seq_bytes].decode("utf-8", errors="ignore")
        out.append(w or text[:seq_bytes])
    return out


@dataclass(frozen=True)
class Side:
    """One model's tokenizer with its start ids and token bytes."""

    tok: Tokenizer
    prefix: tuple[int, ...]

    @classmethod
    def of(cls, tok: Tokenizer) -> "Side":
        return cls(tok, tuple(start_ids(tok)))

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.tok.encode_batch(texts)


@dataclass
class Batch:
    """One step's sequences, tokenized for the student (and the teacher for ALM).

    ``input (B, T)`` start ids + tokens, right-padded with 0; ``attention (B, T)``; ``targets (B, T-1)``
    the next token at each position (-100: no target). With a teacher: ``t_*`` likewise, and
    ``s_chunk`` / ``t_chunk`` give every valid target (row-major over ``targets >= 0``) its chunk in
    ``0..n_chunks-1``; sequences whose tokens do not spell the text get no chunks (``dropped``).
    """

    input: torch.Tensor
    attention: torch.Tensor
    targets: torch.Tensor
    n_bytes: int
    t_input: torch.Tensor | None = None
    t_attention: torch.Tensor | None = None
    t_targets: torch.Tensor | None = None
    s_chunk: torch.Tensor | None = None
    t_chunk: torch.Tensor | None = None
    s_in_chunk: torch.Tensor | None = None  # (N_s,) bool: the target belongs to a chunk
    t_in_chunk: torch.Tensor | None = None
    n_chunks: int = 0
    dropped: int = 0

    @property
    def tokens(self) -> int:
        return int((self.targets >= 0).sum())


def _pad(seqs: list[list[int]], prefix: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    T = len(prefix) + max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    att = torch.zeros(len(seqs), T, dtype=torch.long)
    tgt = torch.full((len(seqs), T - 1), -100, dtype=torch.long)
    for r, s in enumerate(seqs):
        row = list(prefix) + s
        ids[r, : len(row)] = torch.tensor(row)
        att[r, : len(row)] = 1
        tgt[r, len(prefix) - 1: len(row) - 1] = torch.tensor(s)
    return ids, att, tgt


def make_batch(texts: list[str], student: Side, teacher: Side | None) -> Batch:
    """Tokenize ``texts`` for the student (and teacher) and align their chunks."""
    s_ids = student.encode(texts)
    ids, att, tgt = _pad(s_ids, student.prefix)
    batch = Batch(ids, att, tgt, sum(len(t.encode()) for t in texts))
    if teacher is None:
        return batch
    t_ids = teacher.encode(texts)
    batch.t_input, batch.t_attention, batch.t_targets = _pad(t_ids, teacher.prefix)
    s_chunk, t_chunk, s_in, t_in = [], [], [], []
    offset = 0
    sv, tv = student.tok.vocab.tokens, teacher.tok.vocab.tokens
    for text, s, t in zip(texts, s_ids, t_ids):
        raw = text.encode()
        se = token_ends([sv[i] for i in s], raw)
        te = token_ends([tv[i] for i in t], raw)
        if se is None or te is None or not s or not t:
            batch.dropped += 1
            s_chunk += [0] * len(s)
            t_chunk += [0] * len(t)
            s_in += [False] * len(s)
            t_in += [False] * len(t)
            continue
        ch = common_chunks(se, te)
        s_chunk += [offset + c for c in ch.student]
        t_chunk += [offset + c for c in ch.teacher]
        s_in += [True] * len(s)
        t_in += [True] * len(t)
        offset += ch.n
    batch.s_chunk, batch.t_chunk = torch.tensor(s_chunk, dtype=torch.long), torch.tensor(t_chunk, dtype=torch.long)
    batch.s_in_chunk, batch.t_in_chunk = torch.tensor(s_in), torch.tensor(t_in)
    batch.n_chunks = offset
    return batch
