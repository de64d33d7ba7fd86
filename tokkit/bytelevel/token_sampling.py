"""Byte-level sampling at token speed: past the prompt boundary, draw whole tokens.

The per-byte sampler (:meth:`tokkit.bytelevel.ByteModel.generate`) pays one LM call per byte. But
the canonical byte-level distribution after a prompt ``x`` is a mixture over the prompt's *covers*
(Phan et al., arXiv 2410.09303, §BTR): ``P(x·y…) ∝ Σ_{τ ∈ cover(x)} Q(τ) · Q(rest | τ)``. So one
draw of a cover ``τ`` with probability ``Q(τ) / Σ Q`` — it fixes the token that straddles the
prompt's end, the only place where the tokenization is uncertain — followed by ordinary token
sampling from ``τ`` restricted to canonical continuations, draws from the same distribution:

1. **Boundary** (per-byte machinery, once): :meth:`ByteLM.state` gives the covers of the prompt as
   groups of partial last tokens with their log ``Q``, plus the end-of-text mass of the prompt's
   canonical encoding; draw one of them (or end-of-text).
2. **Tokens** (one LM call per token): at ``τ``, draw ``t`` from ``q(·|τ)`` over the ordinary tokens
   with ``valid(τ·t)`` (the extendable-prefix oracle of :mod:`tokkit.bytelevel.canon`) and the
   end-of-text tokens, renormalised; end-of-text drawn at a ``τ`` that is not the canonical encoding
   of its text is rejected and redrawn without it (rejection = renormalisation, exact).

Exactness: when the LM puts no mass on non-canonical sequences (an ideal LM), every restriction is
a no-op and the samples follow exactly the distribution of the per-byte sampler
(``tests/test_bytelevel_token_sampling.py`` checks both against the known source on toy LMs). A
real LM leaks a little mass; the per-byte sampler renormalises it away byte by byte (``log Z_n``),
this sampler token by token, so the two differ by at most that leak. Temperature ≠ 1 rescales byte
probabilities in the per-byte sampler, which token draws cannot reproduce: use the per-byte path
then (``ByteLM.generate`` does). FIM, ``complete`` and ensembles keep the per-byte path.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from tokkit.bytelevel.table import EOS, logsumexp

__all__ = ["sample_tokens", "iter_token_bytes"]


def _draw(logw: np.ndarray, rng: np.random.Generator) -> int:
    """Index drawn with probability ∝ exp(logw) (one uniform, inverse CDF)."""
    p = np.exp(logw - logw.max())
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(c) - 1))


def _boundary(st: Any, rng: np.random.Generator) -> tuple[tuple[int, ...], bytes] | None:
    """Draw a cover of the prompt state ``st`` (None: end-of-text): its tokens and the bytes it adds."""
    nb = st.next_byte()  # expands the exact sequences: every cover is now a group of partial last tokens
    if not np.isfinite(nb.log_z):
        return None
    total = nb.log_z + nb.log_prefix
    stop = nb.logprobs[EOS] + total
    sizes = [g.ids.size for g in st.groups]
    logw = np.concatenate([g.logq for g in st.groups] + [np.array([stop])])
    j = _draw(logw, rng)
    if j == len(logw) - 1:
        return None
    for g, n in zip(st.groups, sizes):
        if j < n:
            t = int(g.ids[j])
            return g.head + (t,), st.table.token(t)[g.k:]
        j -= n
    raise AssertionError("unreachable")


def _single_check(canon: Any) -> Callable[[tuple[int, ...], int], bool] | None:
    """``valid(seq·t)`` for one token, by the window re-encode rule of :class:`ReencodeCanon` (the
    rule :class:`BPECanon`'s masks reproduce), or None when the oracle decides validity otherwise."""
    from tokkit.bytelevel.canon import _WS, ReencodeCanon

    if not isinstance(canon, ReencodeCanon) or type(canon).extend_mask is not ReencodeCanon.extend_mask:
        return None
    tab = canon.table
    row = {int(t): j for j, t in enumerate(tab.ordinary)}

    def valid(seq: tuple[int, ...], t: int) -> bool:
        head = tuple(seq[canon._window_start(seq):])
        wbytes = tab.decode(head)
        tb = tab.token(t)
        if canon.space_stable and wbytes and wbytes[-1] not in _WS and tb[:1] == b" ":
            return bool(canon.first_ok()[row[t]]) and canon._complete(head, wbytes)
        return bool(canon._check([head], [wbytes + tb], np.array([t]))[0])

    return valid


def sample_tokens(blm: Any, prompt: bytes, *, max_bytes: int, seed: int | None = 0,
                  stop: Callable[[bytes], bool] | None = None) -> bytes:
    """Sample up to ``max_bytes`` bytes after ``prompt`` from ``blm`` (a canonical-target ``ByteLM``),
    one LM call per token after the prompt. Stops at end-of-text, ``max_bytes`` or ``stop(out)``.

    Each token is drawn from ``q(·|τ)`` over the ordinary and end-of-text ids; a draw that is not a
    valid continuation is struck out and drawn again (rejection: the same law as renormalising over
    the valid set, without computing the whole validity mask — the LM rarely proposes one).
    """
    out = bytearray()
    if max_bytes <= 0:
        return b""
    for b in iter_token_bytes(blm, prompt, seed=seed):  # lazy: no LM call past the last byte taken
        out.append(b)
        if len(out) >= max_bytes or (stop is not None and stop(bytes(out))):
            break
    return bytes(out)


def iter_token_bytes(blm: Any, prompt: bytes, *, seed: int | None = 0) -> Iterator[int]:
    """The bytes :func:`sample_tokens` draws, one at a time as each token is drawn, until end-of-text
    (the caller stops taking them to cut the sample short)."""
    rng = np.random.default_rng(seed)
    st = blm.state(prompt)
    first = _boundary(st, rng)
    if first is None:
        return
    seq, piece = first
    table, canon, lm = blm.table, blm.canon, blm.lm
    eos = set(int(i) for i in blm.eos_ids)
    support = np.zeros(len(table), dtype=bool)
    support[table.ordinary] = True
    support[list(eos)] = True
    check = _single_check(canon)
    rows = None if check is not None else table.ordinary
    full = bytes(st.stream)  # the prompt stream; extended with every piece drawn
    while True:
        yield from piece  # byte by byte, so a caller's max_bytes / stop cut where the per-byte path would
        full += piece
        logw = np.where(support, lm.next_logprobs(seq), -np.inf)
        if rows is not None:  # an oracle without a one-token check: mask the whole vocabulary
            logw[rows[~canon.extend_mask(seq)]] = -np.inf
        while True:
            if not np.isfinite(logw.max()):
                return
            t = _draw(logw, rng)
            if t in eos:  # end-of-text only after the canonical encoding of the text
                if canon.encode(full) == tuple(seq):
                    return
                logw[list(eos)] = -np.inf
            elif check is None or check(seq, t):
                break
            else:
                logw[t] = -np.inf
        seq = seq + (t,)
        piece = table.token(t)
