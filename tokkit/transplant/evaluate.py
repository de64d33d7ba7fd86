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
from typing import Sequence

import torch

from tokkit.errors import VocabMismatchError

__all__ = ["segments", "LMScore", "bits_per_byte"]


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


def _prefix(tok) -> list[int]:
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
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * lengths[i] <= budget:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@torch.inference_mode()
def bits_per_byte(model_dir: str | Path, texts: dict[str, str], *, segment_bytes: int = 2048,
                  device: str | torch.device = "cpu", progress: bool = False, batch_tokens: int | None = None) -> list[LMScore]:
    """Score each named text with the HF causal LM in ``model_dir`` (its own tokenizer files).

    Runs under ``torch.inference_mode``. By default each segment is one forward (on CPU this is the
    fastest and keeps bits per byte bit-for-bit those of a plain per-segment loop). ``batch_tokens=N``
    packs segments of similar length into right-padded, masked batches of at most ``N`` tokens (for
    accelerators); on SmolLM2 that moved bits per byte by 3e-6 (float32 kernels with a padding mask)
    and was slower on a 2-core CPU (``benchmarks/eval_speed.py``). Returns one :class:`LMScore` per
    text (``domain`` = its name).
    """
    from tqdm.auto import tqdm

    from tokkit.hf_models import load_causal_lm
    from tokkit.tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, device=device)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tok.vocab) > rows:
        raise VocabMismatchError(f"{model_dir}: tokenizer has {len(tok.vocab)} ids but the model only {rows} rows")
    prefix = _prefix(tok)
    if not prefix:  # no start token at all: the first token would be conditioned on, its bytes not scored
        raise VocabMismatchError(f"{model_dir}: the tokenizer has no bos/eos token to start a segment with")
    p = len(prefix)
    new = _new_rows(Path(model_dir), rows)
    if new is not None:
        new = new.to(device)
    budget = max(1, min(batch_tokens, MAX_LOGITS // rows)) if batch_tokens else 0  # 0: one segment per forward
    scores = []
    for name, text in texts.items():
        t0 = time.perf_counter()
        nll, ntok, n_new, nll_new, leak = 0.0, 0, 0, 0.0, 0.0
        segs = segments(text, segment_bytes=segment_bytes)
        seqs = [prefix + ids for ids in tok.encode_batch(segs)]
        bar = tqdm(total=len(segs), desc=f"{Path(model_dir).name}:{name}", disable=not progress)
        for batch in _batches([len(s) for s in seqs], budget):
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
        bar.close()
        extra = (n_new, nll_new, leak) if new is not None else (None, None, None)
        scores.append(LMScore(str(model_dir), name, nll, len(text.encode()), ntok, time.perf_counter() - t0, *extra))
    return scores


def combine(scores: Sequence[LMScore], *, domain: str = "all") -> LMScore:
    """Sum several texts' scores of one model into one (bytes-weighted bits per byte)."""
    split = all(s.new_targets is not None for s in scores)
    return LMScore(scores[0].model, domain, sum(s.nll_nats for s in scores), sum(s.bytes for s in scores),
                   sum(s.tokens for s in scores), sum(s.seconds for s in scores),
                   sum(s.new_targets or 0 for s in scores) if split else None,
                   sum(s.nll_new_targets or 0.0 for s in scores) if split else None,
                   sum(s.leak_nats or 0.0 for s in scores) if split else None)
