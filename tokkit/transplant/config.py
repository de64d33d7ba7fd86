"""User-facing transplant settings: the ``Method`` enum and the ``TransplantConfig`` recipe (one source of defaults)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from tokkit.config import SEED_MAX

__all__ = ["Method", "TemplatePolicy", "TransplantConfig"]


class Method(str, Enum):
    """Reconstruction methods (``--method``)."""

    OMP = "omp"
    HEURISTIC = "heuristic"
    FVT = "fvt"
    MEAN = "mean"
    ZERO = "zero"
    HYPERNET = "hypernet"


class TemplatePolicy(str, Enum):
    """Which chat template the output gets (``--chat-template``)."""

    AUTO = "auto"  # the target's when it has one, else the source's when its control tokens exist in the new vocab
    TARGET = "target"
    SOURCE = "source"
    NONE = "none"


class TransplantConfig(BaseModel):
    """Everything ``tokkit transplant`` needs; CLI flags overlay these defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    src: str = Field(description="base model: alias (smollm2, gemma3), HF folder or repo id")
    dst: str = Field(description="new tokenizer: alias (mistral, llama3, ...), file, folder or repo id")
    donor: str | None = Field(None, description="donor model that uses the new tokenizer (required by omp)")
    method: Method | None = Field(None, description="reconstruction method; default omp with a donor, else heuristic")
    k: int = Field(64, ge=1, description="OMP: anchors per new token")
    per_step: int = Field(32, ge=1, description="OMP: atoms added per correlation step (1: textbook OMP; 32: k/32 GEMMs)")
    candidates: int | None = Field(None, ge=1, description="OMP: anchors pre-selected per token by cosine (None: all)")
    global_weight: float = Field(0.3, ge=0, le=1, description="heuristic: weight of the global kNN estimate")
    temperature: float = Field(0.3, gt=0, le=5, description="heuristic: softmax temperature")
    top_k: int = Field(3, ge=1, description="heuristic: neighbours of the global estimate")
    threshold: float = Field(0.0, description="heuristic: minimum neighbour similarity")
    aux_model: str | None = Field(None, description="heuristic: HF text-embedding model folder for similarities")
    hypernet: str | None = Field(None, description="hypernet: checkpoint folder written by `tokkit hypernet train`")
    chat_template: TemplatePolicy = Field(TemplatePolicy.AUTO, description="chat template policy")
    pad_to: int = Field(64, ge=1, description="round the embedding rows up to a multiple of this")
    heldout: int = Field(500, ge=0, description="shared tokens reconstructed as if new for the fidelity check (0: skip)")
    treat_as_new: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "evaluation only: seeded share of the shared multi-byte ordinary tokens rebuilt by the method as if they "
        "were new (their source rows banned from decompositions, anchors and neighbours), so bits per byte on any "
        "text measures the method and not the copied rows"))
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    memory_gb: float | None = Field(None, gt=0, description="working-memory budget per batch (default: from free memory)")
    seed: int = Field(0, ge=0, le=SEED_MAX)

    def resolved_method(self) -> Method:
        return self.method or (Method.OMP if self.donor else Method.HYPERNET if self.hypernet else Method.HEURISTIC)
