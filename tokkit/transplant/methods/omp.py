"""OMP transplantation (Goddard & Fernandes Neto, arXiv:2506.06607; mergekit-tokensurgeon v2).

Each new token's **donor** row is approximated by ``k`` shared anchor tokens with orthogonal
matching pursuit in the donor's space; the same coefficients applied to the **base** rows of those
anchors give the new base row: ``ê = Σ_l c_l · E_base[anchor_l]``. Anchors are all shared ordinary
tokens under the byte-level alignment. Differences from mergekit, on purpose:

* atoms are selected on unit-norm donor rows (no bias towards high-norm tokens);
* ``per_step=s`` adds the ``s`` best atoms per correlation GEMM (generalized OMP, Wang, Kwon & Shim
  2012): ``⌈k/s⌉`` GEMMs of ``2·M·N·D`` instead of ``k`` (the dominant cost); ``s=1`` is textbook OMP;
* ``candidates=L`` optionally restricts each target to its ``L`` most cosine-similar anchors (measured
  on CPU: slower, memory-bound gathers, and a worse fit at k=64, so off by default);
* a tied donor's coefficients are reused for an untied base's lm_head (one OMP, not two); an untied
  donor gets a second OMP on its lm_head rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tokkit.embedding.sparse import OMPResult, omp, omp_batch_size, omp_flops
from tokkit.errors import VocabMismatchError
from tokkit.transplant.base import Cost, InitContext, InitResult

__all__ = ["OMPInit"]


@dataclass(frozen=True)
class OMPInit:
    """OMP over shared anchors in the donor space; coefficients carried to the base space.

    Attributes:
        k: atoms per new token (mergekit's default 64).
        per_step: atoms added per correlation GEMM (1: textbook OMP; 32: generalized OMP with k/32 GEMMs;
            on Gemma-3 <- SmolLM2 it fitted held-out anchors better than 16, 4 and 1, issue 17).
        candidates: anchors pre-selected per token by ``|cos|`` (None: all anchors).
        report_top: how many (anchor, coefficient) pairs per token go into the provenance report.
    """

    k: int = 64
    per_step: int = 32
    candidates: int | None = None
    report_top: int = 8
    name: str = "omp"

    def _check(self, ctx: InitContext) -> None:
        if ctx.donor is None:
            raise VocabMismatchError("method omp needs a donor model whose tokenizer is the destination tokenizer; "
                                     "pass --donor MODEL, or use --method heuristic / fvt, which need no donor")
        if len(ctx.donor.input.vocab) != len(ctx.alignment.dst):
            raise VocabMismatchError(f"the donor's vocab has {len(ctx.donor.input.vocab)} ids but the destination tokenizer "
                                     f"has {len(ctx.alignment.dst)}; the donor must use the destination tokenizer")

    def _passes(self, ctx: InitContext) -> int:
        return 2 if (ctx.base.output is not None and ctx.donor is not None and ctx.donor.output is not None) else 1

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        self._check(ctx)
        n = len(ctx.alignment.anchors()[0])
        d = ctx.donor.dim  # type: ignore[union-attr]
        flops = omp_flops(n_new, n, d, self.k, candidates=self.candidates, per_step=self.per_step) * self._passes(ctx)
        bs = omp_batch_size(n, d, self.k, candidates=self.candidates, budget_bytes=ctx.batch_bytes)
        per_row = ctx.batch_bytes // max(bs, 1)
        mem = 4 * n * (d + ctx.base.dim) + min(bs, max(n_new, 1)) * per_row
        return Cost(flops=flops, memory_bytes=int(mem))

    def _run(self, ctx: InitContext, donor_rows: torch.Tensor, dst_ids: Sequence[int], anchors: list[int], what: str) -> OMPResult:
        from tqdm.auto import tqdm

        atoms = donor_rows[torch.tensor(anchors, device=donor_rows.device)].to(ctx.device).float()
        x = donor_rows[torch.tensor(list(dst_ids), device=donor_rows.device)].to(ctx.device).float()
        k = min(self.k, len(anchors))
        cand = None if self.candidates is None or self.candidates >= len(anchors) else max(self.candidates, k)
        bs = omp_batch_size(len(anchors), atoms.shape[1], k, candidates=cand, budget_bytes=ctx.batch_bytes)
        with tqdm(total=len(dst_ids), desc=f"OMP {what} (k={k})", unit="tok", disable=not ctx.progress) as bar:
            return omp(x, atoms, k, candidates=cand, per_step=self.per_step, batch_size=bs, progress=bar.update)

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        self._check(ctx)
        donor = ctx.donor
        assert donor is not None
        a_dst, a_src = ctx.alignment.anchors()
        if not a_dst:
            raise VocabMismatchError("the two vocabularies share no token, so OMP has no anchors; use --method fvt or heuristic")
        src_idx = torch.tensor(a_src, device=ctx.device)
        base_in = ctx.base_input()[src_idx]  # (N, D_base)
        res = self._run(ctx, donor.input.weight, dst_ids, a_dst, "embed")
        rows_in = res.apply(base_in)
        rows_out = None
        out = ctx.base_output()
        res_out = res
        if out is not None:
            if donor.output is not None:
                res_out = self._run(ctx, donor.output.weight, dst_ids, a_dst, "lm_head")
            rows_out = res_out.apply(out[src_idx])
        top = min(self.report_top, res.indices.shape[1])
        order = res.coeffs.abs().argsort(dim=1, descending=True)[:, :top]
        anchor_ids = torch.tensor(a_dst)[res.indices.cpu().gather(1, order.cpu())]
        coeffs = res.coeffs.cpu().gather(1, order.cpu())
        details = {
            "residual": [round(float(r), 4) for r in res.residual.cpu()],
            "anchors": anchor_ids.tolist(),
            "coeffs": [[round(float(c), 4) for c in row] for row in coeffs],
        }
        if res_out is not res:
            details["residual_lm_head"] = [round(float(r), 4) for r in res_out.residual.cpu()]
        return InitResult(rows_in, rows_out, details)
