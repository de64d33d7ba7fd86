"""User-facing transplant settings: the ``Method`` enum and the ``TransplantConfig`` recipe (one source of defaults)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from tokkit.config import SEED_MAX

__all__ = ["Method", "OutputRows", "TemplatePolicy", "TransplantConfig", "DISTILL_KNOBS"]

#: TransplantConfig fields read only by ``--method distill``.
DISTILL_KNOBS = ("distill_from", "snippets", "snippet_tokens", "distill_layer", "distill_epochs", "distill_lr",
                 "checkpoint_every")


class Method(str, Enum):
    """Reconstruction methods (``--method``)."""

    OMP = "omp"
    HEURISTIC = "heuristic"
    FVT = "fvt"
    MEAN = "mean"
    ZERO = "zero"
    HYPERNET = "hypernet"
    DISTILL = "distill"


class OutputRows(str, Enum):
    """How the output rows of new tokens are made (``--output-rows``)."""

    FIT = "fit"  # fitted on the frozen model's final hidden states (untied when the base is tied)
    TIE = "tie"  # one matrix: the output row is the new input row (tied bases only)
    INIT = "init"  # the start method's own output rows (FVT: the mean of the pieces' output rows)
    MEAN = "mean"  # the mean ordinary output row: no leak, but the new tokens are hardly ever predicted


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
    distill_from: Method | None = Field(None, description=(
        "distill: the method whose rows distillation starts from (default fvt for extend, heuristic for transplant)"))
    snippets: int = Field(8, ge=1, le=10_000, description="distill: snippets (occurrences) wanted per new token")
    snippet_tokens: int = Field(32, ge=4, le=4096, description="distill: tokens per snippet (about)")
    distill_layer: int | None = Field(None, ge=-1, description=(
        "distill: match the states after this many layers (-1: all, the paper's; default: a quarter of them)"))
    distill_epochs: int = Field(2, ge=1, le=1000, description="distill: passes over the snippets")
    distill_lr: float = Field(0.05, gt=0, le=10.0, allow_inf_nan=False, description=(
        "distill: Adam step size as a fraction of the RMS of the embedding's rows"))
    checkpoint_every: int = Field(50, ge=1, description="distill: steps between checkpoints (resume with --resume)")
    output_rows: OutputRows | None = Field(None, description=(
        "output rows of new tokens: fit, tie, init, mean (default: fit for distill, else the method's own)"))
    fit_bytes: int = Field(200_000, ge=1000, description="output-row fit: text read per language (bytes)")
    fit_keep_weight: float = Field(4.0, gt=0, le=1000.0, allow_inf_nan=False, description=(
        "output-row fit: weight of a position of the protected (--keep-text) text, relative to one of the new text"))
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    memory_gb: float | None = Field(None, gt=0, description="working-memory budget per batch (default: from free memory)")
    seed: int = Field(0, ge=0, le=SEED_MAX)

    def unused_knobs(self) -> list[str]:
        """Fields the user set that the resolved method / output rows never read (the knobs of distill and of the
        output-row fit): an explicit value that would be ignored is a mistake to report, not to skip."""
        fields = self.model_fields_set
        out = []
        if self.resolved_method() is not Method.DISTILL:
            out += [f for f in DISTILL_KNOBS if f in fields]
        rows = self.output_rows or (OutputRows.FIT if self.resolved_method() is Method.DISTILL else None)
        out += [f for f in ("fit_bytes", "fit_keep_weight") if f in fields and rows is not OutputRows.FIT]
        return out

    def resolved_method(self) -> Method:
        return self.method or (Method.OMP if self.donor else Method.HYPERNET if self.hypernet else Method.HEURISTIC)
