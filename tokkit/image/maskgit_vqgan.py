"""The MaskGIT-VQGAN pixel decoder that two-stage TiTok / One-D-Piece checkpoints decode through.

MaskGIT (Chang et al., arXiv:2202.04200) tokenizes 256² images into a 16×16 grid of 1024 codes (256-d) with a
VQGAN without non-local layers. TiTok's stage 1 learns to predict those "proxy codes"; stage 2 feeds the
softmax of its logits, mixed through the MaskGIT codebook, into this decoder (bytedance/1d-tokenizer
``modeling/modules/maskgit_vqgan.py``, after open-muse's port of the JAX weights). Parameter names follow that
code so a published state dict loads as is: ``conv_in``, ``mid.{i}``, ``up.{level}.block.{j}``,
``up.{level}.upsample_conv``, ``norm_out``, ``conv_out``.

Two details are reproduced on purpose because the published weights were trained with them: the residual
block's 1×1 shortcut is applied to the block's *output* (not its input) when the channel count changes, and
"same" padding is symmetric for the stride-1 odd kernels used here (so a plain ``padding=k // 2`` is exact).
Tensors are ``(B, C, H, W)``; the decoder maps ``(B, z, g, g)`` to ``(B, 3, g·2^(L-1), g·2^(L-1))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PixelDecoder", "PixelCodebook"]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice; 1×1 ``nin_shortcut`` on the output when channels change."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.reshape = cin != cout
        if self.reshape:
            self.nin_shortcut = nn.Conv2d(cout, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        # The published weights were trained with the shortcut on h (the reference code's quirk), not on x.
        return h + (self.nin_shortcut(h) if self.reshape else x)


class UpLevel(nn.Module):
    """``num_res_blocks`` residual blocks, then (except at level 0) nearest ×2 and a 3×3 ``upsample_conv``."""

    def __init__(self, cin: int, cout: int, *, blocks: int, upsample: bool) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResBlock(cin if i == 0 else cout, cout) for i in range(blocks))
        self.upsample = upsample
        if upsample:
            self.upsample_conv = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        if self.upsample:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class PixelDecoder(nn.Module):
    """MaskGIT-VQGAN decoder: ``(B, z_channels, g, g)`` → ``(B, 3, g·2^(L-1), …)``, L = ``len(channel_mult)``."""

    def __init__(self, *, z_channels: int = 256, hidden: int = 128, channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4),
                 res_blocks: int = 2) -> None:
        super().__init__()
        L = len(channel_mult)
        top = hidden * channel_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, top, 3, padding=1)
        self.mid = nn.ModuleList(ResBlock(top, top) for _ in range(res_blocks))
        # up[i] works at level i; the forward pass runs them from L-1 down to 0 (the reference's order and names)
        self.up = nn.ModuleList(
            UpLevel(hidden * (channel_mult[-1] if i == L - 1 else channel_mult[i + 1]), hidden * channel_mult[i],
                    blocks=res_blocks, upsample=i != 0) for i in range(L))
        self.norm_out = _norm(hidden * channel_mult[0])
        self.conv_out = nn.Conv2d(hidden * channel_mult[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for blk in self.mid:
            h = blk(h)
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class PixelCodebook(nn.Module):
    """The MaskGIT-VQGAN codebook (``embedding.weight``: ``(proxy_codes, z_channels)``) that mixes the logits."""

    def __init__(self, codes: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(codes, dim)

    def mix(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits (B, codes, g, g)`` → softmax-weighted code vectors ``(B, dim, g, g)`` (TiTok stage 2)."""
        return torch.einsum("nchw,cd->ndhw", logits.softmax(1), self.embedding.weight)
