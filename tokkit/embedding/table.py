"""Vocab-indexed embedding tables (the interface text and image tokens share).

A table is a vocabulary plus a ``(R, D)`` tensor with ``R >= len(vocab)``: rows past the vocab are
padding (models round their vocab up to a multiple of 64/128). Fewer rows than ids is refused at
construction — not later as a CUDA index error (mergekit PR #657).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokkit.errors import VocabMismatchError
from tokkit.vocab import Vocab

__all__ = ["EmbeddingTable", "ModelEmbeddings"]


@dataclass(frozen=True)
class EmbeddingTable:
    """A vocab and its embedding rows.

    Attributes:
        vocab: text vocab or image codebook; ids ``0..len(vocab)-1``.
        weight: ``(R, D)`` tensor on any device, any float dtype; ``R >= len(vocab)``.
    """

    vocab: Vocab
    weight: torch.Tensor

    def __post_init__(self) -> None:
        if self.weight.ndim != 2:
            raise VocabMismatchError(f"embedding weight must be 2-D (rows, dim), found shape {tuple(self.weight.shape)}")
        rows, n = self.weight.shape[0], len(self.vocab)
        if rows < n:
            raise VocabMismatchError(
                f"the tokenizer has {n} ids but the embedding has only {rows} rows; ids {rows}..{n - 1} would index past "
                f"the table. Use the tokenizer that belongs to this model, or pad the embedding to at least {n} rows "
                f"(EmbeddingTable.padded_to({n}))")

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def rows_count(self) -> int:
        return int(self.weight.shape[0])

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of ``ids``: ``(N,)`` long -> ``(N, D)`` (on the weight's device)."""
        ids = ids.to(self.weight.device, torch.long)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self.vocab)):
            raise VocabMismatchError(
                f"token ids must lie in 0..{len(self.vocab) - 1}, found {int(ids.min())}..{int(ids.max())}")
        return self.weight.index_select(0, ids)

    def padded_to(self, rows: int) -> "EmbeddingTable":
        """A copy with zero rows appended up to ``rows`` (a multiple of 64 is customary)."""
        extra = rows - self.rows_count
        if extra <= 0:
            return self
        pad = self.weight.new_zeros(extra, self.dim)
        return EmbeddingTable(self.vocab, torch.cat([self.weight, pad]))


@dataclass(frozen=True)
class ModelEmbeddings:
    """A model's input embedding and output (lm_head) projection.

    Attributes:
        input: the input embedding table ``(R, D)``.
        output: the output table ``(R, D)``, or None when the model ties it to ``input``.
    """

    input: EmbeddingTable
    output: EmbeddingTable | None = None

    def __post_init__(self) -> None:
        if self.output is not None and self.output.dim != self.input.dim:
            raise VocabMismatchError(
                f"input embedding dim {self.input.dim} differs from output dim {self.output.dim}; expected the same model")

    @property
    def tied(self) -> bool:
        return self.output is None

    @property
    def dim(self) -> int:
        return self.input.dim

    def output_or_input(self) -> EmbeddingTable:
        """The table that scores next tokens (the input table when tied)."""
        return self.output if self.output is not None else self.input
