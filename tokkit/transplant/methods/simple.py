"""Donor-free baselines: FVT (mean of the source pieces), mean init and zero init.

FVT — "Fast Vocabulary Transfer" (Gee et al., EMNLP 2022; ReTok's "mean of pieces"): a new token's
row is the mean of the source rows of its source-tokenizer pieces, for the input and the output
matrix alike. ``mean`` gives every new token the mean of the ordinary source rows; ``zero`` gives
zeros (the OMP paper's two trivial baselines, arXiv:2506.06607).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tokkit.transplant.base import Cost, InitContext, InitResult

__all__ = ["FVTInit", "MeanInit", "ZeroInit", "piece_mean"]


def piece_mean(table: torch.Tensor, pieces: Sequence[Sequence[int]], fallback: torch.Tensor) -> torch.Tensor:
    """Mean of ``table (R, D)`` rows over each id list -> ``(M, D)``; an empty list gets ``fallback (D,)``."""
    M, D = len(pieces), table.shape[1]
    flat = [i for p in pieces for i in p]
    seg = [r for r, p in enumerate(pieces) for _ in p]
    out = torch.zeros(M, D, device=table.device, dtype=torch.float32)
    if flat:
        idx = torch.tensor(flat, device=table.device)
        out.index_add_(0, torch.tensor(seg, device=table.device), table[idx].float())
    n = torch.tensor([len(p) for p in pieces], device=table.device, dtype=torch.float32)
    out = out / n.clamp_min(1)[:, None]
    empty = n == 0
    if empty.any():
        out[empty] = fallback.float()
    return out


def _ordinary_mean(ctx: InitContext, table: torch.Tensor) -> torch.Tensor:
    ids = torch.tensor(ctx.ordinary_source_ids(), device=table.device)
    return table[ids].float().mean(0)


@dataclass(frozen=True)
class FVTInit:
    """Mean of the source rows of the token's source-tokenizer pieces."""

    name: str = "fvt"

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        d = ctx.base.dim
        return Cost(flops=8.0 * n_new * d, memory_bytes=4 * n_new * d * 2)

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        pieces = ctx.pieces(dst_ids)
        e_in = ctx.base_input()
        out = ctx.base_output()
        rows_in = piece_mean(e_in, pieces, _ordinary_mean(ctx, e_in))
        rows_out = None if out is None else piece_mean(out, pieces, _ordinary_mean(ctx, out))
        return InitResult(rows_in, rows_out, {"pieces": pieces})


@dataclass(frozen=True)
class MeanInit:
    """Every new token gets the mean of the ordinary source rows."""

    name: str = "mean"

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        return Cost(flops=float(len(ctx.alignment.src) * ctx.base.dim), memory_bytes=4 * n_new * ctx.base.dim)

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        M = len(dst_ids)
        e_in, out = ctx.base_input(), ctx.base_output()
        rows_in = _ordinary_mean(ctx, e_in).expand(M, -1).clone()
        rows_out = None if out is None else _ordinary_mean(ctx, out).expand(M, -1).clone()
        return InitResult(rows_in, rows_out)


@dataclass(frozen=True)
class ZeroInit:
    """Every new token gets a zero row."""

    name: str = "zero"

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        return Cost(memory_bytes=4 * n_new * ctx.base.dim)

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        M, D = len(dst_ids), ctx.base.dim
        z = torch.zeros(M, D, device=ctx.device)
        return InitResult(z, None if ctx.base.output is None else z.clone())
