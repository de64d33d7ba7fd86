"""Brute-force oracles for the transplant tests: per-row OMP with an exact least-squares fit."""

from __future__ import annotations

import numpy as np


def lstsq_coeffs(x: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Coefficients ``c`` minimising ``‖x − cᵀ atoms‖`` (float64 lstsq); ``atoms (k, D)``, ``x (D,)``."""
    c, *_ = np.linalg.lstsq(atoms.T.astype(np.float64), x.astype(np.float64), rcond=None)
    return c


def omp_row(x: np.ndarray, atoms: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[list[int], np.ndarray, float]:
    """Textbook OMP for one row: pick the unit atom most correlated with the residual, refit all by lstsq.

    Returns (indices in selection order, coefficients on the original atoms, relative residual).
    """
    a = atoms.astype(np.float64)
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    pool = np.arange(len(a)) if allowed is None else np.asarray(allowed)
    r = x.astype(np.float64)
    sel: list[int] = []
    c = np.zeros(0)
    for _ in range(k):
        corr = np.abs(unit[pool] @ r)
        corr[np.isin(pool, sel)] = -1
        sel.append(int(pool[int(np.argmax(corr))]))
        c = lstsq_coeffs(x, a[sel])
        r = x - c @ a[sel]
    return sel, c, float(np.linalg.norm(r) / np.linalg.norm(x))
