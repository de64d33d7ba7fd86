"""The trained hypernetwork as an :class:`~tokkit.transplant.base.EmbeddingInit` (``--method hypernet``).

Every new token of the destination tokenizer is decomposed into base-tokenizer pieces (the same
:class:`~tokkit.transplant.decompose.Decomposer` as FVT and the heuristic; a token the base cannot
spell with a real piece falls back to byte pieces) and the network predicts its rows in batches
(ZeTT ``scripts/transfer.py``, Minixhofer et al., arXiv:2405.07883). Shared and special tokens never
reach the method: the pipeline copies them, as for every other method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import torch

from tokkit.transplant.base import Cost, InitContext, InitResult
from tokkit.transplant.hypernet.checkpoint import Checkpoint, base_fingerprint, check_base, load_checkpoint
from tokkit.transplant.hypernet.model import HyperNet, pad_pieces

__all__ = ["HypernetInit"]


def _load(path: str) -> Checkpoint:
    """The checkpoint at ``path``, read once per version of its config.json (a resumed run rewrites it)."""
    from pathlib import Path

    cfg = Path(path) / "config.json"
    return _load_version(path, cfg.stat().st_mtime_ns if cfg.is_file() else -1)


@lru_cache(maxsize=4)
def _load_version(path: str, mtime_ns: int) -> Checkpoint:
    return load_checkpoint(path)


def _table(ctx: InitContext) -> torch.Tensor:
    e_in, e_out = ctx.base_input(), ctx.base_output()
    return e_in if e_out is None else torch.cat([e_in, e_out], dim=1)


@dataclass(frozen=True)
class HypernetInit:
    """Rows predicted by a hypernetwork checkpoint (``tokkit hypernet train -o CKPT``).

    Attributes:
        checkpoint: the checkpoint folder.
        batch_size: tokens per forward pass.
    """

    checkpoint: str
    batch_size: int = 2048
    name: str = field(default="hypernet")

    def _network(self, ctx: InitContext) -> tuple[HyperNet, torch.Tensor]:
        ck = _load(str(self.checkpoint))
        table = _table(ctx)
        check_base(ck, base_fingerprint(ctx.alignment.src, table), base_name=f"this base ({len(ctx.alignment.src)} tokens)")
        net = HyperNet(dim=int(ck.meta["dim"]), tied=bool(ck.meta["tied"]), table=table, **ck.meta["arch"])
        net.load_state_dict(ck.model)
        return net.to(ctx.device).eval(), table

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        ck = _load(str(self.checkpoint))  # a missing or foreign checkpoint fails here, before any work
        check_base(ck, base_fingerprint(ctx.alignment.src, _table(ctx)), base_name=f"this base ({len(ctx.alignment.src)} tokens)")
        a = ck.meta["arch"]
        h, n = a["hidden"], a["max_pieces"] + 1
        per_token = a["layers"] * n * (4 * h * h + 4 * h * h + 2 * n * h) + 2 * n * h * ctx.base.dim
        return Cost(flops=float(per_token * n_new), memory_bytes=4 * self.batch_size * n * (6 * h + 2 * ctx.base.dim))

    @torch.no_grad()
    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        from tqdm.auto import tqdm

        net, table = self._network(ctx)
        pieces = ctx.pieces(dst_ids)
        D = ctx.base.dim
        out = torch.empty(len(dst_ids), table.shape[1], device=ctx.device)
        ok = [r for r, p in enumerate(pieces) if p]
        for s in tqdm(range(0, len(ok), self.batch_size), desc="hypernet", disable=not ctx.progress):
            rows = ok[s:s + self.batch_size]
            ids, mask = pad_pieces([pieces[r] for r in rows], device=ctx.device)
            out[torch.tensor(rows, device=ctx.device)] = net(table, ids, mask)
        empty = [r for r, p in enumerate(pieces) if not p]
        if empty:  # nothing in the base spells these bytes: the mean ordinary row, as FVT does
            pool = torch.tensor(ctx.ordinary_source_ids(), device=ctx.device)
            out[torch.tensor(empty, device=ctx.device)] = table[pool].mean(0)
        return InitResult(out[:, :D].contiguous(), None if net.tied else out[:, D:].contiguous(), {"pieces": pieces})
