"""Bits per byte: a language-model score that is comparable across tokenizers.

``bpb = Σ NLL / (ln 2 · UTF-8 bytes)`` on identical raw text. Per-token perplexity is not
comparable across tokenizers (a better-compressing tokenizer has fewer, harder tokens), so it is
never reported. The text is cut into segments of at most ``segment_bytes`` at line boundaries;
every model scores the same segments, each from a fresh context that starts with the model's
beginning-of-text token (what its tokenizer prepends, else its ``bos``, else its ``eos``); that
token is conditioned on, not scored, and every text byte is scored exactly once.

For a model written by ``tokkit transplant`` (a ``transplant_report.json`` beside it) the score also
splits the NLL by the rows the transplant *built* (``new`` tokens): how many target tokens are new and
what they cost, and the **leak** — the nats lost at every other position to probability mass on new
rows, ``Σ log(Z_all / Z_copied)``. On text where few tokens are new the leak, not the new tokens'
own cost, decides between reconstruction methods.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import logging

import torch

from tokkit.errors import VocabMismatchError
from tokkit.transplant.frozen_lm import length_groups

log = logging.getLogger(__name__)

__all__ = ["segments", "prefix_bytes", "LMScore", "bits_per_byte", "score_texts", "start_tokens", "combine"]


def segments(text: str, *, segment_bytes: int = 2048) -> list[str]:
    """Split ``text`` into consecutive pieces of ≤ ``segment_bytes`` UTF-8 bytes (at newlines, else spaces)."""
    out: list[str] = []
    cur, size = [], 0
    for line in text.splitlines(keepends=True):
        parts = [line]
        if len(line.encode()) > segment_bytes:  # a long paragraph: cut at spaces
            parts, buf = [], None
            for w in line.split(" "):
                cand = w if buf is None else buf + " " + w
                if len(cand.encode()) + 1 > segment_bytes and buf is not None:  # +1: the space kept on the part
                    parts.append(buf + " ")
                    buf = w
                else:
                    buf = cand
            parts.append(buf or "")
        for p in parts:
            n = len(p.encode())
            if size + n > segment_bytes and cur:
                out.append("".join(cur))
                cur, size = [], 0
            cur.append(p)
            size += n
    if cur:
        out.append("".join(cur))
    return [s for s in out if s]


def prefix_bytes(text: str, max_bytes: int | None) -> str:
    """The longest prefix of ``text`` of at most ``max_bytes`` UTF-8 bytes that ends at a character boundary
    (deterministic: the same file and limit always give the same prefix). ``None``: the whole text."""
    if max_bytes is None:
        return text
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, found {max_bytes}")
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")  # a cut inside a character drops that character


@dataclass(frozen=True)
class LMScore:
    """One model on one text: total NLL (nats), bytes, tokens, bits per byte."""

    model: str
    domain: str
    nll_nats: float
    bytes: int
    tokens: int
    seconds: float
    new_targets: int | None = None  # transplanted model: target tokens whose rows were built (else None)
    nll_new_targets: float | None = None  # their NLL (nats)
    leak_nats: float | None = None  # Σ over other positions of log(Z_all / Z_without_new_rows)

    @property
    def bits_per_byte(self) -> float:
        return self.nll_nats / (math.log(2) * self.bytes) if self.bytes else float("nan")

    def as_dict(self) -> dict[str, object]:
        d = {"model": self.model, "domain": self.domain, "bits_per_byte": round(self.bits_per_byte, 5),
             "bytes": self.bytes, "tokens": self.tokens, "nll_nats": round(self.nll_nats, 3),
             "seconds": round(self.seconds, 1)}
        if self.new_targets is not None:
            d |= {"new_targets": self.new_targets, "nll_new_targets": round(self.nll_new_targets or 0.0, 3),
                  "leak_nats": round(self.leak_nats or 0.0, 3)}
        return d


def _new_rows(model_dir: Path, rows: int) -> torch.Tensor | None:
    """Bool mask ``(rows,)`` of the rows a transplant built, or None if ``model_dir`` is not a transplant."""
    from tokkit.transplant.report import built_ids

    ids = built_ids(model_dir)
    if ids is None:
        return None
    mask = torch.zeros(rows, dtype=torch.bool)
    mask[[i for i in ids if i < rows]] = True
    return mask


def start_tokens(tok) -> list[int]:
    """The ids a segment starts with: what the tokenizer prepends, else its bos, else its eos, else none."""
    probe = tok.encode("a", add_special_tokens=True)
    plain = tok.encode("a")
    if len(probe) > len(plain) and probe[-len(plain):] == plain:
        return probe[: len(probe) - len(plain)]
    v = tok.vocab
    for role in ("bos", "eos"):
        if v.role_id(role) is not None:
            return [v.role_id(role)]
    return []


#: float32 logits held at once with ``batch_tokens`` (512 MB): a batch holds at most this / vocabulary-rows tokens.
MAX_LOGITS = 1 << 27


def _batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Segment indices grouped by similar length (shortest first), each group's ``count · longest`` ≤ ``budget``
    (``budget`` 0: one segment per group, in text order)."""
    if budget <= 0:
        return [[i] for i in range(len(lengths))]
    return length_groups(lengths, budget)


