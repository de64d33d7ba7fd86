"""TiTok and One-D-Piece as published: the network whose state-dict names and shapes are the official ones.

TiTok (Yu et al., "An Image is Worth 32 Tokens for Reconstruction and Generation", arXiv:2406.07550;
bytedance/1d-tokenizer ``modeling/titok.py``, ``modeling/modules/blocks.py``, ``modeling/quantizer/quantizer.py``)
and One-D-Piece (Miwa et al., arXiv:2501.10064; turingmotors/One-D-Piece), which is the same network trained with
tail token drop so that any prefix of the tokens decodes. Written from the papers and a reading of the official
code; every name below is the official one, so a published state dict loads with ``load_state_dict`` as is:

* ``encoder``: ``patch_embed`` (p×p conv) → [``class_embedding``, patches] + ``positional_embedding``, then the
  N ``latent_tokens`` (owned by the top module) + ``latent_token_positional_embedding`` → ``ln_pre`` → L pre-LN
  blocks (``ln_1``, ``attn`` = ``nn.MultiheadAttention``, ``ln_2``, ``mlp.c_fc``/``mlp.c_proj``, GELU) →
  ``ln_post`` on the latents → 1×1 ``conv_out`` to ``token_size`` channels (twice that for VAE: mean, logvar).
  ``legacy`` reproduces the original checkpoints' reshape of ``(B, N, W)`` as ``(B, W, N, 1)`` *without* a
  permute before ``conv_out`` (it scrambles tokens and channels; the weights were trained that way).
* ``quantize``: VQ with optional l2-normalisation (nearest code = largest cosine), straight-through, loss
  ``β·|sg(q) − z|² + |q − sg(z)|²``; or a diagonal Gaussian (VAE: tokens are the means at inference).
* ``decoder``: ``decoder_embed`` (token → width) + ``latent_token_positional_embedding[:k]`` after
  [``class_embedding``, g² × ``mask_token``] + ``positional_embedding`` → blocks → ``ln_post`` on the g² patch
  outputs → ``ffn``: legacy = 1×1 conv → tanh → 1×1 conv to 1024 MaskGIT proxy-code logits (two-stage models then
  mix the softmax through ``pixel_quantize`` into ``pixel_decoder``, :mod:`tokkit.image.maskgit_vqgan`); otherwise
  1×1 conv to p·p·3 → pixel shuffle → 3×3 ``conv_out``.

Pixels are ``(B, 3, S, S)`` float in [0, 1] in and out (no normalisation, as the official code). Tokens are
``(B, N, token_size)``. A batch with per-sample lengths masks the dropped latents out of the attention keys.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from tokkit.errors import FormatError
from tokkit.image.config import TiTokConfig
from tokkit.image.maskgit_vqgan import PixelCodebook, PixelDecoder

__all__ = ["TiTok", "VectorQuantizer"]


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``; ``x (S, B, W)``, ``pad (B, S)`` True = drop."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)  # sequence-first, as the reference (same kernels, same bits)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=nn.GELU(),
                                             c_proj=nn.Linear(4 * width, width)))

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _ViT(nn.Module):
    """What encoder and decoder share: class token, grid positions, latent positions, block stack."""

    def __init__(self, cfg: TiTokConfig, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.grid = cfg.image_size // cfg.patch
        self.width = width
        self.class_embedding = nn.Parameter(torch.empty(1, width))
        self.positional_embedding = nn.Parameter(torch.empty(self.grid**2 + 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.empty(cfg.max_tokens, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(depth))
        self.ln_post = nn.LayerNorm(width)

    def _run(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, S, W)`` → ``(B, S, W)``; the blocks run sequence-first like the reference."""
        x = self.ln_pre(x).permute(1, 0, 2)
        for blk in self.transformer:
            x = blk(x, pad)
        return x.permute(1, 0, 2)


