"""Batched orthogonal matching pursuit (sparse coding over a shared dictionary), in torch.

OMP (Pati, Rezaiifar & Krishnaprasad 1993; used for tokenizer transplantation by Goddard &
Fernandes Neto, arXiv:2506.06607) approximates each target ``x`` (a row of ``X (B, D)``) by ``k``
atoms of a dictionary ``A (N, D)``: greedily pick the atom most correlated with the residual,
re-fit all picked atoms by least squares, repeat. Here all rows of a batch advance together:

* atom selection uses **unit-norm** atoms, so high-norm rows are not favoured (mergekit selects
  with raw inner products); the returned coefficients apply to the **original** atoms;
* the least-squares fit is kept as an incremental QR (classical Gram-Schmidt with one
  re-orthogonalisation pass, "CGS2"), so each step costs ``O(B·D·t)``; the final coefficients
  solve ``R c = Qᵀx``; dependent atoms get coefficient 0. The ``s`` atoms of one step are first
  projected off the basis as a block (two batched GEMMs), then off each other: batched
  matrix-vector products were most of the time on CPU (issue 17);
* optional **candidate pre-selection**: each row considers only ``L`` atoms (its ``L`` largest
  ``|cos|``), which turns the ``k`` selection GEMMs ``2·k·B·N·D`` into one ``2·B·N·D`` GEMM plus
  ``2·k·B·L·D`` (see :func:`omp_flops`).

Everything runs on the device of ``X`` in float32; memory per batch is bounded by the caller's
``batch_size`` (:func:`omp_batch_size` picks one from a byte budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["OMPResult", "batch_omp", "omp", "omp_flops", "omp_batch_size", "topk_candidates"]


@dataclass(frozen=True)
class OMPResult:
    """Sparse codes of ``M`` targets over a dictionary of ``N`` atoms.

    Attributes:
        indices: ``(M, k)`` long, atom ids in selection order.
        coeffs: ``(M, k)`` float32, least-squares coefficients on the original (unnormalised) atoms.
        residual: ``(M,)`` float32, ``‖x − Σ c_l A[i_l]‖ / ‖x‖`` (relative; 0 for a zero target).
    """

    indices: torch.Tensor
    coeffs: torch.Tensor
    residual: torch.Tensor

    def apply(self, atoms: torch.Tensor) -> torch.Tensor:
        """``Σ_l c_l · atoms[i_l]`` for another space's atoms ``(N, D')`` -> ``(M, D')`` float32."""
        out = []
        for s in range(0, self.indices.shape[0], 4096):  # bounded gather (4096·k·D')
            idx = self.indices[s:s + 4096].to(atoms.device)
            c = self.coeffs[s:s + 4096].to(atoms.device)
            out.append(torch.einsum("mk,mkd->md", c, atoms.float()[idx]))
        return torch.cat(out) if out else atoms.new_zeros(0, atoms.shape[1], dtype=torch.float32)


def omp_flops(m: int, n: int, d: int, k: int, *, candidates: int | None = None, per_step: int = 1) -> float:
    """Multiply-add FLOPs of :func:`omp` for ``m`` targets, ``n`` atoms of width ``d``, sparsity ``k``.

    Textbook OMP: ``2·k·m·n·d`` (selection GEMMs) + ``≈4·m·d·k²`` (Gram-Schmidt). ``per_step=s``
    needs ``⌈k/s⌉`` selection GEMMs. With ``L`` candidates: ``2·m·n·d`` (pre-selection) +
    ``2·⌈k/s⌉·m·L·d`` + the same Gram-Schmidt term.
    """
    gs = 4.0 * m * d * k * k
    steps = -(-k // per_step)
    if candidates is None or candidates >= n:
        return 2.0 * steps * m * n * d + gs
    return 2.0 * m * n * d + 2.0 * steps * m * candidates * d + gs


def omp_batch_size(n: int, d: int, k: int, *, candidates: int | None, budget_bytes: int) -> int:
    """Largest batch (rows) whose working set fits ``budget_bytes`` (float32; ≥ 1).

    Per row: the correlations (``N`` or ``L``) and mask, ``Q`` (``D·k``), ``R`` (``k²``) and a few
    ``D`` vectors; with candidates also the gathered ``(L, D)`` atoms and the pre-selection row (``N``).
    The shared ``(N, D)`` dictionary is not counted (it is resident once).
    """
    if candidates is not None and candidates < n:
        per_row = 4 * (candidates * d + 3 * candidates + n + d * k + k * k + 6 * d)
    else:
        per_row = 4 * (3 * n + d * k + k * k + 6 * d)
    return max(1, int(budget_bytes // per_row))


def topk_candidates(x: torch.Tensor, atoms_unit: torch.Tensor, count: int) -> torch.Tensor:
    """Per row of ``x (B, D)`` the ``count`` atoms of ``atoms_unit (N, D)`` with the largest ``|cos|`` -> ``(B, count)``."""
    corr = (x @ atoms_unit.T).abs_()  # (B, N)
    return corr.topk(min(count, atoms_unit.shape[0]), dim=1).indices


def batch_omp(x: torch.Tensor, atoms: torch.Tensor, k: int, *, candidates: torch.Tensor | None = None,
              per_step: int = 1, eps: float = 1e-7) -> OMPResult:
    """OMP for one batch.

    Args:
        x: ``(B, D)`` targets.
        atoms: ``(N, D)`` dictionary (any float dtype; same device as ``x``).
        k: atoms per target (``k <= N``, and ``k <= L`` with candidates).
        candidates: optional ``(B, L)`` long, the atoms each row may use.
        per_step: atoms added per correlation step (1: textbook OMP; s > 1: generalized OMP, Wang,
            Kwon & Shim 2012, which needs ``⌈k/s⌉`` correlation GEMMs instead of ``k``).
        eps: a new atom whose component orthogonal to the picked ones is below ``eps·‖atom‖`` is
            treated as dependent (coefficient 0).

    Returns:
        :class:`OMPResult` for the ``B`` rows.
    """
    B, D = x.shape
    x = x.float()
    a = atoms.to(x.device).float()
    norms = a.norm(dim=1).clamp_min(1e-30)  # (N,)
    unit = a / norms[:, None]
    width = a.shape[0] if candidates is None else candidates.shape[1]
    if not 0 < k <= width:
        raise ValueError(f"cannot select k={k} atoms from {width} candidates; lower k or raise the candidate count")
    if candidates is not None:
        cand = candidates.to(x.device)
        sub = unit[cand]  # (B, L, D)
    idx = torch.empty(B, k, dtype=torch.long, device=x.device)
    Q = x.new_zeros(B, k, D)  # rows: the orthonormal basis (row-contiguous per target: no copies in bmm)
    R = x.new_zeros(B, k, k)
    r = x.clone()
    rows = torch.arange(B, device=x.device)
    taken = torch.zeros(B, width, dtype=torch.bool, device=x.device)
    t = 0
    while t < k:
        corr = (torch.bmm(sub, r[:, :, None])[:, :, 0] if candidates is not None else r @ unit.T).abs_()  # (B, L|N)
        corr.masked_fill_(taken, -1.0)
        picks = corr.topk(min(per_step, k - t), dim=1).indices  # (B, s): the s best atoms this step
        ids = cand.gather(1, picks) if candidates is not None else picks  # (B, s) atom ids
        V = a[ids]  # (B, s, D) original atoms
        t0 = t
        H0 = x.new_zeros(B, picks.shape[1], t0)
        if t0:  # block CGS2 against the basis so far: two batched GEMMs per step, not four GEMVs per atom
            Qt = Q[:, :t0, :]  # (B, t0, D)
            for _ in range(2):
                P = torch.bmm(V, Qt.transpose(1, 2))  # (B, s, t0)
                V = V - torch.bmm(P, Qt)
                H0 += P
        for jj in range(picks.shape[1]):
            taken[rows, picks[:, jj]] = True
            atom_id = ids[:, jj]
            idx[:, t] = atom_id
            q = V[:, jj, :]
            h = x.new_zeros(B, k)
            h[:, :t0] = H0[:, jj, :]
            if t > t0:  # CGS2 against the atoms already placed from this step
                Qb = Q[:, t0:t, :]  # (B, t - t0, D)
                for _ in range(2):
                    p = torch.bmm(Qb, q[:, :, None])[:, :, 0]  # (B, t - t0)
                    q = q - torch.bmm(p[:, None, :], Qb)[:, 0, :]
                    h[:, t0:t] += p
            nq = q.norm(dim=1)
            ok = nq > eps * norms[atom_id]
            q = torch.where(ok[:, None], q / nq.clamp_min(1e-30)[:, None], torch.zeros_like(q))
            R[:, :t, t] = torch.where(ok[:, None], h[:, :t], torch.zeros_like(h[:, :t]))
            R[:, t, t] = torch.where(ok, nq, torch.ones_like(nq))
            Q[:, t, :] = q
            r = r - q * (q * r).sum(dim=1, keepdim=True)
            t += 1
    qx = torch.bmm(Q, x[:, :, None])  # (B, k, 1)
    coeffs = torch.linalg.solve_triangular(R, qx, upper=True)[:, :, 0]
    xn = x.norm(dim=1)
    resid = torch.where(xn > 0, r.norm(dim=1) / xn.clamp_min(1e-30), torch.zeros_like(xn))
    return OMPResult(idx, coeffs, resid)


def omp(x: torch.Tensor, atoms: torch.Tensor, k: int, *, candidates: int | None = None, per_step: int = 1,
        batch_size: int = 512, progress: Callable[[int], None] | None = None) -> OMPResult:
    """OMP for all rows of ``x (M, D)`` over ``atoms (N, D)``, in batches of ``batch_size``.

    Args:
        candidates: ``L``: pre-select each row's ``L`` largest-``|cos|`` atoms (None: all ``N``).
        per_step: atoms added per correlation step (see :func:`batch_omp`).
        progress: called with the number of rows finished after each batch (a tqdm ``update``).
    """
    M = x.shape[0]
    a = atoms.to(x.device).float()
    unit = a / a.norm(dim=1, keepdim=True).clamp_min(1e-30)
    parts = []
    for s in range(0, M, batch_size):
        xb = x[s:s + batch_size].float()
        cand = None
        if candidates is not None and candidates < a.shape[0]:
            xu = xb / xb.norm(dim=1, keepdim=True).clamp_min(1e-30)
            cand = topk_candidates(xu, unit, candidates)
        parts.append(batch_omp(xb, a, k, candidates=cand, per_step=per_step))
        if progress is not None:
            progress(xb.shape[0])
    if not parts:
        z = x.new_zeros(0, k)
        return OMPResult(z.long(), z.float(), x.new_zeros(0))
    return OMPResult(torch.cat([p.indices for p in parts]), torch.cat([p.coeffs for p in parts]),
                     torch.cat([p.residual for p in parts]))
