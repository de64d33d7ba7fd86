"""The interface every reconstruction method implements (OMP, heuristic, FVT, mean, zero, hypernet).

A method receives an :class:`InitContext` (the base model's embeddings, both tokenizers, the
byte-level :class:`~tokkit.transplant.align.Alignment`, an optional donor) and the destination ids
to build, and returns their rows in the **base** model's embedding space as an
:class:`InitResult`. Anchored rows (shared tokens, special tokens) are copied by the caller;
methods only see ``new`` ids. A method never writes files and never moves tensors off
``ctx.device``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

from tokkit.embedding import ModelEmbeddings
from tokkit.transplant.align import Alignment
from tokkit.transplant.decompose import Decomposer

__all__ = ["InitContext", "InitResult", "Cost", "EmbeddingInit"]


@dataclass(frozen=True)
class Cost:
    """Up-front cost of a method: multiply-add FLOPs and peak working memory (bytes)."""

    flops: float = 0.0
    memory_bytes: int = 0


@dataclass
class InitContext:
    """Everything a method may use (read-only by convention).

    Attributes:
        base: the base model's input rows ``(R_src, D)`` and output rows (None: tied).
        alignment: destination -> source matches (``alignment.src`` / ``alignment.dst``).
        src_hf: the source tokenizer as ``tokenizers.Tokenizer`` (for decompositions), or None.
        donor: a donor model's embeddings indexed by **destination** ids ``(R_dst, D_donor)``, or None.
        device: where the computation runs (the tensors are moved there).
        batch_bytes: working-memory budget of one batch.
        progress: show tqdm bars.
        seed: for any randomness.
        banned_source_ids: source rows a method must not use (the held-out-anchor check bans the
            held-out tokens' own rows, so a decomposition cannot return the token itself).
        model_folder: the base model's HF folder (methods that run the model: distill).
        src_tok, dst_tok: the two :class:`tokkit.tokenizer.Tokenizer` handles (to read text both ways).
        texts: text in which the new tokens occur (extend's SOURCE, transplant's ``--corpus``).
        keep_texts: text of the language the model keeps (extend's ``--keep-text``).
        notes: facts a method records for the report (name -> JSON-able), written by the method.
        checkpoint: a folder where a long method keeps its resumable state (None: none).
        resume: continue from ``checkpoint`` when it exists.
    """

    base: ModelEmbeddings
    alignment: Alignment
    src_hf: Any = None
    donor: ModelEmbeddings | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_bytes: int = 512 << 20
    progress: bool = False
    seed: int = 0
    banned_source_ids: frozenset[int] = frozenset()
    model_folder: Path | None = None
    src_tok: Any = None
    dst_tok: Any = None
    texts: tuple[str, ...] = ()
    keep_texts: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    resume: bool = False

    @cached_property
    def decomposer(self) -> Decomposer:
        return Decomposer(self.alignment.src, self.src_hf)

    def base_input(self) -> torch.Tensor:
        """Base input rows on ``device``, float32 ``(R_src, D)``."""
        return self.base.input.weight.to(self.device).float()

    def base_output(self) -> torch.Tensor | None:
        """Base output rows on ``device``, float32, or None when tied."""
        return None if self.base.output is None else self.base.output.weight.to(self.device).float()

    def pieces(self, dst_ids: Sequence[int]) -> list[list[int]]:
        """Source-tokenizer pieces of each destination token; a held-out anchor never uses its own source row."""
        dst = self.alignment.dst
        banned = self.banned_source_ids
        toks = [dst.tokens[i] for i in dst_ids]
        if not banned:
            return self.decomposer.pieces_of(toks)
        return self.decomposer.pieces_of(toks, banned=[banned] * len(toks))

    def ordinary_source_ids(self) -> list[int]:
        """Source ids that may serve as neighbours/means: ordinary, not held out."""
        skip = self.banned_source_ids
        return [i for i in self.alignment.src.ordinary_ids() if i not in skip]


@dataclass(frozen=True)
class InitResult:
    """Rows for ``M`` destination ids in the base space.

    Attributes:
        input: ``(M, D)`` float32 input rows.
        output: ``(M, D)`` float32 output rows, or None when the base is tied.
        details: per-row JSON-able facts for the provenance report (same length ``M`` each), e.g.
            ``{"pieces": [[12, 7], ...]}`` or ``{"residual": [0.31, ...]}``.
    """

    input: torch.Tensor
    output: torch.Tensor | None
    details: dict[str, list[Any]] = field(default_factory=dict)


@runtime_checkable
class EmbeddingInit(Protocol):
    """A reconstruction method. ``name`` is what ``--method`` and the report show."""

    name: str

    def cost(self, ctx: InitContext, n_new: int) -> Cost:
        """FLOPs and memory for ``n_new`` rows (printed before the work starts)."""
        ...

    def initialize(self, ctx: InitContext, dst_ids: Sequence[int]) -> InitResult:
        """Rows for ``dst_ids`` (destination ids) in the base model's space."""
        ...
