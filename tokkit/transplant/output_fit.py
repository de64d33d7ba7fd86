"""Fit new output rows on the frozen model's final hidden states (no backward through the body).

A new token's logit is ``w · h``: it needs only the final hidden state ``h``, which the frozen model
computes once. So the new rows ``W (K, D)`` are fitted by softmax regression over the whole
vocabulary with every other row fixed, on positions of two kinds of text: where the new tokens occur
(the text they were learnt on) and where they must stay quiet (the old language: ``--keep-text``).
The old rows' log-sum-exp is computed once per position, so a step costs ``B × K × D``, not
``B × V × D``:

    loss = wmean_positions [ logaddexp(lse_old(h), logsumexp(W h)) − logit_target(h) ] + λ mean((W − W₀)² / rms²)

where a position of the old language weighs ``keep_weight`` (4) times one of the new text: a user who
protects text wants the new tokens quiet there first (tokkit's measurement in docs/extend.md: at 8,000
new tokens weight 4 cut the leak on unseen English of the protected genres by a sixth and German
improved too; at 2,000 it traded German for English; more protected *text* at weight 1 cut the leak as
much but cost German).

``W₀`` are the start rows (``--output-rows init``). A free fit overfits: rows grow into directions that
fire on contexts no fitting text had (tokkit's measurement in docs/extend.md), so the fit is anchored to
``W₀`` (``λ``), stopped on a held-out share of the fitting positions, and given one extra degree of
freedom per token that cannot overfit: an offset ``b_k`` along ``v``, the direction on which every
hidden state projects to about one (ridge regression of ``H v ≈ 1``), so ``w_k · h`` ≈ the start
logit ``+ b_k`` — a per-token log-frequency correction.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

from tokkit.errors import TokkitError
from tokkit.transplant.config import TransplantConfig

if TYPE_CHECKING:
    from tokkit.transplant.base import InitContext

__all__ = ["FitSettings", "fit_output_rows", "final_states", "sample_text"]

log = logging.getLogger(__name__)

_DEFAULTS = TransplantConfig.model_fields  # the user-facing defaults: one source


@dataclass(frozen=True)
class FitSettings:
    """Knobs of the output-row fit (user-facing defaults in ``TransplantConfig``).

    Attributes:
        fit_bytes: text read per language (bytes).
        segment_bytes: one forward's text (bytes).
        lam: ``λ``, the pull towards the start rows, per element relative to the rows' RMS:
            ``λ · mean((W − W₀)² / rms²)``.
        lr: Adam step size as a fraction of the fixed output rows' RMS.
        epochs: passes over the fitting positions (the best epoch on held-out positions is kept).
        batch: positions per step.
        val_share: fitting positions held out to pick the epoch.
        keep_weight: weight of a position of the protected (old-language) text in the loss, relative to
            one of the new text.
    """

    fit_bytes: int = _DEFAULTS["fit_bytes"].default
    segment_bytes: int = 1024
    lam: float = 30.0
    lr: float = 0.025
    epochs: int = 6
    batch: int = 4096
    val_share: float = 0.1
    keep_weight: float = _DEFAULTS["fit_keep_weight"].default


def sample_text(texts: Sequence[str], budget: int, seed: int) -> str:
    """Whole documents of ``texts`` in a seeded order, up to ``budget`` UTF-8 bytes (the last one cut at a line)."""
    order = list(range(len(texts)))
    random.Random(f"fit:{seed}").shuffle(order)
    out, size = [], 0
    for i in order:
        t = texts[i]
        n = len(t.encode("utf-8"))
        if size + n > budget:
            rest = t.encode("utf-8")[: budget - size].decode("utf-8", errors="ignore")
            rest = rest[: rest.rfind("\n")] if "\n" in rest else rest
            if rest.strip():
                out.append(rest)
            break
        out.append(t)
        size += n
    return "\n\n".join(out)


@torch.no_grad()
def final_states(lm, tok, matrix: torch.Tensor, text: str, *, segment_bytes: int,
                 progress: bool = False, desc: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Final hidden states ``H (N, D)`` of ``lm`` reading ``text`` with input ``matrix``, and next ids ``y (N,)``.

    The text is cut as eval-lm cuts it (:func:`tokkit.transplant.evaluate.segments`), each segment
    read from the tokenizer's start token; position ``t`` predicts token ``t + 1``.
    """
    from tqdm.auto import tqdm

    from tokkit.transplant.evaluate import segments, start_tokens
    from tokkit.transplant.frozen_lm import embed_scale

    device = matrix.device
    pre = start_tokens(tok)
    scale = embed_scale(lm)
    hs, ys = [], []
    segs = segments(text, segment_bytes=segment_bytes)
    for ids in tqdm(tok.encode_batch(segs), desc=desc, disable=not progress, unit="seg"):
        x = torch.tensor([pre + ids], device=device)
        h = lm.base_model(inputs_embeds=torch.nn.functional.embedding(x, matrix) * scale).last_hidden_state[0]
        p = len(pre)
        hs.append(h[p - 1:-1])
        ys.append(x[0, p:])
    if not hs:
        return torch.zeros(0, matrix.shape[1], device=device), torch.zeros(0, dtype=torch.long, device=device)
    return torch.cat(hs), torch.cat(ys)