class Encoder(_ViT):
    def __init__(self, cfg: TiTokConfig) -> None:
        super().__init__(cfg, cfg.enc_width, cfg.enc_depth, cfg.enc_heads)
        self.legacy = cfg.legacy
        self.patch_embed = nn.Conv2d(3, cfg.enc_width, cfg.patch, stride=cfg.patch)
        out = cfg.token_size * (2 if cfg.quantizer == "vae" else 1)
        self.conv_out = nn.Conv2d(cfg.enc_width, out, 1)

    def forward(self, pixels: torch.Tensor, latent_tokens: torch.Tensor) -> torch.Tensor:
        """``pixels (B, 3, S, S)``, ``latent_tokens (N, W)`` → ``(B, N, C)`` (C = token_size, or 2× for VAE)."""
        B, W = pixels.shape[0], self.width
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)  # (B, g², W)
        x = torch.cat([self.class_embedding.expand(B, 1, W), x], 1) + self.positional_embedding
        lat = latent_tokens.expand(B, -1, -1) + self.latent_token_positional_embedding
        N = lat.shape[1]
        lat = self.ln_post(self._run(torch.cat([x, lat], 1))[:, 1 + self.grid**2:])  # (B, N, W)
        # legacy: the original checkpoints read (B, N, W) memory as (B, W, N, 1); reproduced for their weights
        lat = lat.reshape(B, W, N, 1) if self.legacy else lat.transpose(1, 2).unsqueeze(-1)
        return self.conv_out(lat).flatten(2).transpose(1, 2)  # (B, N, C)


