"""The 1D tokenizer network: TiTok encoder/decoder with a pluggable length sampler.

TiTok (Yu et al., arXiv:2406.07550; bytedance/1d-tokenizer ``modeling/modules/blocks.py``): a ViT over
patches plus N learnable latent tokens; the latent outputs are projected to the quantizer's dim. The
decoder reads one mask token per patch plus the first k quantized latents and predicts pixels from
the patch outputs (non-legacy head: linear -> pixel shuffle -> conv). Variable length comes from the
training-time :mod:`~tokkit.image.samplers` (One-D-Piece tail drop, arXiv:2501.10064; FlexTok nested
dropout, arXiv:2502.13967). Per-sample lengths mask dropped latents out of the decoder's attention keys
with an SDPA boolean mask (FlexAttention has no CPU backward). Pixels are ``(B, 3, H, W)`` in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tokkit.image.config import ModelConfig
from tokkit.image.quantizers import build_quantizer

__all__ = ["Tokenizer1D"]


class Block(nn.Module):
    """Pre-LN transformer block (MHSA via SDPA + 4x GELU MLP); ``x (B, S, W)``, ``keep (B, S)`` bool or None."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        B, S, W = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, S, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, S): True = attend
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, S, W/h)
        x = x + self.proj(a.transpose(1, 2).reshape(B, S, W))
        return x + self.mlp(self.ln2(x))


class Tokenizer1D(nn.Module):
    """TiTok-style 1D tokenizer. ``encode``: images -> all N ids; ``decode_codes``: first k codes -> images."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        W, p, g, N = cfg.width, cfg.patch, cfg.image_size // cfg.patch, cfg.max_tokens
        self.grid = g
        if cfg.conv_head:
            self.stem = nn.Sequential(nn.Conv2d(3, W // 2, 3, padding=1), nn.GELU(), nn.Conv2d(W // 2, W, p, stride=p))
        else:
            self.stem = nn.Conv2d(3, W, p, stride=p)
        self.enc_pos = nn.Parameter(torch.zeros(g * g, W))
        self.latents = nn.Parameter(torch.zeros(N, W))
        self.enc_latent_pos = nn.Parameter(torch.zeros(N, W))
        self.encoder = nn.ModuleList(Block(W, cfg.heads) for _ in range(cfg.enc_depth))
        self.enc_ln = nn.LayerNorm(W)
        self.to_token = nn.Linear(W, cfg.token_dim)
        self.quantizer = build_quantizer(cfg.quantizer, levels=cfg.fsq_levels, size=cfg.vq_size, dim=cfg.vq_dim)
        self.from_token = nn.Linear(cfg.token_dim, W)
        self.mask_token = nn.Parameter(torch.zeros(1, W))
        self.dec_pos = nn.Parameter(torch.zeros(g * g, W))
        self.dec_latent_pos = nn.Parameter(torch.zeros(N, W))
        self.decoder = nn.ModuleList(Block(W, cfg.heads) for _ in range(cfg.dec_depth))
        self.dec_ln = nn.LayerNorm(W)
        ch = 16 if cfg.conv_head else 3
        self.to_pixels = nn.Linear(W, p * p * ch)
        if cfg.conv_head:
            self.refine = nn.Sequential(nn.Conv2d(ch, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 3, 3, padding=1))
        else:
            self.refine = nn.Conv2d(3, 3, 3, padding=1)
        self._init()

    def _init(self) -> None:
        # xavier on every Linear removes the "predict the mean image" plateau at small width (reference §7.2).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for prm in (self.enc_pos, self.latents, self.enc_latent_pos, self.mask_token, self.dec_pos, self.dec_latent_pos):
            nn.init.normal_(prm, std=0.02)

    @property
    def max_tokens(self) -> int:
        return self.cfg.max_tokens

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``images (B, 3, S, S)`` in [0, 1] -> codes ``(B, N, d)``, ids ``(B, N)``, quantizer aux loss."""
        B = images.shape[0]
        x = self.stem(images * 2 - 1).flatten(2).transpose(1, 2) + self.enc_pos  # (B, g*g, W)
        lat = (self.latents + self.enc_latent_pos).expand(B, -1, -1)
        h = torch.cat([x, lat], 1)
        for blk in self.encoder:
            h = blk(h)
        z = self.to_token(self.enc_ln(h[:, x.shape[1]:]))  # (B, N, d)
        return self.quantizer(z)

    def decode_codes(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, k, d)`` -> images ``(B, 3, S, S)``; ``lengths (B,)`` keeps only ``codes[b, :lengths[b]]``."""
        B, k, _ = codes.shape
        g2 = self.grid * self.grid
        lat = self.from_token(codes) + self.dec_latent_pos[:k]
        h = torch.cat([(self.mask_token + self.dec_pos).expand(B, -1, -1), lat], 1)  # (B, g*g + k, W)
        keep = None
        if lengths is not None:
            pos = torch.arange(k, device=codes.device)
            keep = torch.cat([torch.ones(B, g2, dtype=torch.bool, device=codes.device), pos[None] < lengths[:, None]], 1)
        for blk in self.decoder:
            h = blk(h, keep)
        y = self.to_pixels(self.dec_ln(h[:, :g2]))  # (B, g*g, p*p*ch)
        p, g = self.cfg.patch, self.grid
        y = y.view(B, g, g, -1, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, -1, g * p, g * p)
        return self.refine(y) * 0.5 + 0.5

    def codebook(self) -> torch.Tensor:
        """All code vectors ``(K, d)``: row i is the code of id i."""
        return self.quantizer.codebook()

    def decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (B, k)`` long, 1 <= k <= N -> images ``(B, 3, S, S)`` (not clamped)."""
        codes = self.quantizer.codes_from_ids(ids).to(self.mask_token.dtype)
        return self.decode_codes(codes)
