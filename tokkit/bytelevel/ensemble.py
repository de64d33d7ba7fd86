"""Ensembles of byte-level LMs whose tokenizers differ: one exact event space (256 bytes + end).

Byte-level distributions of models with different vocabularies live on the same 257 outcomes, so
they combine without any vocabulary alignment (Phan et al., arXiv 2410.09303, §5; ByteSampler's
``mix``/``product`` modes, Hayase et al., arXiv 2506.14123). Three rules, with weights ``w_m``:

* ``"mixture"``: ``p(b) = Σ_m w_m p_m(b)`` at every byte (per-step averaging, Phan et al.).
* ``"product"``: ``p(b) ∝ Π_m p_m(b)^{w_m}`` (product of experts).
* ``"bayes"``: the exact *sequence* mixture ``P(x) = Σ_m w_m P_m(x)``: next-byte probabilities are
  averaged with posterior weights ``w_m P_m(x) / Σ_k w_k P_k(x)`` updated after every byte, which
  byte-level exact probabilities make possible (reference note §7).

Every member is advanced on every byte (one LM call per byte per member).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from tokkit.bytelevel.bytelm import ByteModel
from tokkit.bytelevel.engine import NextByte
from tokkit.bytelevel.table import logsumexp
from tokkit.errors import NonFiniteError, TokkitError

__all__ = ["ByteEnsemble", "Mode", "EnsembleState", "member_weights"]

Mode = Literal["mixture", "product", "bayes"]


def member_weights(weights: Sequence[float] | None, count: int, *, name: str = "weights") -> np.ndarray:
    """``weights`` (one per member; equal when None) as float64 summing to 1.

    Refuses a wrong count, a NaN or infinite weight (:class:`~tokkit.errors.NonFiniteError`), a negative one and
    all zeros; ``name`` is how the message calls them (``--weights`` in the CLI).
    """
    if weights is None:
        return np.full(count, 1.0 / count)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TokkitError(f"{name}: expected {count} numbers (one per model), found {weights!r}") from None
    shown, example = ",".join(f"{x:g}" for x in w.ravel()), ",".join(["1"] * count)
    if w.shape != (count,):
        raise TokkitError(f"{name}: expected {count} non-negative weights with a positive sum (one per model), found "
                          f"{w.size} ({shown}); pass one weight per model, e.g. {example}")
    if not np.isfinite(w).all():
        raise NonFiniteError(f"{name}: expected {count} finite, non-negative weights with a positive sum, found {shown}; "
                             f"pass finite numbers, e.g. {example}")
    if (w < 0).any() or not (w > 0).any():
        raise TokkitError(f"{name}: expected {count} non-negative weights with a positive sum, found {shown}; "
                          f"pass e.g. {example} (a weight of 0 leaves a model out)")
    w = w / w.max()  # no overflow in the sum of huge finite weights
    return w / w.sum()


class EnsembleState:
    """The members' states plus the running log-posterior of each member (``bayes`` mode)."""

    def __init__(self, members: list, log_w: np.ndarray, mode: Mode) -> None:
        self.members = members
        self.log_w = log_w.copy()
        self.log_post = log_w.copy()
        self.mode = mode
        self._next: NextByte | None = None

    def mass(self) -> float:
        return 0.0

    def member_next(self) -> np.ndarray:
        """(M, 257) next-byte log-probabilities of each member."""
        return np.stack([m.next_byte().logprobs for m in self.members])

    def next_byte(self) -> NextByte:
        if self._next is not None:
            return self._next
        lp = self.member_next()  # (M, 257)
        if self.mode == "product":
            finite = np.isfinite(self.log_w)  # a zero weight removes the member, including its zeros
            with np.errstate(invalid="ignore"):
                z = np.where(finite[:, None], np.exp(self.log_w)[:, None] * lp, 0.0).sum(0)
            z = np.where(np.isnan(z), -np.inf, z)
        else:
            w = self.log_post if self.mode == "bayes" else self.log_w
            z = np.logaddexp.reduce(w[:, None] + lp, axis=0)
        total = logsumexp(z)
        self._next = NextByte(z - total, 0.0, 0.0)
        return self._next

    def push(self, b: int) -> None:
        lp = self.member_next()[:, b]
        if self.mode == "bayes":
            post = self.log_post + lp
            self.log_post = post - logsumexp(post)
        for m in self.members:
            m.push(b)
        self._next = None


class ByteEnsemble(ByteModel):
    """Combine byte models (e.g. ``ByteLM``s with different tokenizers) into one byte model.

    Args:
        models: the members.
        weights: finite and non-negative with a positive sum, one per member (normalised; default equal).
        mode: ``"mixture"``, ``"product"`` or ``"bayes"`` (see module doc).

    Example:
        >>> ens = ByteEnsemble([ByteLM.from_pretrained("smollm2"), ByteLM.from_pretrained("gemma3")],
        ...                    mode="bayes")                                                   # doctest: +SKIP
        >>> ens.score(text).bits_per_byte                                                       # doctest: +SKIP
    """

    def __init__(self, models: Sequence[ByteModel], *, weights: Sequence[float] | None = None,
                 mode: Mode = "mixture") -> None:
        if not models:
            raise TokkitError("an ensemble needs at least one model; pass models=[...]")
        if mode not in ("mixture", "product", "bayes"):
            raise TokkitError(f"mode must be 'mixture', 'product' or 'bayes', found {mode!r}")
        w = member_weights(weights, len(models))
        self.models = list(models)
        self.mode: Mode = mode
        with np.errstate(divide="ignore"):
            self.log_w = np.log(w)

    def state(self, prefix: str | bytes = b"") -> EnsembleState:
        st = EnsembleState([m.state(prefix) for m in self.models], self.log_w, self.mode)
        if self.mode == "bayes" and prefix:
            # posterior after the prompt: w_m P_m(prefix); members' prompt masses are P̃_m(lead + prefix)
            # relative to their own lead, so score the prompt bytes explicitly
            post = self.log_w + np.array([m.logprob(prefix) for m in self.models])
            st.log_post = post - logsumexp(post)
        return st
