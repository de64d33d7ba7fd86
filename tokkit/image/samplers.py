"""Training-time length samplers: which leading tokens the decoder sees.

* ``tail_batch`` — One-D-Piece *Tail Token Drop* (arXiv:2501.10064, ``modeling/one_d_piece.py``): one
  ``k ~ U{1..N}`` per batch, the tail is sliced off.
* ``nested_uniform`` / ``nested_pow2`` — FlexTok *nested dropout* (arXiv:2502.13967,
  ``preprocessors/token_dropout.py``): a k per sample, uniform or uniform over powers of two; the tail is
  masked out of the decoder's attention keys.
* ``nested_mix`` — per sample, k = N with probability ``p_full`` else ``U{1..N}``: uniform drop decodes the
  j-th token in only (N-j+1)/N of steps and its late tokens stop learning (reference §7.3, run O).
* ``nested_dual`` — every sample is decoded twice, once with all N tokens and once with ``k ~ U{1..N-1}``
  (a Matryoshka-style sum of the full-length and a prefix loss; twice the decoder cost per step): the
  full-length path gets the same signal as a fixed-length model. ``lengths`` then has ``2B`` entries and
  the caller repeats the batch.
* ``none`` — fixed length N (plain TiTok), the contrast.
"""

from __future__ import annotations

import torch

from tokkit.image.config import LengthSampler

__all__ = ["sample_lengths", "sampler_at"]


def sampler_at(step: int, *, kind: LengthSampler, steps: int, full_final: float) -> LengthSampler:
    """The sampler for 0-based ``step``: ``none`` (k = N) in the last ``round(full_final * steps)`` steps."""
    return LengthSampler.NONE if step >= steps - round(full_final * steps) else kind


def sample_lengths(kind: LengthSampler, *, batch: int, n: int, p_full: float, generator: torch.Generator,
                   ) -> tuple[int, torch.Tensor | None]:
    """Returns ``(k_slice, lengths)``: decode ``codes[:, :k_slice]`` with per-sample ``lengths (B,)`` or None.

    For ``nested_dual`` ``lengths`` is ``(2B,)``: the first B are N, the last B are ``U{1..N-1}`` (N if N == 1).
    """
    if kind is LengthSampler.NONE:
        return n, None
    if kind is LengthSampler.TAIL_BATCH:
        return int(torch.randint(1, n + 1, (1,), generator=generator)), None
    if kind is LengthSampler.NESTED_UNIFORM:
        lengths = torch.randint(1, n + 1, (batch,), generator=generator)
    elif kind is LengthSampler.NESTED_DUAL:
        short = torch.randint(1, max(2, n), (batch,), generator=generator).clamp(max=n)
        lengths = torch.cat([torch.full_like(short, n), short])
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