class Decoder(_ViT):
    def __init__(self, cfg: TiTokConfig) -> None:
        super().__init__(cfg, cfg.dec_width, cfg.dec_depth, cfg.dec_heads)
        W, p = cfg.dec_width, cfg.patch
        self.patch, self.legacy = p, cfg.legacy
        self.decoder_embed = nn.Linear(cfg.token_size, W)
        self.mask_token = nn.Parameter(torch.empty(1, 1, W))
        if cfg.legacy:
            self.ffn = nn.Sequential(nn.Conv2d(W, 2 * W, 1), nn.Tanh(), nn.Conv2d(2 * W, cfg.proxy_codes, 1))
            self.conv_out = nn.Identity()
        else:
            self.ffn = nn.Sequential(nn.Conv2d(W, p * p * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens (B, k, C)`` → legacy: proxy-code logits ``(B, 1024, g, g)``; else pixels ``(B, 3, S, S)``."""
        B, k, _ = tokens.shape
        g, W = self.grid, self.width
        x = self.decoder_embed(tokens) + self.latent_token_positional_embedding[:k]
        grid = torch.cat([self.class_embedding.expand(B, 1, W), self.mask_token.expand(B, g * g, W)], 1)
        h = torch.cat([grid + self.positional_embedding, x], 1)  # (B, 1 + g² + k, W)
        pad = None
        if lengths is not None:
            drop = torch.arange(k, device=tokens.device)[None] >= lengths[:, None].to(tokens.device)  # (B, k)
            pad = torch.cat([drop.new_zeros(B, 1 + g * g), drop], 1)
        h = self.ln_post(self._run(h, pad)[:, 1:1 + g * g])  # (B, g², W)
        y = self.ffn(h.transpose(1, 2).reshape(B, W, g, g).contiguous())  # contiguous: the reference's conv kernel
        if self.legacy:
            return y
        p = self.patch  # pixel shuffle: channel (p1, p2, c) of cell (h, w) -> pixel (h·p + p1, w·p + p2) of channel c
        y = y.view(B, p, p, 3, g, g).permute(0, 3, 4, 1, 5, 2).reshape(B, 3, g * p, g * p)
        return self.conv_out(y)


class VectorQuantizer(nn.Module):
    """Nearest-code VQ over ``embedding.weight (K, C)``; with ``l2`` both sides are unit-normalised."""

    def __init__(self, size: int, dim: int, *, l2: bool, beta: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(size, dim)
        self.l2, self.beta, self.size = l2, beta, size

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (...)`` long → code vectors ``(..., C)`` (unit norm with ``l2``)."""
        q = self.embedding(ids)
        return F.normalize(q, dim=-1) if self.l2 else q

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z (B, N, C)`` → codes ``(B, N, C)`` (straight-through), ids ``(B, N)``, commitment + codebook loss."""
        B, N, C = z.shape
        z = z.float()
        flat, e = z.reshape(-1, C), self.embedding.weight
        if self.l2:
            flat, e, z = F.normalize(flat, dim=-1), F.normalize(e, dim=-1), F.normalize(z, dim=-1)
        # the same expression as the reference, so near-ties resolve identically
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * torch.einsum("bd,dn->bn", flat, e.T)
        ids = d.argmin(1).view(B, N)
        q = self.codes_from_ids(ids)
        loss = self.beta * (q.detach() - z).pow(2).mean() + (q - z.detach()).pow(2).mean()
        return z + (q - z).detach(), ids, loss


class TiTok(nn.Module):
    """The published TiTok / One-D-Piece network (see the module note). Same interface as ``Tokenizer1D``."""

    def __init__(self, cfg: TiTokConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.latent_tokens = nn.Parameter(torch.empty(cfg.max_tokens, cfg.enc_width))
        if cfg.quantizer == "vq":
            self.quantize = VectorQuantizer(cfg.vq_size, cfg.token_size, l2=cfg.use_l2_norm, beta=cfg.commitment_cost)
        if cfg.two_stage:
            self.pixel_quantize = PixelCodebook(cfg.proxy_codes, cfg.pixel_z_channels)
            self.pixel_decoder = PixelDecoder(z_channels=cfg.pixel_z_channels, hidden=cfg.pixel_hidden,
                                              channel_mult=cfg.pixel_channel_mult, res_blocks=cfg.pixel_res_blocks)
        if not any(p.is_meta for p in self.parameters()):
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference initialisation: trunc-normal(0.02) on linear/conv layers of the encoder and decoder,
        ``width^-0.5 · N(0, 1)`` for embeddings and latent tokens, ``U(±1/K)`` for the VQ codebook."""
        for m in (*self.encoder.modules(), *self.decoder.modules()):
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for vit in (self.encoder, self.decoder):
            for prm in (vit.class_embedding, vit.positional_embedding, vit.latent_token_positional_embedding):
                nn.init.normal_(prm, std=vit.width**-0.5)
        nn.init.normal_(self.decoder.mask_token, std=self.decoder.width**-0.5)
        nn.init.normal_(self.latent_tokens, std=self.encoder.width**-0.5)
        if self.cfg.quantizer == "vq":
            nn.init.uniform_(self.quantize.embedding.weight, -1 / self.cfg.vq_size, 1 / self.cfg.vq_size)

    @property
    def max_tokens(self) -> int:
        return self.cfg.max_tokens

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 3, S, S)`` in [0, 1] → unquantized encoder output ``(B, N, C)`` (VAE: mean ++ logvar)."""
        return self.encoder(images, self.latent_tokens)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``images (B, 3, S, S)`` → codes ``(B, N, C)``, ids ``(B, N)`` (zeros for VAE), quantizer/KL loss."""
        z = self.encode_latents(images)
        if self.cfg.quantizer == "vq":
            return self.quantize(z)
        mean, logvar = z.float().chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        ids = torch.zeros(z.shape[:2], dtype=torch.long, device=z.device)
        if not self.training:  # deterministic tokens: the posterior mean
            return mean, ids, mean.new_zeros(())
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum((1, 2)).mean()
        return mean + (0.5 * logvar).exp() * torch.randn_like(mean), ids, 1e-6 * kl  # reference kl_weight 1e-6

    def decode_logits(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Legacy head only: ``codes (B, k, C)`` → MaskGIT proxy-code logits ``(B, proxy_codes, g, g)``."""
        if not self.cfg.legacy:
            raise FormatError("this model's decoder predicts pixels, not proxy codes")
        return self.decoder(codes, lengths)

    def decode_codes(self, codes: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, k, C)``, k ≤ N → pixels ``(B, 3, S, S)`` (not clamped); ``lengths (B,)`` per-sample prefixes."""
        y = self.decoder(codes, lengths)
        if not self.cfg.legacy:
            return y
        if not self.cfg.two_stage:
            raise FormatError("a stage-1 checkpoint predicts MaskGIT proxy codes and has no pixel decoder; load the "
                             "stage-2 checkpoint (or merge the MaskGIT-VQGAN decoder weights into it)")
        return self.pixel_decoder(self.pixel_quantize.mix(y))

    def decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (B, k)`` long, 1 ≤ k ≤ N → pixels ``(B, 3, S, S)``."""
        return self.decode_codes(self.quantize.codes_from_ids(ids))

    def codebook(self) -> torch.Tensor:
        """``(K, C)``: row i is the code vector of id i (unit norm when the model uses l2-normalised VQ)."""
        if self.cfg.quantizer != "vq":
            raise FormatError("a VAE model has continuous tokens and no codebook")
        return self.quantize.codes_from_ids(torch.arange(self.cfg.vq_size, device=self.latent_tokens.device))
