"""Heal a transplanted or extended model: train the rows it built back towards the original's quality.

``run_heal(plan_heal(HealConfig(model=..., sources=(...)), out_dir))`` trains the built rows (or all
embedding rows, or also the norms) with next-token loss and/or ALM self-distillation from the
source model (Minixhofer, Vulić, Ponti 2025, arXiv:2503.20083), then writes an HF model folder.
The CLI is ``tokkit heal``.
"""

from tokkit.transplant.heal.config import HealConfig as HealConfig
from tokkit.transplant.heal.config import Loss as Loss
from tokkit.transplant.heal.config import Train as Train
from tokkit.transplant.heal.run import HealPlan as HealPlan
from tokkit.transplant.heal.run import plan_heal as plan_heal
from tokkit.transplant.heal.run import run_heal as run_heal

__all__ = ["HealConfig", "Loss", "Train", "HealPlan", "plan_heal", "run_heal"]
