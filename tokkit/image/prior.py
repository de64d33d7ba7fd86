"""An autoregressive prior over 1D image token ids: a small causal transformer (GPT-style).

TiTok (arXiv:2406.07550), One-D-Piece (arXiv:2501.10064) and FlexTok (arXiv:2502.13967) all model their 1D
tokens with an AR generator; here the same model serves twice: it gives the conditionals
``p(id_j | id_<j)`` that arithmetic-code a ``.tok`` file (:mod:`tokkit.image.ar_coding`) and it samples new
token sequences. Input: a start token then ``ids[:, :L-1]``; learned position embeddings; pre-LN blocks
with causal attention written as plain ``matmul`` + ``masked_fill`` + ``softmax`` (no fused kernel, so the
float64 CPU forward used for coding is a fixed sequence of ordinary ops); a linear head over the K codes.

No length conditioning: a ``.tok`` keeps a *prefix* of the N ids the encoder always emits, so
``p(id_j | id_<j)`` does not depend on how many tokens are kept; one model codes and samples every k.
:class:`PriorConfig` (pydantic, ``extra="forbid"``) is the recipe and the single source of defaults.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from tokkit.config import SEED_MAX, flag_name, read_yaml, validation_message
from tokkit.errors import FormatError, UnknownNameError

__all__ = ["PriorConfig", "ARPrior", "PRIOR_RECIPES", "load_prior_recipe"]


class PriorConfig(BaseModel):
    """AR prior recipe: network shape, optimiser, data augmentation and the coding precision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(128, ge=8)
    depth: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    warmup: int = Field(50, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    augment_passes: int = Field(1, ge=0, description="random-crop + flip token passes over the training images, "
                                                     "besides the plain resized one")
    val_every: int = Field(20, ge=2, description="every n-th training image is kept out of prior training (readout)")
    log_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    freq_bits: int = Field(20, ge=12, le=30, description="quantised conditionals sum to at most 2**freq_bits")
    threads: int | None = Field(None, ge=1, description="torch CPU threads for training (None = torch default)")

    @model_validator(mode="after")
    def _check(self) -> "PriorConfig":
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        return self


PRIOR_RECIPES: dict[str, dict] = {
    "tiny": {},  # the defaults: 0.66 M params at K = 1000, N = 32; minutes on a 2-core CPU
    "base": {"width": 512, "depth": 8, "heads": 8, "steps": 50_000, "batch_size": 256, "lr": 6e-4, "warmup": 1000,
             "augment_passes": 8, "log_every": 500, "checkpoint_every": 5000},
}


def load_prior_recipe(name_or_path: str | Path, overrides: dict | None = None) -> PriorConfig:
    """A built-in prior recipe (``tiny`` | ``base``) or a YAML file, with non-None ``overrides`` on top."""
    if str(name_or_path) in PRIOR_RECIPES:
        base = dict(PRIOR_RECIPES[str(name_or_path)])
    else:
        p = Path(name_or_path)
        if not p.is_file():
            raise UnknownNameError(f"unknown prior recipe {name_or_path!r}; expected one of {sorted(PRIOR_RECIPES)} "
                                   "or a YAML file")
        base = read_yaml(p, "prior recipe") or {}
        if not isinstance(base, dict):
            raise FormatError(f"prior recipe {p}: expected a mapping of recipe keys, found {type(base).__name__}")
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return PriorConfig.model_validate({**base, **over})
    except ValidationError as e:
        raise FormatError(validation_message(e, label=f"prior recipe {name_or_path}", flags={k: flag_name(k) for k in over},
                                             known=PriorConfig.model_fields)) from None


class CausalBlock(nn.Module):
    """Pre-LN block: causal multi-head attention + 4x GELU MLP on ``x (B, L, W)``."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """``future (L, L)`` bool, True where key > query (masked out)."""
        B, L, W = x.shape
        h = W // self.heads
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.heads, h).permute(2, 0, 3, 1, 4)  # (B, heads, L, h) each
        att = (q @ k.transpose(-1, -2)) / math.sqrt(h)
        att = torch.softmax(att.masked_fill(future, float("-inf")), dim=-1)  # future keys get exactly 0 weight
        a = (self.drop(att) @ v).transpose(1, 2).reshape(B, L, W)
        x = x + self.drop(self.proj(a))
        return x + self.drop(self.mlp(self.ln2(x)))


class ARPrior(nn.Module):
    """Causal transformer over ids in 0..K-1 (id K is the start token); ``forward(ids (B, L)) -> logits (B, L, K)``.

    Row j of the output is the distribution of ``ids[:, j]`` given ``ids[:, :j]`` (row 0: given nothing).
    """

    def __init__(self, cfg: PriorConfig, *, codebook_size: int, max_tokens: int) -> None:
        super().__init__()
        self.cfg, self.codebook_size, self.max_tokens = cfg, codebook_size, max_tokens
        W = cfg.width
        self.tok_emb = nn.Embedding(codebook_size + 1, W)
        self.pos_emb = nn.Parameter(torch.zeros(max_tokens, W))
        self.blocks = nn.ModuleList(CausalBlock(W, cfg.heads, cfg.dropout) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(W)
        self.head = nn.Linear(W, codebook_size)
        self.drop = nn.Dropout(cfg.dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, L = ids.shape
        start = torch.full((B, 1), self.codebook_size, dtype=torch.long, device=ids.device)
        inp = torch.cat([start, ids[:, : L - 1]], 1)
        x = self.drop(self.tok_emb(inp) + self.pos_emb[:L])
        future = torch.ones(L, L, dtype=torch.bool, device=ids.device).triu(1)
        for blk in self.blocks:
            x = blk(x, future)
        return self.head(self.ln_f(x))

    @torch.no_grad()
    def sample(self, n: int, k: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, k)`` ids drawn one position at a time from ``softmax(logits / temperature)``."""
        dev = self.pos_emb.device
        ids = torch.zeros(n, k, dtype=torch.long, device=dev)
        for j in range(k):
            logits = self(ids)[:, j].float().cpu()
            if temperature <= 0:
                ids[:, j] = logits.argmax(-1).to(dev)
                continue
            p = torch.softmax(logits / temperature, -1)
            ids[:, j] = torch.multinomial(p, 1, generator=generator)[:, 0].to(dev)
        return ids
