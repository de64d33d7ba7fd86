"""Options of the ``tokkit bytes`` commands: the one place their defaults live (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tokkit.config import SEED_MAX

__all__ = ["BytesOptions"]


class BytesOptions(BaseModel):
    """What a byte-level run may be told; CLI flags default to None and are overlaid on this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Literal["canonical", "all"] = Field("canonical", description="canonical tokenizations (Phan et al.) or all (Vieira et al.)")
    beam: int | None = Field(None, ge=1, description="exact sequences kept per byte for target=all (None: all)")
    device: str = Field("auto", description="cpu, cuda, or auto (cuda when available)")
    max_bytes: int = Field(64, ge=1, description="bytes to generate at most")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy; else sample p^(1/T) over bytes")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="sampling seed")
    top: int = Field(10, ge=1, le=257, description="bytes listed by `next`")
    mode: Literal["mixture", "product", "bayes"] = Field("mixture", description="ensemble rule")
