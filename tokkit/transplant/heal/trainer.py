"""The heal loop: seeded steps of LM and/or ALM loss on the trainable rows, checkpoints, held-out score.

One step: draw ``batch_size`` windows of SOURCE from ``random.Random(f"{seed}:{step}:{rank}")``,
tokenize them for the student (and the teacher), run the student with its trainable rows scattered
in, and (ALM) the frozen teacher under ``torch.no_grad``; the loss is the next-token NLL, the ALM
chunk loss, or both balanced (:mod:`tokkit.transplant.heal.alm`). AdamW on the trainable tensors
only, warm-up then cosine (the hypernetwork's schedule), gradient clipping. Under ``torchrun`` each
rank draws its own windows and the gradients are averaged with ``all_reduce``; rank 0 checkpoints,
scores and writes.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tokkit.errors import checkpoint_errors
from tokkit.config import peak_rss_mb
from tokkit.optim import StepLoop, average_gradients, sum_over_ranks, warmup_cosine
from tokkit.transplant.heal.alm import alm_loss, balanced_sum, chunk_logprobs, lm_loss, token_logprobs
from tokkit.transplant.heal.checkpoint import check_progress, checkpoint_dir, load_state, restore, run_key, save_state
from tokkit.transplant.heal.config import RESUMABLE_CHANGES, HealConfig, Loss
from tokkit.transplant.heal.data import Batch, Side, draw_windows, make_batch
from tokkit.transplant.heal.rows import Student, teacher_token_logprobs

__all__ = ["HealResult", "train_rows", "score_text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealResult:
    steps: int
    resumed_from: int
    seconds: float
    tokens: int
    chunks: int
    peak_rss_gb: float
    peak_device_gb: float | None
    heldout: dict[str, dict[str, float]]  # text -> {"before": bpb, "after": bpb}
    history: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    rank: int = 0
    world: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False  # the --max-minutes budget ended the run at step ``steps`` (< cfg.steps); resume continues
    estimate: str | None = None  # the up-front time estimate printed after the first steps


@torch.no_grad()
def score_text(forward, side: Side, text: str, device: torch.device, *, segment_bytes: int = 2048) -> float:
    """Bits per byte of ``text`` under ``forward(ids, attention) -> logits``, scored as ``tokkit eval-lm`` does."""
    from tokkit.transplant.evaluate import segments

    nll, n_bytes = 0.0, 0
    for seg in segments(text, segment_bytes=segment_bytes):
        ids = side.tok.encode(seg)
        x = torch.tensor([list(side.prefix) + ids], device=device)
        logits = forward(x, torch.ones_like(x))[0, len(side.prefix) - 1:-1].float()
        nll -= float(token_logprobs(logits, x[0, len(side.prefix):]).sum())
        n_bytes += len(seg.encode())
    return nll / (math.log(2) * max(n_bytes, 1))


def _step_loss(student, teacher, batch: Batch, cfg: HealConfig, device) -> tuple[torch.Tensor, dict[str, float]]:
    tgt = batch.targets.to(device)  # (B, T-1)
    mask = tgt >= 0
    select = torch.zeros(batch.input.shape, dtype=torch.bool, device=device)
    select[:, :-1] = mask
    logits = student(batch.input.to(device), batch.attention.to(device), select)  # (N_s, R): scored positions only
    s_lp = token_logprobs(logits, tgt[mask])  # (N_s,)
    losses: dict[str, torch.Tensor] = {}
    stats = {"bpb": -float(s_lp.detach().sum()) / (math.log(2) * batch.n_bytes)}
    if cfg.loss in (Loss.LM, Loss.ALM_LM):
        losses["lm"] = lm_loss(s_lp)
    if cfg.loss in (Loss.ALM, Loss.ALM_LM):
        t_lp = teacher_token_logprobs(teacher, batch.t_input.to(device), batch.t_attention.to(device),
                                      batch.t_targets.to(device))  # type: ignore[union-attr]
        s_in, t_in = batch.s_in_chunk.to(device), batch.t_in_chunk.to(device)  # type: ignore[union-attr]
        a = chunk_logprobs(t_lp[t_in], batch.t_chunk.to(device)[t_in], batch.n_chunks)  # type: ignore[union-attr]
        b = chunk_logprobs(s_lp[s_in], batch.s_chunk.to(device)[s_in], batch.n_chunks)  # type: ignore[union-attr]
        losses["alm"] = alm_loss(a, b, tau=cfg.tau)
        stats["teacher_bpb"] = -float(t_lp.sum()) / (math.log(2) * batch.n_bytes)
    for k, v in losses.items():
        stats[k] = float(v.detach())
    if len(losses) > 1:
        loss, scale = balanced_sum(losses, logits, weights={"lm": cfg.lm_weight})
        stats |= {f"w_{k}": v for k, v in scale.items()}
    else:
        loss = next(iter(losses.values()))
    return loss, stats


def _lr_at(step: int, cfg: HealConfig) -> float:
    """Warm-up over 10% of the steps (at most 100), then cosine to 10% of ``--lr``."""
    return warmup_cosine(step, steps=cfg.steps, peak=cfg.lr, floor=0.1)


def train_rows(cfg: HealConfig, student: Student, student_side: Side, *, teacher=None, teacher_side: Side | None,
               train_text: str, heldout: dict[str, str], out_dir: Path, resume: bool, progress: bool,
               device: torch.device, rank: int = 0, world: int = 1, max_minutes: float | None = None,
               clock_start: float | None = None) -> HealResult:
    """Run (or resume) the loop; the trained tensors stay in ``student``. Checkpoints beside ``out_dir``.

    ``max_minutes`` (from ``clock_start``): stop at a checkpoint when the next step would not fit
    (``HealResult.stopped``); the checkpoint is kept so that a resumed run continues from it.
    """
    params = student.trainable()
    groups = [{"params": [p for n, p in params.items() if not n.startswith("body.")], "scale": 1.0}]
    if any(n.startswith("body.") for n in params):
        groups.append({"params": [p for n, p in params.items() if n.startswith("body.")], "scale": cfg.body_lr_scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in RESUMABLE_CHANGES}
    key = run_key(settings, student.lm.get_input_embeddings().weight)
    ck_dir = checkpoint_dir(out_dir)
    start, history, evals = 0, [], []
    if resume and ck_dir.exists():
        with checkpoint_errors(ck_dir, fix="resume from an intact checkpoint, or pass --force to start over"):
            ck = load_state(ck_dir, key)
            check_progress(ck, steps=cfg.steps)
            restore(ck, params, opt)
        start, history, evals = ck.step, list(ck.meta["history"]), list(ck.meta["evals"])
        log.info("resuming %s from step %d", ck_dir, start)

    def forward(x, att):
        return student(x, att)

    def evaluate(step: int) -> None:
        if rank != 0 or any(e["step"] == step for e in evals):
            return
        evals.append({"step": step, **{n: round(score_text(forward, student_side, t, device), 5)
                                       for n, t in heldout.items() if t}})

    evaluate(0)
    t0, n_tokens, n_chunks = time.perf_counter(), 0, 0
    loop = StepLoop("heal", start=start, steps=cfg.steps, checkpoint_every=cfg.checkpoint_every, max_minutes=max_minutes,
                    clock_start=clock_start, fix="start again (--force) with a lower --lr", progress=progress, rank=rank,
                    world=world)
    for step in loop:
        rng = random.Random(f"{cfg.seed}:{step}:{rank}")
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg) * g["scale"]
        batch = make_batch(draw_windows(train_text, rng, cfg.batch_size, seq_bytes=cfg.seq_bytes), student_side,
                           teacher_side if cfg.loss is not Loss.LM else None)
        loss, stats = _step_loss(student, teacher, batch, cfg, device)
        loop.check(loss, lr=_lr_at(step, cfg))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        del loss  # the graph (activations of every layer) goes now, not when the next step's replaces it
        average_gradients(params.values(), world)
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        opt.step()
        n_tokens += batch.tokens
        n_chunks += batch.n_chunks
        stats = {k: round(v, 5) for k, v in stats.items()} | {"chunks": batch.n_chunks}
        loop.show(**{k: stats[k] for k in ("lm", "alm", "bpb", "chunks") if k in stats})
        history.append({"step": step + 1, **stats})
        done = step + 1 == cfg.steps
        if cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or done):
            evaluate(step + 1)
        if loop.checkpoint_due(step) and rank == 0:
            save_state(ck_dir, tensors=dict(params), opt=opt,
                       meta={"key": key, "step": step + 1, "history": history, "evals": evals})
    evaluate(loop.end)
    n_tokens, n_chunks = (int(v) for v in sum_over_ranks([n_tokens, n_chunks], world))
    heldout_bpb = {}
    if evals:
        first, last = evals[0], evals[-1]
        heldout_bpb = {n: {"before": first[n], "after": last[n]} for n in first if n != "step" and n in last}
    peak_dev = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return HealResult(loop.end, start, time.perf_counter() - t0, n_tokens, n_chunks, peak_rss_mb() / 1024, peak_dev,
                      heldout_bpb, history, evals, rank, world, stopped=loop.stopped, estimate=loop.estimate)
