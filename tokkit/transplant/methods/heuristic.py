"""The TokenAdapt hybrid heuristic (Sharthak et al., arXiv:2505.09738), without its defects.

For a new token ``t`` with source-tokenizer pieces ``p_1..p_n`` and similarity features ``φ``:

* **local** ``e_loc = Σ_j w_j E[p_j]`` with ``α_j = cos(φ(t), φ(p_j))``, ``c_j = (softmax(α)_j +
  len(p_j)/len(t)) / 2`` and ``w = softmax(c / τ)``;
* **global** ``e_glob = Σ_l w_l E[o_l]`` over the ``k`` source tokens most similar to ``φ(t)``,
  ``w = softmax(α / τ)``, weights below the threshold θ dropped and renormalised;
* ``e = (1 − w_g)·e_loc + w_g·e_glob`` (paper defaults ``w_g = 0.3``, ``τ = 0.3``, ``k = 3``, θ = 0).

``φ`` comes from an auxiliary text-embedding model when one is given (:mod:`.aux_features`, the
paper's setting), else from the base model's own input embeddings: a source token's feature is its
row, a new token's is the mean of its pieces' rows. The same weights build the input and (untied)
output rows. Unlike the reference script, lengths are counted in bytes (partial UTF-8 tokens do
not decode to U+FFFD), special tokens never reach this method (they are mapped by role), and all
tokens are processed in batches rather than one FAISS query per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tokkit.transplant.base import Cost, InitContext, InitResult
from tokkit.transplant.methods.simple import piece_mean

__all__ = ["HeuristicInit"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass(frozen=True)
class HeuristicInit:
    """Local (pieces) + global (kNN) mixture.

    Attributes:
        global_weight: ``w_g`` (0.3). 0 gives the local estimate only.
        temperature: ``τ`` (0.3).
        top_k: neighbours of the global estimate (3).
        threshold: minimum similarity of a neighbour (0: keep all, as the paper recommends).
        aux_model: folder of an HF text-embedding model for ``φ`` (None: the base model's rows).
        batch_size: new tokens per batch of the global search.
    """

    global_weight: float = 0.3
    temperature: float = 0.3
    top_k: int = 3
    threshold: float = 0.0
    aux_model: str | None = None
    batch_size: int = 1024
    name: str = "heuristic"

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        n, d = len(ctx.alignment.src), ctx.base.dim
        return Cost(flops=2.0 * n_new * n * d, memory_bytes=4 * (n * d + self.batch_size * n))

    def _features(self, ctx: InitContext, dst_ids: Sequence[int], pieces: list[list[int]], e_in: torch.Tensor):
        """(φ of new tokens (M, F), φ of every source token (R_src, F)), both unit-norm."""
        if self.aux_model is not None:
            from tokkit.transplant.methods.aux_features import aux_features

            return aux_features(self.aux_model, ctx, dst_ids)
        fvt = piece_mean(e_in, pieces, e_in.mean(0))
        return _unit(fvt), _unit(e_in)

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        from tqdm.auto import tqdm

        tau = self.temperature + 1e-5
        pieces = ctx.pieces(dst_ids)
        e_in, e_out = ctx.base_input(), ctx.base_output()
        phi_new, phi_src = self._features(ctx, dst_ids, pieces, e_in)
        dst = ctx.alignment.dst
        src_tokens = ctx.alignment.src.tokens
        M, D = len(dst_ids), e_in.shape[1]
        w_local = []
        for r, p in enumerate(pieces):  # local weights: a few pieces per token
            if not p:
                w_local.append(torch.zeros(0, device=e_in.device))
                continue
            alpha = phi_src[torch.tensor(p, device=e_in.device)] @ phi_new[r]
            length = torch.tensor([len(src_tokens[i]) for i in p], device=e_in.device, dtype=torch.float32)
            length = length / max(len(dst.tokens[dst_ids[r]]), 1)
            c = (alpha.softmax(0) + length) / 2
            w_local.append((c / tau).softmax(0))
        # global: top-k neighbours among ordinary, non-held-out source tokens
        pool = torch.tensor(ctx.ordinary_source_ids(), device=e_in.device)
        pool_phi = phi_src[pool]
        nb_ids = torch.zeros(M, self.top_k, dtype=torch.long, device=e_in.device)
        nb_w = torch.zeros(M, self.top_k, device=e_in.device)
        for s in tqdm(range(0, M, self.batch_size), desc="heuristic kNN", disable=not ctx.progress):
            sims = phi_new[s:s + self.batch_size] @ pool_phi.T  # (b, N)
            top = sims.topk(self.top_k, dim=1)
            w = (top.values / tau).softmax(1) * (top.values >= self.threshold)
            nb_w[s:s + self.batch_size] = w / w.sum(1, keepdim=True).clamp_min(1e-12)
            nb_ids[s:s + self.batch_size] = pool[top.indices]
        has_global = nb_w.sum(1) > 0

        def mix(table: torch.Tensor) -> torch.Tensor:
            loc = torch.zeros(M, D, device=table.device)
            has_local = torch.zeros(M, dtype=torch.bool, device=table.device)
            for r, (p, w) in enumerate(zip(pieces, w_local)):
                if p:
                    loc[r] = w @ table[torch.tensor(p, device=table.device)]
                    has_local[r] = True
            glob = torch.einsum("mk,mkd->md", nb_w, table[nb_ids])
            wg = torch.where(has_local & has_global, self.global_weight, torch.where(has_global, 1.0, 0.0))
            out = (1 - wg)[:, None] * loc + wg[:, None] * glob
            none = ~(has_local | has_global)
            if none.any():
                out[none] = table[pool].mean(0)
            return out

        rows_in = mix(e_in)
        rows_out = None if e_out is None else mix(e_out)
        details = {"pieces": pieces, "neighbours": nb_ids.cpu().tolist()}
        return InitResult(rows_in, rows_out, details)
