"""Token-speed byte sampling (tokkit.bytelevel.token_sampling): the per-byte sampler's law, one LM call per token."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import reference_bytes as R
from tokkit.bytelevel import ByteLM, CallableLM
from tokkit.bytelevel.token_sampling import _single_check

MAX_LEN = 5
N = 1500


@pytest.fixture(scope="module", params=sorted(R.TOYS))
def toy(request, tmp_path_factory):
    tok, alphabet = R.toy_tokenizer(request.param, tmp_path_factory.mktemp(request.param))
    src = R.ByteSource(alphabet, MAX_LEN, seed=3)
    eos = tok.vocab.role_id("eos")
    return request.param, tok, src, eos, R.IdealLM(tok, src, eos)


def _chi2_ok(samples: Counter, truth: dict[bytes, float], n: int) -> tuple[float, float]:
    """Pearson chi-square of ``samples`` against ``truth`` (bins with expectation < 5 pooled) and the
    critical value at alpha = 1e-3 (Wilson-Hilferty)."""
    big = {s: p for s, p in truth.items() if p * n >= 5}
    obs = [samples.get(s, 0) for s in big] + [n - sum(samples.get(s, 0) for s in big)]
    exp = [p * n for p in big.values()] + [n * (1 - sum(big.values()))]
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp) if e > 1e-9)
    df = len(obs) - 1
    crit = df * (1 - 2 / (9 * df) + 3.09 * math.sqrt(2 / (9 * df))) ** 3
    return stat, crit


@pytest.mark.parametrize("prompt", ["", "a", "ab b"])
def test_token_sampler_follows_the_source_like_the_byte_sampler(toy, prompt):
    """On an ideal LM both samplers draw the source's continuation law; the token sampler makes one LM
    call per token after the prompt instead of one per byte."""
    name, tok, src, eos, ideal = toy
    x = prompt.encode()
    px = src.prefix.get(x, 0.0)
    if px == 0:
        pytest.skip(f"{prompt!r} has probability 0 in this source")
    truth = {s.encode()[len(x):]: p / px for s, p in src.prob.items() if s.encode().startswith(x)}
    lm = CallableLM(ideal, len(tok.vocab))
    blm = ByteLM(lm, tok, eos_ids=[eos])
    tokens = Counter(blm.generate(x, max_bytes=20, seed=s) for s in range(N))
    assert set(tokens) <= {s for s, p in truth.items() if p > 0}, "a sample the source never produces"
    stat, crit = _chi2_ok(tokens, truth, N)
    assert stat < crit, f"{name} {prompt!r}: token sampler chi2 {stat:.1f} >= {crit:.1f}"
    per_byte = Counter(blm.generate(x, max_bytes=20, seed=s, per_byte=True) for s in range(N // 3))
    stat_b, crit_b = _chi2_ok(per_byte, truth, N // 3)
    assert stat_b < crit_b, f"{name} {prompt!r}: per-byte sampler chi2 {stat_b:.1f} >= {crit_b:.1f}"


def test_one_lm_call_per_token(toy):
    name, tok, src, eos, ideal = toy
    calls = []

    def counted(ctx):
        calls.append(ctx)
        return ideal(ctx)

    blm = ByteLM(CallableLM(counted, len(tok.vocab)), tok, eos_ids=[eos])
    out = blm.generate(b"", max_bytes=50, seed=7)
    n_tok = len(tok.encode(out.decode())) if out else 0
    assert len(set(calls)) <= n_tok + 2  # the boundary (empty prompt: one context) plus one per drawn token


def test_single_token_check_equals_the_mask(toy):
    """The rejection oracle answers exactly what the validity mask says, for every token after many contexts."""
    name, tok, src, eos, ideal = toy
    blm = ByteLM(CallableLM(ideal, len(tok.vocab)), tok, eos_ids=[eos])
    check = _single_check(blm.canon)
    if check is None:
        pytest.skip(f"{type(blm.canon).__name__} masks the vocabulary itself")
    seqs = {()}
    for s in list(src.prob)[::5]:
        ids = tuple(tok.encode(s))
        seqs |= {ids[:j] for j in range(len(ids) + 1)}
    n = 0
    for seq in sorted(seqs):
        mask = blm.canon.extend_mask(seq)
        for j, t in enumerate(blm.table.ordinary.tolist()):
            assert check(seq, t) == bool(mask[j]), f"{name}: seq {seq} token {t}"
            n += 1
    assert n > 100


def test_leaky_lm_first_byte_is_exact(toy):
    """With an LM that leaks mass to non-canonical tokens (struck out by rejection), the first byte still
    follows the per-byte next-byte distribution exactly (it is drawn from the prompt's covers)."""
    name, tok, src, eos, ideal = toy
    blm = ByteLM(CallableLM(R.LeakyLM(ideal, eps=0.3), len(tok.vocab)), tok, eos_ids=[eos])
    p = np.exp(blm.next_byte_logprobs(b""))
    truth = {bytes([b]): float(p[b]) for b in range(256) if p[b] > 0}
    truth[b""] = float(p[256])
    outs = [blm.generate(b"", max_bytes=4, seed=s) for s in range(N)]
    assert all(len(o) <= 4 for o in outs)
    stat, crit = _chi2_ok(Counter(o[:1] for o in outs), truth, N)
    assert stat < crit, f"{name}: first byte chi2 {stat:.1f} >= {crit:.1f}"
