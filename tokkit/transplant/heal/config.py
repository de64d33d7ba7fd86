"""User-facing settings of ``tokkit heal`` (one source of defaults; CLI flags overlay them)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from tokkit.config import SEED_MAX

__all__ = ["Loss", "Train", "HealConfig", "RESUMABLE_CHANGES"]

#: Settings a resumed run may change without becoming another run.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "eval_every", "eval_texts", "device"})


class Loss(str, Enum):
    """Training objective (``--loss``)."""

    LM = "lm"  # next-token loss on SOURCE under the new tokenizer
    ALM = "alm"  # approximate likelihood matching against the teacher (Minixhofer et al. 2025)
    ALM_LM = "alm+lm"  # both, balanced by their gradient magnitude on the student's logits


class Train(str, Enum):
    """What is trained (``--train``); everything else stays frozen."""

    NEW_ROWS = "new-rows"  # only the rows the transplant / extension built (report kind "new")
    EMBEDDINGS = "embeddings"  # every input (and output) row
    EMBEDDINGS_NORMS = "embeddings+norms"  # every row plus the norm weights
    ALL = "all"  # every parameter: rows and norms at --lr, the other weights at --lr x body_lr_scale


class HealConfig(BaseModel):
    """Everything a heal run needs.

    ALM follows ``bminixhofer/tokenkit`` (``alm_unconstrained`` chunks, binary cross-entropy on
    ``exp(log p / tau)``, tau = 100); see ``tokkit/transplant/heal/alm.py`` for what is simplified.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="the model to heal: an HF folder written by `tokkit transplant` / `tokkit extend`")
    sources: tuple[str, ...] = Field(description="training text: .txt / .jsonl ('text' field) files or folders")
    teacher: str | None = Field(None, description="teacher model (alias or HF folder, with its own tokenizer); "
                                "default: the report's source model")
    loss: Loss = Field(Loss.ALM_LM, description="training objective")
    train: Train = Field(Train.NEW_ROWS, description="which parameters are trained")
    steps: int = Field(200, ge=1, description="optimizer steps")
    seq_bytes: int = Field(512, ge=16, description="UTF-8 bytes of text per training sequence")
    batch_size: int = Field(4, ge=1, description="sequences per step (per process under torchrun)")
    lr: float = Field(2e-3, gt=0, description="AdamW peak learning rate")
    body_lr_scale: float = Field(0.05, gt=0, le=1, description="--train all: the learning rate of the transformer's "
                                 "weights (not rows, not norms) as a share of --lr")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (0: rows are not pulled to zero)")
    grad_clip: float = Field(1.0, gt=0, description="gradient-norm clip")
    tau: float = Field(100.0, gt=0, description="ALM binarisation temperature (tokenkit's binarization_temp)")
    lm_weight: float = Field(1.0, ge=0, description="alm+lm: weight of the LM term after gradient balancing")
    heldout: float = Field(0.05, ge=0, lt=0.5, description="share of SOURCE held out for bits per byte before/after")
    heldout_max_bytes: int = Field(32768, ge=0, description="cap on the held-out text (bytes)")
    eval_every: int = Field(0, ge=0, description="score the held-out texts every N steps (0: only before and after)")
    eval_texts: tuple[str, ...] = Field((), description="more held-out text files scored with the held-out share")
    checkpoint_every: int = Field(25, ge=1, description="steps between checkpoints")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda ...")
