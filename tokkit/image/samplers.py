"""Training-time length samplers: which leading tokens the decoder sees.

* ``tail_batch`` — One-D-Piece *Tail Token Drop* (arXiv:2501.10064, ``modeling/one_d_piece.py``): one
  ``k ~ U{1..N}`` per batch, the tail is sliced off.
* ``nested_uniform`` / ``nested_pow2`` — FlexTok *nested dropout* (arXiv:2502.13967,
  ``preprocessors/token_dropout.py``): a k per sample, uniform or uniform over powers of two; the tail is
  masked out of the decoder's attention keys.
* ``nested_mix`` — per sample, k = N with probability ``p_full`` else ``U{1..N}``: uniform drop decodes the
  j-th token in only (N-j+1)/N of steps and its late tokens stop learning (reference §7.3, run O).
* ``none`` — fixed length N (plain TiTok), the contrast.
"""

from __future__ import annotations

import torch

from tokkit.image.config import LengthSampler

__all__ = ["sample_lengths"]


def sample_lengths(kind: LengthSampler, *, batch: int, n: int, p_full: float, generator: torch.Generator,
                   ) -> tuple[int, torch.Tensor | None]:
    """Returns ``(k_slice, lengths)``: decode ``codes[:, :k_slice]`` with per-sample ``lengths (B,)`` or None."""
    if kind is LengthSampler.NONE:
        return n, None
    if kind is LengthSampler.TAIL_BATCH:
        return int(torch.randint(1, n + 1, (1,), generator=generator)), None
    if kind is LengthSampler.NESTED_UNIFORM:
        lengths = torch.randint(1, n + 1, (batch,), generator=generator)
    elif kind is LengthSampler.NESTED_POW2:
        pows = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
        if pows[-1] != n:
            pows.append(n)
        lengths = torch.tensor(pows)[torch.randint(0, len(pows), (batch,), generator=generator)]
    else:  # NESTED_MIX
        lengths = torch.randint(1, n + 1, (batch,), generator=generator)
        full = torch.rand(batch, generator=generator) < p_full
        lengths = torch.where(full, torch.full_like(lengths, n), lengths)
    return int(lengths.max()), lengths
