"""The hypernetwork: base-tokenizer pieces of a token -> the token's input (and output) embedding.

ZeTT (Minixhofer, Ponti, Vulić, "Zero-Shot Tokenizer Transfer", NeurIPS 2024, arXiv:2405.07883, §3):
a token is decomposed into pieces of the base tokenizer; each piece is represented by the base
model's rows ``[E_in ; E_out]`` (``E_in`` only when tied), standardised by a fixed affine map,
projected to the network width and run through a small transformer encoder; the state at the
readout position (a learned query token in front of the pieces) is mapped back to the embedding
space. Unlike ZeTT, the readout predicts a **residual on top of the piece mean** (FVT) and the
last layer starts at zero, so an untrained network *is* FVT and training can only move away from
it where the loss says so.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["HyperNet", "pad_pieces"]


def pad_pieces(pieces: Sequence[Sequence[int]], *, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged id lists -> ``ids (M, L)`` (0-padded) and ``mask (M, L)`` (True = a real piece)."""
    L = max((len(p) for p in pieces), default=1) or 1
    ids = torch.zeros(len(pieces), L, dtype=torch.long)
    mask = torch.zeros(len(pieces), L, dtype=torch.bool)
    for r, p in enumerate(pieces):
        if p:
            ids[r, : len(p)] = torch.tensor(p, dtype=torch.long)
            mask[r, : len(p)] = True
    return ids.to(device), mask.to(device)


class HyperNet(nn.Module):
    """Pieces -> embedding rows.

    Args:
        dim: the base model's embedding width ``D``.
        tied: the base ties input and output embeddings (then rows are ``D`` wide, else ``2D``).
        hidden: encoder width ``H``.
        layers: encoder layers.
        heads: attention heads.
        max_pieces: pieces the encoder sees (ZeTT's ``hn_surface_maxlen``); the residual base uses all.
        table: the base rows ``(R, D or 2D)`` used to fit the fixed input/output scalers.
    """

    def __init__(self, *, dim: int, tied: bool, hidden: int, layers: int, heads: int, max_pieces: int,
                 table: torch.Tensor) -> None:
        super().__init__()
        self.dim, self.tied, self.max_pieces = dim, tied, max_pieces
        width = dim if tied else 2 * dim
        t = table.detach().float()
        self.register_buffer("in_mean", t.mean(0))
        self.register_buffer("in_std", t.std(0).clamp_min(1e-6))
        self.proj = nn.Linear(width, hidden)
        self.query = nn.Parameter(torch.randn(hidden) * 0.02)
        self.pos = nn.Parameter(torch.randn(max_pieces + 1, hidden) * 0.02)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, width)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def width(self) -> int:
        return self.dim if self.tied else 2 * self.dim

    def forward(self, table: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Rows for ``M`` tokens.

        Args:
            table: base rows ``(R, W)`` (``W = D`` tied, ``2D`` untied: ``[E_in ; E_out]``), frozen.
            ids: piece ids ``(M, L)``; mask: ``(M, L)`` True for real pieces (every row has at least one).

        Returns:
            ``(M, W)``: the piece mean (FVT) plus the predicted residual, in the base's scale.
        """
        feats = table[ids]  # (M, L, W)
        m = mask.unsqueeze(-1).to(feats.dtype)
        fvt = (feats * m).sum(1) / m.sum(1).clamp_min(1.0)
        k = min(ids.shape[1], self.max_pieces)
        x = self.proj((feats[:, :k] - self.in_mean) / self.in_std)  # (M, k, H)
        q = self.query.expand(x.shape[0], 1, -1)
        x = torch.cat([q, x], dim=1) + self.pos[: k + 1]
        pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask[:, :k]], dim=1)
        h = self.encoder(x, src_key_padding_mask=pad)[:, 0]
        return fvt + self.head(self.norm(h)) * self.in_std
