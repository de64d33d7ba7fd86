"""Losses of ``tokkit heal``: token and chunk log-likelihoods, ALM's binarised f-divergence, next-token loss.

ALM (approximate likelihood matching; Minixhofer, Vulić, Ponti 2025, arXiv:2503.20083, code
``bminixhofer/tokenkit`` ``training/losses.py``): for every chunk on which teacher and student
tokenizations agree (:mod:`tokkit.transplant.heal.chunks`), compare the chunk log-likelihoods
``a`` (teacher) and ``b`` (student) through a *binarised* f-divergence: the binary cross-entropy
between Bernoulli(``exp(a/τ)``) and Bernoulli(``exp(b/τ)``), τ = 100 (tokenkit's
``binarization_temp``), which needs no enumeration of the other outcomes. Followed: chunk
log-probabilities as sums of realised-token log-probabilities clipped at 0, ``ε = 1e-6`` inside the
exponent, a stable ``log(1 - e^x)``, the mean over chunks. Simplified: tokenkit's default
``merge_by_space_prob+append_space`` debiasing is not done (chunks are tokenkit's
``unconstrained`` mode), and the latent (hidden-state) loss is not used.

``alm+lm`` adds the next-token loss. tokenkit balances several losses by their gradient magnitude
at the last layer (``approx_gradmag_preserve_mag``); here both are balanced by the norm of their
gradient with respect to the student's logits (one cheap extra backward through ``log_softmax``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["token_logprobs", "chunk_logprobs", "log1mexp", "binarised_bce", "alm_loss", "lm_loss", "balanced_sum"]

EPS = 1e-6


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(target_t | x_<t)``: logits ``(N, V)``, targets ``(N,)`` long -> ``(N,)`` float32."""
    logits = logits.float()
    return logits.gather(1, targets[:, None])[:, 0] - logits.logsumexp(-1)


def chunk_logprobs(token_lp: torch.Tensor, chunk_index: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """Sum token log-probs ``(N,)`` into chunks: ``chunk_index (N,)`` long in ``0..n_chunks-1`` -> ``(n_chunks,)``.

    Clipped at 0 (a sum of log-probabilities is ≤ 0 up to rounding; tokenkit clips too).
    """
    out = token_lp.new_zeros(n_chunks).index_add(0, chunk_index, token_lp)
    return out.clamp(max=0.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable near 0 and for very negative ``x`` (Mächler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def binarised_bce(a: torch.Tensor, b: torch.Tensor, *, tau: float) -> torch.Tensor:
    """Per-chunk BCE between Bernoulli(``exp(a/τ)``) (target) and Bernoulli(``exp(b/τ)``) (prediction).

    ``a, b (C,)``: teacher / student chunk log-probs (≤ 0). Returns ``(C,)``. For fixed ``a`` it is
    smallest at ``b = a`` (where it equals the entropy of Bernoulli(``exp(a/τ)``)).
    """
    a1 = a / tau - EPS
    b1 = b / tau - EPS
    pa = a1.exp()
    return -(pa * b1 + (1.0 - pa) * log1mexp(b1))


def alm_loss(teacher_chunk_lp: torch.Tensor, student_chunk_lp: torch.Tensor, *, tau: float) -> torch.Tensor:
    """Mean binarised BCE over chunks; the teacher side carries no gradient. ``(C,), (C,)`` -> scalar."""
    if student_chunk_lp.numel() == 0:
        return student_chunk_lp.sum()
    return binarised_bce(teacher_chunk_lp.detach(), student_chunk_lp, tau=tau).mean()


def lm_loss(token_lp: torch.Tensor) -> torch.Tensor:
    """Mean next-token negative log-likelihood of the realised tokens ``(N,)`` -> scalar."""
    return -token_lp.mean() if token_lp.numel() else token_lp.sum()


def balanced_sum(losses: dict[str, torch.Tensor], logits: torch.Tensor, *,
                 weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """``Σ w_i L_i`` with ``w_i = mean_j g_j / g_i · weights[i]``, ``g_i = ‖∂L_i/∂logits‖``.

    Every term pulls the student's logits with the same force (times its user weight), so neither
    the ALM term (gradients ~1/τ) nor the next-token term drowns the other; the total stays on the
    scale of the mean gradient. ``logits`` must be part of every loss's graph.
    """
    weights = weights or {}
    norms = {}
    for k, v in losses.items():
        (g,) = torch.autograd.grad(v, logits, retain_graph=True)
        norms[k] = float(g.float().norm())
    mean = sum(norms.values()) / len(norms)
    scale = {k: (mean / n if n > 0 else 0.0) * weights.get(k, 1.0) for k, n in norms.items()}
    total = sum(scale[k] * losses[k] for k in losses)
    return total, scale  # type: ignore[return-value]
