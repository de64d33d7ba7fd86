"""Batched OMP against a per-row brute-force OMP with exact least squares (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference import lstsq_coeffs, omp_row
from tokkit.embedding.sparse import batch_omp, omp, omp_batch_size, omp_flops


def _data(seed: int, m: int, n: int, d: int):
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n, d, generator=g) * torch.rand(n, 1, generator=g).add(0.2) * 3  # uneven norms
    x = torch.randn(m, d, generator=g)
    return x, atoms


@pytest.mark.parametrize("k", [1, 5, 12])
def test_batch_omp_matches_per_row_oracle(k):
    x, atoms = _data(0, 16, 60, 24)
    res = batch_omp(x, atoms, k)
    for r in range(x.shape[0]):
        sel, c, resid = omp_row(x[r].numpy(), atoms.numpy(), k)
        assert res.indices[r].tolist() == sel
        np.testing.assert_allclose(res.coeffs[r].numpy(), c, rtol=1e-3, atol=1e-4)
        assert abs(float(res.residual[r]) - resid) < 1e-4


def test_coefficients_are_the_least_squares_fit_on_the_support():
    x, atoms = _data(1, 8, 40, 32)
    res = batch_omp(x, atoms, 10)
    for r in range(8):
        c = lstsq_coeffs(x[r].numpy(), atoms[res.indices[r]].numpy())
        np.testing.assert_allclose(res.coeffs[r].numpy(), c, rtol=1e-3, atol=1e-4)
    recon = res.apply(atoms)
    rel = (recon - x).norm(dim=1) / x.norm(dim=1)
    torch.testing.assert_close(rel, res.residual, atol=1e-4, rtol=1e-3)


def test_full_support_reproduces_targets_and_apply_carries_coefficients():
    x, atoms = _data(2, 6, 20, 20)  # 20 independent atoms span R^20: exact fit
    res = batch_omp(x, atoms, 20)
    assert float(res.residual.max()) < 1e-4
    other = torch.randn(20, 7)  # a second space: the same coefficients on its rows
    expect = torch.stack([res.coeffs[r] @ other[res.indices[r]] for r in range(6)])
    torch.testing.assert_close(res.apply(other), expect)


def test_dependent_atoms_get_zero_coefficients():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(5, 16, generator=g)
    atoms = torch.cat([base, base * 2.0, base[:2] * -1.0])  # duplicates along the same directions
    x = base[0] * 0.5 + base[3] * 2.0
    res = batch_omp(x[None], atoms, 8)
    assert torch.isfinite(res.coeffs).all()
    assert float(res.residual[0]) < 1e-5
    torch.testing.assert_close(res.apply(atoms)[0], x, atol=1e-4, rtol=1e-4)


def test_candidate_preselection_matches_oracle_restricted_to_candidates():
    x, atoms = _data(4, 10, 200, 16)
    unit = atoms / atoms.norm(dim=1, keepdim=True)
    xu = x / x.norm(dim=1, keepdim=True)
    cand = (xu @ unit.T).abs().topk(30, dim=1).indices
    res = batch_omp(x, atoms, 6, candidates=cand)
    for r in range(10):
        sel, c, _ = omp_row(x[r].numpy(), atoms.numpy(), 6, allowed=cand[r].numpy())
        assert res.indices[r].tolist() == sel
        np.testing.assert_allclose(res.coeffs[r].numpy(), c, rtol=1e-3, atol=1e-4)


def test_batching_does_not_change_results_and_progress_counts_rows():
    x, atoms = _data(5, 37, 50, 12)
    seen = []
    a = omp(x, atoms, 4, batch_size=8, progress=seen.append)
    b = omp(x, atoms, 4, batch_size=100)
    assert torch.equal(a.indices, b.indices) and sum(seen) == 37
    torch.testing.assert_close(a.coeffs, b.coeffs)


def test_k_larger_than_dictionary_is_refused_before_work():
    x, atoms = _data(6, 2, 5, 4)
    with pytest.raises(ValueError, match="cannot select k=6 atoms from 5"):
        batch_omp(x, atoms, 6)


def test_cost_model_and_batch_budget():
    assert omp_flops(10, 100, 8, 4) == 2 * 4 * 10 * 100 * 8 + 4 * 10 * 8 * 16
    assert omp_flops(10, 100, 8, 4, candidates=20) < omp_flops(10, 100, 8, 4)
    small = omp_batch_size(1000, 64, 8, candidates=None, budget_bytes=1 << 20)
    big = omp_batch_size(1000, 64, 8, candidates=None, budget_bytes=1 << 26)
    assert 1 <= small < big


def test_generalized_omp_picks_top_s_per_step_and_fits_by_least_squares():
    x, atoms = _data(7, 8, 60, 24)
    res = batch_omp(x, atoms, 12, per_step=4)
    unit = atoms / atoms.norm(dim=1, keepdim=True)
    first = (x @ unit.T).abs().topk(4, dim=1).indices
    assert torch.equal(res.indices[:, :4], first)
    assert all(len(set(row)) == 12 for row in res.indices.tolist())
    for r in range(8):
        c = lstsq_coeffs(x[r].numpy(), atoms[res.indices[r]].numpy())
        np.testing.assert_allclose(res.coeffs[r].numpy(), c, rtol=1e-3, atol=1e-4)
    assert omp_flops(10, 100, 8, 12, per_step=4) < omp_flops(10, 100, 8, 12)
