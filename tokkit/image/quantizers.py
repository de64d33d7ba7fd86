"""Quantizers for 1D image tokens: FSQ and cosine VQ with dead-code restart.

* :class:`FSQ` — finite scalar quantisation (Mentzer et al., arXiv:2309.15505), as FlexTok uses it
  (apple/ml-flextok ``regularizers/quantize_fsq.py``): bound each of ``len(levels)`` channels with tanh,
  round with a straight-through estimator, index = mixed-radix number of the per-channel codes. No
  codebook parameters, so it cannot collapse; ``prod(levels)`` codes.
* :class:`CosineVQ` — l2-normalised VQ (TiTok, arXiv:2406.07550) through the maintained
  ``vector_quantize_pytorch.VectorQuantize`` with ``use_cosine_sim``, k-means init and EMA dead-code
  restart (the plain l2-VQ collapsed to 31/1024 codes on CPU, reference §7.3).

Both map latents ``(B, N, dim)`` to ``(codes (B, N, dim), ids (B, N) long, aux_loss scalar)`` and back
from ids with :meth:`codes_from_ids`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FSQ", "CosineVQ", "build_quantizer"]


class FSQ(nn.Module):
    """Finite scalar quantizer with ``levels`` per channel; ``dim = len(levels)``."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", lv, persistent=False)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), lv[:-1]]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.dim = len(levels)
        self.size = int(math.prod(levels))

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        # Odd levels: tanh * (L-1)/2 rounds to {-(L-1)/2..(L-1)/2}; even levels get a half-step offset.
        lv = self.levels.to(z.dtype)
        half_l = (lv - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z (B, N, dim)`` -> codes in [-1, 1] ``(B, N, dim)``, ids ``(B, N)``, aux loss 0."""
        zf = z.float()
        bounded = self._bound(zf)
        rounded = bounded + (bounded.round() - bounded).detach()  # straight-through
        half_w = (self.levels // 2).to(zf.dtype)
        codes = rounded / half_w
        ids = self._ids(rounded.detach())
        return codes.to(z.dtype), ids, zf.new_zeros(())

    def _ids(self, rounded: torch.Tensor) -> torch.Tensor:
        half_w = self.levels // 2
        digits = rounded.round().long() + half_w  # 0..L-1 per channel
        return (digits * self.basis).sum(-1)

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids (...)`` long -> codes ``(..., dim)`` float in [-1, 1]."""
        digits = (ids.unsqueeze(-1) // self.basis) % self.levels
        half_w = self.levels // 2
        return (digits - half_w).float() / half_w.float()

    def codebook(self) -> torch.Tensor:
        """All codes ``(size, dim)``: row i is the code of id i."""
        return self.codes_from_ids(torch.arange(self.size, device=self.basis.device))


class CosineVQ(nn.Module):
    """l2-normalised VQ via ``vector_quantize_pytorch`` (optional extra ``tokkit[image]``)."""

    def __init__(self, *, size: int, dim: int, dead_code_threshold: float = 2.0) -> None:
        super().__init__()
        try:
            from vector_quantize_pytorch import VectorQuantize
        except ImportError as e:  # pragma: no cover - depends on the environment
            from tokkit.errors import MissingFileError

            raise MissingFileError(
                "quantizer 'vq' needs the package vector-quantize-pytorch; install it with pip install 'tokkit[image]' "
                "(after torch), or use quantizer 'fsq'") from e
        self.vq = VectorQuantize(dim=dim, codebook_size=size, use_cosine_sim=True, kmeans_init=True, kmeans_iters=10,
                                 threshold_ema_dead_code=dead_code_threshold, decay=0.9, commitment_weight=0.25)
        self.dim = dim
        self.size = size

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z (B, N, dim)`` -> unit-norm codes ``(B, N, dim)``, ids ``(B, N)``, commitment loss."""
        codes, ids, loss = self.vq(z.float())
        return codes.to(z.dtype), ids.long(), loss.reshape(()).float()

    def codebook(self) -> torch.Tensor:
        cb = self.vq.codebook  # (size, dim), already l2-normalised for cosine VQ
        return torch.nn.functional.normalize(cb.detach().float(), dim=-1)

    def codes_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.codebook().to(ids.device)[ids]


def build_quantizer(kind: str, *, levels: tuple[int, ...], size: int, dim: int) -> FSQ | CosineVQ:
    """``kind`` is 'fsq' (uses ``levels``) or 'vq' (uses ``size`` codes of ``dim`` dims)."""
    if kind == "fsq":
        return FSQ(tuple(levels))
    return CosineVQ(size=size, dim=dim)