def bits_per_byte(model_dir: str | Path, texts: dict[str, str], *, segment_bytes: int = 2048,
                  device: str | torch.device = "cpu", progress: bool = False, batch_tokens: int | None = None,
                  max_bytes: int | None = None) -> list[LMScore]:
    """Score each named text with the HF causal LM in ``model_dir`` (its own tokenizer files).

    Runs under ``torch.inference_mode``. By default each segment is one forward (on CPU this is the
    fastest and keeps bits per byte bit-for-bit those of a plain per-segment loop). ``batch_tokens=N``
    packs segments of similar length into right-padded, masked batches of at most ``N`` tokens (for
    accelerators); on SmolLM2 that moved bits per byte by 3e-6 (float32 kernels with a padding mask)
    and was slower on a 2-core CPU (``benchmarks/eval_speed.py``). ``max_bytes`` scores only each
    text's first ``max_bytes`` bytes (:func:`prefix_bytes`). Returns one :class:`LMScore` per text
    (``domain`` = its name); :func:`score_texts` yields them one by one as they finish.
    """
    return list(score_texts(model_dir, texts, segment_bytes=segment_bytes, device=device, progress=progress,
                            batch_tokens=batch_tokens, max_bytes=max_bytes))


#: The estimate is printed once this many forwards after the first are timed (or PROBE_SECONDS of them).
PROBE_FORWARDS = 3
PROBE_SECONDS = 3.0