def constant_direction(H: torch.Tensor, ridge: float = 1.0) -> torch.Tensor:
    """``v (D,)`` with ``H v ≈ 1`` for every row of ``H (N, D)`` (ridge least squares, float64 solve)."""
    Hd = H.double()
    A = Hd.T @ Hd + ridge * torch.eye(H.shape[1], dtype=torch.float64, device=H.device)
    return torch.linalg.solve(A, Hd.T @ torch.ones(len(H), dtype=torch.float64, device=H.device)).to(H.dtype)


@torch.no_grad()
def _old_terms(H: torch.Tensor, y: torch.Tensor, W: torch.Tensor, is_new: torch.Tensor,
               chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: log-sum-exp over the fixed rows ``(N,)`` and the target's logit when it is a fixed row."""
    fixed = ~is_new
    lse, tgt = torch.empty(len(H), device=H.device), torch.zeros(len(H), device=H.device)
    for i in range(0, len(H), chunk):
        logits = H[i:i + chunk] @ W.T  # (B, R)
        tgt[i:i + chunk] = logits.gather(1, y[i:i + chunk, None])[:, 0]
        lse[i:i + chunk] = logits[:, fixed].logsumexp(-1)
    return lse, tgt


def fit_output_rows(ctx: "InitContext", *, input_matrix: torch.Tensor, output_matrix: torch.Tensor,
                    new_ids: Sequence[int], start: torch.Tensor,
                    settings: FitSettings = FitSettings()) -> tuple[torch.Tensor, dict[str, Any]]:
    """New output rows ``(K, D)`` fitted on the frozen model's final states; returns them and the run's facts.

    Args:
        ctx: the run's context (model folder, destination tokenizer, ``texts``, ``keep_texts``, device, seed).
        input_matrix: the finished input matrix ``(R, D)`` (new rows in place).
        output_matrix: the output matrix ``(R, D)`` with every fixed row in place (new rows ignored).
        new_ids: the ``K`` ids whose output rows are fitted.
        start: their start rows ``W₀ (K, D)`` (the method's own output rows).
    """
    from tqdm.auto import tqdm

    from tokkit.transplant.frozen_lm import load_frozen_lm

    t0 = time.perf_counter()
    device = input_matrix.device
    new_text = sample_text(list(ctx.texts), settings.fit_bytes, ctx.seed) if ctx.texts else ""
    old_text = sample_text(list(ctx.keep_texts), settings.fit_bytes, ctx.seed) if ctx.keep_texts else ""
    lm = load_frozen_lm(ctx.model_folder, device)
    parts = []  # (H (n, D), y (n,), weight of each position)
    for name, text, w in (("new", new_text, 1.0), ("kept", old_text, settings.keep_weight)):
        if text:
            h, t = final_states(lm, ctx.dst_tok, input_matrix, text, segment_bytes=settings.segment_bytes,
                                progress=ctx.progress, desc=f"fit: states ({name} text)")
            parts.append((h, t, torch.full((len(t),), w, device=device)))
    del lm
    H = torch.cat([p[0] for p in parts])  # (N, D)
    y = torch.cat([p[1] for p in parts])  # (N,)
    weight = torch.cat([p[2] for p in parts])  # (N,)
    R, K = output_matrix.shape[0], len(new_ids)
    ids = torch.tensor(list(new_ids), device=device, dtype=torch.long)
    is_new = torch.zeros(R, dtype=torch.bool, device=device)
    is_new[ids] = True
    slot = torch.full((R,), -1, dtype=torch.long, device=device)
    slot[ids] = torch.arange(K, device=device)
    if len(H) < 100 or not bool(is_new[y].any()):
        raise TokkitError(f"--output-rows fit: the fitting text gives {len(H)} positions and "
                          f"{int(is_new[y].sum())} occurrences of new tokens; give more text that contains them")
    lse_old, tgt_old = _old_terms(H, y, output_matrix, is_new)
    v = constant_direction(H)
    gen = torch.Generator().manual_seed(ctx.seed)
    perm = torch.randperm(len(H), generator=gen).to(device)
    n_val = max(1, int(len(H) * settings.val_share))
    val, train = perm[:n_val], perm[n_val:]
    W0 = start.to(device, torch.float32)
    delta = torch.zeros_like(W0, requires_grad=True)
    offset = torch.zeros(K, device=device, requires_grad=True)
    rms2 = float(output_matrix[~is_new].pow(2).mean())
    opt = torch.optim.Adam([delta, offset], lr=settings.lr * rms2 ** 0.5)
    new_slot = slot[y]  # (N,) -1 where the target is a fixed row

    def rows() -> torch.Tensor:
        return W0 + offset[:, None] * v[None] + delta

    def loss_on(idx: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        h = H[idx]
        ln = h @ W.T  # (B, K)
        lse = torch.logaddexp(lse_old[idx], ln.logsumexp(-1))
        s = new_slot[idx]
        tgt = torch.where(s >= 0, ln.gather(1, s.clamp_min(0)[:, None])[:, 0], tgt_old[idx])
        w = weight[idx]
        return ((lse - tgt) * w).sum() / w.sum()

    with torch.no_grad():
        val0 = float(loss_on(val, W0))
    best, best_rows, history = val0, W0.clone(), [round(val0, 5)]
    for epoch in range(settings.epochs):
        order = train[torch.randperm(len(train), generator=gen).to(device)]
        for i in tqdm(range(0, len(order), settings.batch), desc=f"fit: epoch {epoch + 1}/{settings.epochs}",
                      disable=not ctx.progress, unit="batch"):
            loss = loss_on(order[i:i + settings.batch], rows()) + settings.lam * delta.pow(2).mean() / rms2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            vl = float(loss_on(val, rows()))
        history.append(round(vl, 5))
        if not math.isfinite(vl):
            raise TokkitError(f"--output-rows fit diverged (held-out loss {vl}); give more fitting text")
        if vl < best:
            best, best_rows = vl, rows().detach().clone()
    stats = {"positions": len(H), "new_positions": int(is_new[y].sum()), "new_text_bytes": len(new_text.encode()),
             "kept_text_bytes": len(old_text.encode()), "val_before": round(val0, 5), "val_after": round(best, 5),
             "val_history": history, "seconds": round(time.perf_counter() - t0, 1),
             "settings": {k: getattr(settings, k) for k in FitSettings.__dataclass_fields__}}
    log.info("output-row fit: %s", stats)
    return best_rows, stats
