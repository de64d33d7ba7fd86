"""The learning-rate schedule every tokkit training loop uses: linear warm-up, then cosine decay to a floor.

Loshchilov & Hutter, "SGDR" (arXiv:1608.03983) for the cosine; the warm-up as in Goyal et al.
(arXiv:1706.02677). ``heal``, ``hypernet train``, ``image train`` and ``image prior train`` (and
Token Distillation) call :func:`warmup_cosine` with their own peak, warm-up and floor. Torch-free.
"""

from __future__ import annotations

import math

__all__ = ["warmup_cosine", "default_warmup"]


def default_warmup(steps: int) -> int:
    """Warm-up steps when a config does not name them: 10% of ``steps``, at least 1, at most 100."""
    return max(1, min(100, steps // 10))


def warmup_cosine(step: int, *, steps: int, peak: float, warmup: int | None = None, floor: float = 0.1) -> float:
    """Learning rate of 0-based ``step`` of a ``steps``-step run.

    ``step < warmup``: ``peak * (step + 1) / warmup``; after it, cosine from ``peak`` down to
    ``floor * peak`` at the last step (and held there past it). ``warmup=None`` uses
    :func:`default_warmup`; ``warmup=0`` starts at the peak.

    Example:
        >>> warmup_cosine(0, steps=100, peak=1e-3)   # the first of 10 warm-up steps
        0.0001
        >>> warmup_cosine(100, steps=100, peak=1e-3, floor=0.1) == 1e-3 * 0.1
        True
    """
    warm = default_warmup(steps) if warmup is None else warmup
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
