"""The per-image RD table at equal payload budgets: selection rules against a brute-force oracle, codec bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from tokkit.image.rd import best_within, codec_candidates  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"


def test_best_within_matches_a_brute_force_scan():
    rng = np.random.default_rng(0)
    nbytes = np.sort(rng.integers(1, 40, (50, 12)), 1).astype(float)  # sizes grow with k, like token prefixes
    quality = rng.normal(20, 3, (50, 12))
    fallback = rng.normal(14, 1, 50)
    for budget in (0.5, 1, 5, 17, 39, 100):
        best, largest, served = [], [], []
        for i in range(50):
            fit = [j for j in range(12) if nbytes[i, j] <= budget]
            served.append(bool(fit))
            best.append(max(quality[i, j] for j in fit) if fit else fallback[i])
            largest.append(quality[i, fit[-1]] if fit else fallback[i])
        assert best_within(nbytes, quality, budget, fallback) == pytest.approx((np.mean(best), np.mean(served)))
        assert best_within(nbytes, quality, budget, fallback, largest=True) == pytest.approx((np.mean(largest),
                                                                                               np.mean(served)))


def test_codec_candidates_cover_every_scale_and_quality():
    from tokkit.image.data import load_images

    x = load_images(sorted(ICONS.glob("*.png"))[:3], size=32)
    nb, ps = codec_candidates(x, "JPEG", qualities=(1, 50), scales=(1, 4))
    opt, _ = codec_candidates(x, "JPEG_OPT", qualities=(1, 50), scales=(1, 4))
    assert nb.shape == ps.shape == (3, 4)
    assert (nb[:, 1] > nb[:, 0]).all() and (ps[:, 1] > ps[:, 0]).all()  # q50 costs more and looks better than q1
    assert (nb[:, 2] < nb[:, 0]).all()  # 8x8 px is cheaper than 32x32 at the same quality
    assert (opt <= nb).all()  # optimised Huffman tables move bytes into the (uncounted) header
    wb, wp = codec_candidates(x, "WEBP", qualities=(0,), scales=(1,))
    assert wb.shape == (3, 1) and (wb > 0).all() and np.isfinite(wp).all()
