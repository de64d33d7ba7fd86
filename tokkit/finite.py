"""Non-finite numbers never pass silently: a NaN/inf training loss stops the run, keeping the last good checkpoint.

A loss that turns NaN or infinite poisons every later update and every later checkpoint; the run would
otherwise continue to the end and write NaN weights with exit code 0. :func:`check_loss` is called once per
step, with the loss value the loop already reads for its progress bar, and before the step's checkpoint is
saved -- so the checkpoint on disk is the last one taken while the loss was finite. Torch-free.
"""

from __future__ import annotations

import math
from typing import Mapping

from tokkit.errors import NonFiniteError

__all__ = ["check_loss"]


def check_loss(values: float | Mapping[str, float], *, step: int, kept: str = "", fix: str = "lower --lr") -> None:
    """Raise :class:`NonFiniteError` when ``values`` (a loss, or named losses) holds NaN or infinity.

    ``step``: the 1-based step that produced it; ``kept``: where the last good checkpoint is (shown).
    """
    named = values.items() if isinstance(values, Mapping) else (("loss", values),)
    for name, v in named:
        if isinstance(v, (int, float)) and not math.isfinite(v):
            where = f"; the last good checkpoint is kept in {kept}" if kept else ""
            raise NonFiniteError(f"training stopped at step {step}: the {name} became {v} (not a finite number){where}; "
                                 f"{fix}, or check the data and the model's weights")
