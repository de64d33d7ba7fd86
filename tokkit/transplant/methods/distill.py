"""Token Distillation: learn new input rows from the model itself — arXiv:2505.20133.

Dobler, Elliott & de Melo (ICLR 2026): a word the model never saw as one token is built by its first
layers from the pieces ("neural detokenization"), so no mean of piece rows (FVT) holds it. Token
Distillation optimises the new token's input row ``e*`` so that the frozen model, reading the snippet
with ``t*`` as one id (the **student**), produces the hidden states it produces reading the old
multi-token spelling (the **teacher**), at every aligned position from the new token on:

    min_{E_new}  Σ_snippets Σ_(i, j) aligned  ‖ h_L^student(j) − h_L^teacher(i) ‖² / D

``h_L`` is the model's final norm applied to the residual stream after ``L`` layers (``L`` = all layers:
the model's last hidden state, the paper's default). An earlier ``L`` stops both forwards there, so a
step costs ``L / n_layers`` of a full one. Only the new rows get gradients (they live in a separate
``(K, D)`` parameter scattered into the frozen matrix, so every other row is bit-exact by
construction); the teacher's states are computed once and cached (float32); snippets are batched by
length; a token whose row moves less than ``tol`` (relative) in an epoch stops training, and snippets
with no training token left are dropped. The rows start from another method's (FVT for an extension,
the TokenAdapt heuristic for a transplant).

Compared with the paper's code (``konstantinjdobler/token-distillation``, ``train_loop.py``): the same
objective and alignment (unmerged positions + the last piece of each merged spelling); snippets are
whole-word windows chosen to cover every token (:mod:`tokkit.transplant.snippets`) instead of 100 fixed
windows per token; a transplant aligns by common byte boundaries, since the two tokenizations are not
refinements of one another. Output rows are a separate step (:mod:`tokkit.transplant.output_rows`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tokkit.errors import TokkitError
from tokkit.transplant.base import Cost, EmbeddingInit, InitContext, InitResult
from tokkit.transplant.frozen_lm import (auto_layer, config_layers, embed_scale, embed_with_rows, first_layers,
                                         length_groups, load_frozen_lm, pad_batch, resolve_layer, run_states)
from tokkit.transplant.snippets import Snippet, SnippetSet, mine_snippets

__all__ = ["DistillSettings", "DistillInit", "distill_rows", "first_layers", "student_matrix", "load_frozen_lm"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillSettings:
    """Knobs of :func:`distill_rows` (the user-facing defaults live in ``TransplantConfig``).

    Attributes:
        per_token: wanted snippets (occurrences) per new token.
        window_tokens: student tokens per snippet (about).
        layer: ``L``, the layer whose states are matched (1..n_layers; -1: the last, the paper's default;
            None: a quarter of the layers, rounded — what fits a CPU budget, measured in docs/extend.md).
        epochs: passes over the snippets.
        lr: Adam step size as a fraction of the RMS of the matrix's fixed rows (scale-free across models).
        batch_tokens: padded tokens per forward.
        tol: a token stops when its row moved less than ``tol × ‖row‖`` in an epoch.
        checkpoint_every: steps between checkpoints (and one at each epoch's end), when a checkpoint is kept.
        cache_bytes: memory for the teacher's cached states in float32; above it they are kept in bfloat16.
    """

    per_token: int = 8
    window_tokens: int = 32
    layer: int | None = None
    epochs: int = 2
    lr: float = 0.05
    batch_tokens: int = 2048
    tol: float = 0.0
    checkpoint_every: int = 50
    cache_bytes: int = 4 << 30


def student_matrix(ctx: InitContext, start_rows: torch.Tensor, new_ids: Sequence[int]) -> torch.Tensor:
    """The student's whole input matrix ``(R_dst, D)`` float32: matched rows copied from the base, the
    mean ordinary row for unmatched specials, ``start_rows (K, D)`` at ``new_ids``."""
    al = ctx.alignment
    base = ctx.base_input()
    D = base.shape[1]
    out = base[torch.tensor(ctx.ordinary_source_ids(), device=base.device)].mean(0).expand(len(al.dst), D).clone()
    matched = [i for i, s in enumerate(al.source_id) if s >= 0]
    if matched:
        out[torch.tensor(matched, device=base.device)] = base[torch.tensor([al.source_id[i] for i in matched], device=base.device)]
    out[torch.tensor(list(new_ids), device=base.device, dtype=torch.long)] = start_rows.to(base.device, torch.float32)
    return out


@torch.no_grad()
def teacher_cache(lm, snippets: Sequence[Snippet], *, layers: int, batch_tokens: int, progress: bool,
                  dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """The teacher's states at each snippet's aligned teacher positions: ``(P_k, D)`` per snippet, in ``dtype``."""
    from tqdm.auto import tqdm

    device = lm.get_input_embeddings().weight.device
    matrix, scale = lm.get_input_embeddings().weight, embed_scale(lm)
    out: list[torch.Tensor | None] = [None] * len(snippets)
    groups = length_groups([len(s.teacher) for s in snippets], batch_tokens)
    with first_layers(lm, layers) as base:
        for g in tqdm(groups, desc="distill: teacher states", disable=not progress, unit="batch"):
            x, m = pad_batch([snippets[k].teacher for k in g], device)
            h = run_states(base, nn.functional.embedding(x, matrix) * scale, m)
            for r, k in enumerate(g):
                pos = torch.tensor([i for i, _ in snippets[k].pairs], device=device)
                out[k] = h[r, pos].to(dtype)
    return out  # type: ignore[return-value]


def cache_dtype(snippets: Sequence[Snippet], dim: int, budget: int) -> torch.dtype:
    """float32 when the teacher's cached states fit in ``budget`` bytes, else bfloat16 (half the memory)."""
    pairs = sum(len(s.pairs) for s in snippets)
    return torch.float32 if pairs * dim * 4 <= budget else torch.bfloat16


@dataclass
class DistillStats:
    """What a run did: steps, tokens read, seconds, the loss per epoch, tokens stopped early."""

    steps: int = 0
    student_tokens: int = 0
    teacher_tokens: int = 0
    seconds: float = 0.0
    epoch_loss: list[float] = field(default_factory=list)
    stopped: int = 0


def _key(settings: DistillSettings, new_ids: Sequence[int], snippets: Sequence[Snippet], matrix: torch.Tensor,
         seed: int) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint: settings, ids, snippets and starting rows."""
    import hashlib

    from tokkit.transplant.heal.checkpoint import run_key

    h = hashlib.sha256()
    for s in snippets:
        h.update(repr((s.teacher, s.student, s.pairs)).encode())
    rows = {k: getattr(settings, k) for k in DistillSettings.__dataclass_fields__ if k not in ("checkpoint_every", "cache_bytes")}
    return run_key({**rows, "seed": seed, "ids": hashlib.sha256(repr(list(new_ids)).encode()).hexdigest(),
                    "snippets": h.hexdigest()}, matrix)


def distill_rows(lm, matrix: torch.Tensor, new_ids: Sequence[int], snippets: Sequence[Snippet], *,
                 settings: DistillSettings, seed: int = 0, progress: bool = False, checkpoint: Path | None = None,
                 resume: bool = False) -> tuple[torch.Tensor, DistillStats]:
    """Learn the rows of ``new_ids`` in the student's input ``matrix (R, D)``; returns them ``(K, D)`` float32.

    ``lm`` is the frozen teacher (its own input matrix is the teacher's); the student is the same
    backbone reading ``matrix``. Only rows in ``new_ids`` change. With ``checkpoint`` the run's state
    (rows, Adam moments, position) is saved there every ``settings.checkpoint_every`` steps and at each epoch's end
    (atomically); ``resume`` continues from it, and the result is bit-identical to an uninterrupted run
    (the batch order of epoch ``e`` depends only on ``(seed, e)``).
    """
    from tqdm.auto import tqdm

    from tokkit.transplant.heal.checkpoint import load_state, restore, save_state

    t0 = time.perf_counter()
    device = matrix.device
    layers = resolve_layer(lm, settings.layer)
    scale = embed_scale(lm)
    stats = DistillStats(teacher_tokens=sum(len(s.teacher) for s in snippets))
    ids = torch.tensor(list(new_ids), device=device, dtype=torch.long)
    slot = {int(i): k for k, i in enumerate(new_ids)}
    slots = torch.full((matrix.shape[0],), -1, dtype=torch.long, device=device)
    slots[ids] = torch.arange(len(new_ids), device=device)
    rows = nn.Parameter(matrix[ids].detach().clone())  # (K, D)
    frozen = matrix.detach()
    fixed = torch.ones(matrix.shape[0], dtype=torch.bool, device=device)
    fixed[ids] = False
    rms = float(matrix[fixed].pow(2).mean().sqrt()) if bool(fixed.any()) else 1.0
    opt = torch.optim.Adam([rows], lr=settings.lr * rms)
    active = torch.ones(len(new_ids), dtype=torch.bool, device=device)
    before = rows.detach().clone()
    has = [sorted({slot[i] for i in s.student if i in slot}) for s in snippets]
    key = _key(settings, new_ids, snippets, matrix, seed) if checkpoint is not None else {}
    start_epoch, start_batch, total, count = 0, 0, 0.0, 0
    if checkpoint is not None and resume and checkpoint.exists():
        ck = load_state(checkpoint, key)
        restore(ck, {"rows": rows}, opt)
        m = ck.meta
        start_epoch, start_batch, total, count = m["epoch"], m["batch"], m["total"], m["count"]
        active = ck.tensors["active"].to(device).bool()
        before = ck.tensors["before"].to(device)
        stats.steps, stats.student_tokens, stats.epoch_loss, stats.stopped = m["steps"], m["student_tokens"], m["epoch_loss"], m["stopped"]
        log.info("distill: resumed at epoch %d, batch %d", start_epoch + 1, start_batch)

    def save(epoch: int, batch: int) -> None:
        if checkpoint is None:
            return
        meta = {"key": key, "epoch": epoch, "batch": batch, "total": total, "count": count, "steps": stats.steps,
                "student_tokens": stats.student_tokens, "epoch_loss": stats.epoch_loss, "stopped": stats.stopped}
        save_state(checkpoint, tensors={"rows": rows, "active": active.to(torch.uint8), "before": before}, opt=opt, meta=meta)

    cdt = cache_dtype(snippets, matrix.shape[1], settings.cache_bytes)
    if cdt != torch.float32:
        log.info("distill: the teacher's states are cached in %s (float32 would exceed %.1f GB)", cdt, settings.cache_bytes / 2**30)
    targets = teacher_cache(lm, snippets, layers=layers, batch_tokens=settings.batch_tokens, progress=progress, dtype=cdt)
    for epoch in range(start_epoch, settings.epochs):
        keep = [k for k in range(len(snippets)) if any(bool(active[j]) for j in has[k])]
        if not keep:
            break
        groups = length_groups([len(snippets[k].student) for k in keep], settings.batch_tokens)
        order = torch.randperm(len(groups), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
        if epoch != start_epoch or start_batch == 0:
            before, total, count = rows.detach().clone(), 0.0, 0
        first = start_batch if epoch == start_epoch else 0
        bar = tqdm(total=len(order), initial=first, desc=f"distill: epoch {epoch + 1}/{settings.epochs}",
                   disable=not progress, unit="batch")
        with first_layers(lm, layers) as base:
            for b in range(first, len(order)):
                g = [keep[k] for k in groups[order[b]]]
                x, m = pad_batch([snippets[k].student for k in g], device)
                h = run_states(base, embed_with_rows(x, frozen, rows, slots, scale), m)
                pred = torch.cat([h[r, torch.tensor([j for _, j in snippets[k].pairs], device=device)] for r, k in enumerate(g)])
                want = torch.cat([targets[k] for k in g]).float()
                loss = (pred - want).pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if not bool(active.all()):
                    rows.grad[~active] = 0  # type: ignore[index]
                opt.step()
                if not bool(active.all()):
                    with torch.no_grad():
                        rows[~active] = before[~active]
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TokkitError(f"distillation diverged in epoch {epoch + 1} (loss {value}); lower --distill-lr")
                total += value * len(want)
                count += len(want)
                stats.steps += 1
                stats.student_tokens += int(m.sum())
                bar.update(1)
                bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
                if checkpoint is not None and stats.steps % settings.checkpoint_every == 0:
                    save(epoch, b + 1)
        bar.close()
        stats.epoch_loss.append(total / max(count, 1))
        if settings.tol > 0:
            with torch.no_grad():
                moved = (rows - before).norm(dim=1) / before.norm(dim=1).clamp_min(1e-12)
                done = active & (moved < settings.tol)
                active &= ~done
                stats.stopped += int(done.sum())
        start_batch = 0
        save(epoch + 1, 0)
    stats.seconds = time.perf_counter() - t0
    return rows.detach(), stats


@dataclass(frozen=True)
class DistillInit:
    """Rows from ``start`` (FVT, heuristic, ...), then Token Distillation of the input rows.

    Needs the model folder, both tokenizers and the corpus in the context (``ctx.model_folder``,
    ``ctx.src_tok``, ``ctx.dst_tok``, ``ctx.texts``). Its output rows are ``start``'s (for a tied base, the
    start's one set of rows): :mod:`tokkit.transplant.output_rows` fits them, keeps them, or ties the head.
    """

    start: EmbeddingInit
    settings: DistillSettings = DistillSettings()
    name: str = "distill"

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        """The start method's cost plus distillation's: ``12 D²`` multiply-adds per token and layer, a forward
        for the teacher and a forward + input-gradient backward per epoch for the student; snippets of
        ``snippet_tokens`` holding about four new tokens each (the real count is printed after mining)."""
        s, D = self.settings, ctx.base.dim
        n = config_layers(ctx.model_folder)
        layers = n if s.layer == -1 else auto_layer(n) if s.layer is None else s.layer
        tokens = s.per_token * n_new / 4 * s.window_tokens
        flops = 2 * 12 * D * D * layers * tokens * (1.5 + 2 * s.epochs)  # teacher ~1.5x longer; fwd+bwd = 2 fwd
        start = self.start.cost(ctx, n_new)
        cache = int(tokens * 0.8 * D * 4)  # the teacher's states at aligned positions, float32
        return Cost(start.flops + flops, max(start.memory_bytes, cache + 3 * n_new * D * 4))

    def snippets(self, ctx: InitContext, dst_ids: Sequence[int]) -> SnippetSet:
        from tokkit.transplant.evaluate import start_tokens

        if ctx.model_folder is None or ctx.src_tok is None or ctx.dst_tok is None:
            raise TokkitError("distill needs the model and both tokenizers; run it through `tokkit extend --model` "
                              "or `tokkit transplant`")
        if not ctx.texts:
            raise TokkitError("--method distill needs text that contains the new tokens: the SOURCE files of "
                              "`tokkit extend`, or --corpus FILE for `tokkit transplant`")
        return mine_snippets(ctx.texts, teacher=ctx.src_tok, student=ctx.dst_tok, new_ids=dst_ids,
                             per_token=self.settings.per_token, window_tokens=self.settings.window_tokens,
                             seed=ctx.seed, teacher_prefix=start_tokens(ctx.src_tok),
                             student_prefix=start_tokens(ctx.dst_tok))

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        res = self.start.initialize(ctx, dst_ids)
        found = self.snippets(ctx, dst_ids)
        lm = load_frozen_lm(ctx.model_folder, ctx.device)
        resolve_layer(lm, self.settings.layer)
        matrix = student_matrix(ctx, res.input, dst_ids)
        rows, stats = distill_rows(lm, matrix, dst_ids, found.snippets, settings=self.settings, seed=ctx.seed,
                                   progress=ctx.progress, checkpoint=ctx.checkpoint, resume=ctx.resume)
        covered = set(found.counts)
        details = dict(res.details)
        details["snippets"] = [found.counts.get(int(i), 0) for i in dst_ids]
        log.info("distill: %d of %d tokens had snippets; %d steps, %.1f s, loss %s", len(covered), len(dst_ids),
                 stats.steps, stats.seconds, [round(x, 5) for x in stats.epoch_loss])
        ctx.notes["distill"] = {
            "snippets": len(found.snippets), "tokens_with_snippets": len(covered), "tokens_without": len(found.missing),
            "student_tokens": stats.student_tokens, "teacher_tokens": stats.teacher_tokens, "steps": stats.steps,
            "seconds": round(stats.seconds, 1), "epoch_loss": [round(x, 6) for x in stats.epoch_loss],
            "stopped_early": stats.stopped, "layer": resolve_layer(lm, self.settings.layer),
            "settings": {k: getattr(self.settings, k) for k in DistillSettings.__dataclass_fields__}}
        del lm
        # output rows: the start method's (for a tied base its one matrix's rows) -- distilled rows are made
        # for reading; --output-rows tie gives them to the head anyway
        out = res.output if res.output is not None else res.input
        return InitResult(rows.to(torch.float32), out.to(torch.float32), details)