def score_texts(model_dir: str | Path, texts: dict[str, str], *, segment_bytes: int = 2048,
                device: str | torch.device = "cpu", progress: bool = False, batch_tokens: int | None = None,
                max_bytes: int | None = None, notify: Callable[[str], None] | None = None) -> Iterator[LMScore]:
    """:func:`bits_per_byte`, one :class:`LMScore` per text as soon as it is scored (in ``texts`` order).

    Every text is tokenized first (one thread: no pool to start); once the first few forwards are timed,
    ``notify`` (default: the log) gets an estimate of the whole model's work: ``model: N tokens in S
    segments x ~R ms/token ≈ T on this machine (K threads)``.
    """
    from tqdm.auto import tqdm

    from tokkit.hf_models import load_causal_lm
    from tokkit.tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, device=device)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tok.vocab) > rows:
        raise VocabMismatchError(f"{model_dir}: tokenizer has {len(tok.vocab)} ids but the model only {rows} rows")
    prefix = start_tokens(tok)
    if not prefix:  # no start token at all: the first token would be conditioned on, its bytes not scored
        raise VocabMismatchError(f"{model_dir}: the tokenizer has no bos/eos token to start a segment with")
    p = len(prefix)
    new = _new_rows(Path(model_dir), rows)
    if new is not None:
        new = new.to(device)
    budget = max(1, min(batch_tokens, MAX_LOGITS // rows)) if batch_tokens else 0  # 0: one segment per forward
    cut = {name: prefix_bytes(text, max_bytes) for name, text in texts.items()}
    # one thread: the texts are small next to the model's work, and a pool per call is a thread to start
    encoded = {name: [prefix + tok.encode(s) for s in segments(text, segment_bytes=segment_bytes)]
               for name, text in cut.items()}
    total = sum(len(s) - p for seqs in encoded.values() for s in seqs)
    probe = _Probe(Path(model_dir).name, total, sum(len(v) for v in encoded.values()), notify or log.info)
    for name, text in cut.items():
        t0 = time.perf_counter()
        nll, ntok, n_new, nll_new, leak = 0.0, 0, 0, 0.0, 0.0
        seqs = encoded[name]
        bar = tqdm(total=len(seqs), desc=f"{Path(model_dir).name}:{name}", disable=None if progress else True)
        with torch.inference_mode():
            for batch in _batches([len(s) for s in seqs], budget):
                t_fwd = time.perf_counter()
                width = max(len(seqs[i]) for i in batch)
                x = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    x[r, :len(seqs[i])] = torch.tensor(seqs[i])
                    mask[r, :len(seqs[i])] = 1
                x, mask = x.to(device), mask.to(device)
                ragged = bool((mask == 0).any())
                out = model(input_ids=x, attention_mask=mask if ragged else None).logits
                for r, i in enumerate(batch):
                    n = len(seqs[i]) - p
                    logits = out[r, p - 1:p - 1 + n].float()  # (n, V): the prediction of each text token
                    y = x[r, p:p + n]
                    z = logits.logsumexp(-1)  # (n,)
                    lp = logits.gather(1, y[:, None])[:, 0] - z
                    nll -= float(lp.sum())
                    ntok += n
                    if new is not None and bool(new.any()):
                        is_new = new[y]
                        n_new += int(is_new.sum())
                        nll_new -= float(lp[is_new].sum())
                        leak += float((z - logits[:, ~new].logsumexp(-1))[~is_new].sum())
                bar.update(len(batch))
                probe.add(sum(len(seqs[i]) - p for i in batch), time.perf_counter() - t_fwd)
        bar.close()
        extra = (n_new, nll_new, leak) if new is not None else (None, None, None)
        yield LMScore(str(model_dir), name, nll, len(text.encode()), ntok, time.perf_counter() - t0, *extra)


class _Probe:
    """Times the first forwards of a model (the very first, which pays one-off costs, left out) and says
    once what the whole model's work will take (when that is at least ``ESTIMATE_MIN_SECONDS``)."""

    def __init__(self, name: str, tokens: int, n_segments: int, say: Callable[[str], None]) -> None:
        self.name, self.tokens, self.n_segments, self.say = name, tokens, n_segments, say
        self.forwards, self.timed_tokens, self.seconds, self.line = 0, 0, 0.0, None

    def add(self, tokens: int, seconds: float) -> None:
        self.forwards += 1
        if self.line is not None or self.forwards == 1:
            return
        self.timed_tokens += tokens
        self.seconds += seconds
        if self.timed_tokens and (self.forwards > PROBE_FORWARDS or self.seconds >= PROBE_SECONDS):
            from tokkit.optim import format_duration
            from tokkit.optim.loop import ESTIMATE_MIN_SECONDS

            per = self.seconds / self.timed_tokens
            if self.tokens * per < ESTIMATE_MIN_SECONDS:  # over in seconds: nothing worth announcing
                self.line = ""
                return
            n = torch.get_num_threads()
            self.line = (f"{self.name}: {self.tokens:,} tokens in {self.n_segments} segments x ~{1000 * per:.2g} ms/token "
                         f"≈ {format_duration(self.tokens * per)} on this machine ({n} thread{'s' if n > 1 else ''})")
            self.say(self.line)


def combine(scores: Sequence[LMScore], *, domain: str = "all") -> LMScore:
    """Sum several texts' scores of one model into one (bytes-weighted bits per byte)."""
    split = all(s.new_targets is not None for s in scores)
    return LMScore(scores[0].model, domain, sum(s.nll_nats for s in scores), sum(s.bytes for s in scores),
                   sum(s.tokens for s in scores), sum(s.seconds for s in scores),
                   sum(s.new_targets or 0 for s in scores) if split else None,
                   sum(s.nll_new_targets or 0.0 for s in scores) if split else None,
                   sum(s.leak_nats or 0.0 for s in scores) if split else None)
