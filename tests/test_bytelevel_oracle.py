"""Independent oracle: next-byte distributions by brute-force enumeration of tokenizations.

Nothing of tokkit.bytelevel is used on the oracle side: covers are enumerated from the token byte
strings, canonicality comes from the real HF ``tokenizers`` encoder (``τ`` is valid iff it is a
prefix of ``enc(dec(τ)·w)`` for some ``w`` of up to two characters of the alphabet — the extendable-prefix
definition, which the GPT-2-regex toy needs because its look-ahead breaks prefix closure), and the
LM is a seeded random bigram model with mass on every token (so the two targets differ).

For a stream ``x`` (SentencePiece toys: the dummy space + text) and each byte ``b``,
``P(x·b) = Σ_{τ ∈ cover(x·b)} Q(τ)`` over valid ``τ`` (canonical) or all ``τ`` (all tokenizations);
end-of-text is ``Q(enc(x)·EOS)`` (canonical) or ``Σ_{dec τ = x} Q(τ·EOS)`` (all). The engine must
match the normalised vector to 1e-9 on random short texts (hypothesis).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_bytes as R
from multilingual_toys import BigramLM
from tokkit.bytelevel import ByteLM

TOL = 1e-9


class Oracle:
    def __init__(self, tok, alphabet: str, lm: BigramLM, eos: int) -> None:
        self.tok, self.lm, self.eos = tok, lm, eos
        v = tok.vocab
        skip = v.special_ids | v.unused_ids
        self.tokens = {i: t for i, t in enumerate(v.tokens) if i not in skip and t}
        self.lead = b" " if v.strip_leading_space else b""
        self.probes = [""] + ["".join(p) for n in (1, 2) for p in itertools.product(alphabet, repeat=n)]

    def enc(self, text: str) -> tuple[int, ...]:
        return tuple(self.tok.encode(text))

    @functools.lru_cache(maxsize=None)
    def valid(self, tau: tuple[int, ...]) -> bool:
        raw = b"".join(self.tokens[i] for i in tau)
        if not raw.startswith(self.lead):
            return False
        raw = _complete_utf8(raw[len(self.lead):])  # fallback bytes of an unfinished character: finish it
        if raw is None:
            return False
        return any(self.enc(raw.decode("utf-8") + w)[: len(tau)] == tau for w in self.probes)

    @functools.lru_cache(maxsize=None)
    def exact(self, x: bytes) -> tuple[tuple[int, ...], ...]:
        """Every token sequence whose bytes are exactly ``x``."""
        if not x:
            return ((),)
        out = []
        for i, t in self.tokens.items():
            if x.endswith(t):
                out += [h + (i,) for h in self.exact(x[: len(x) - len(t)])]
        return tuple(out)

    def logq(self, tau) -> float:
        return self.lm.seq_logprob(tau)

    def prefix_mass(self, y: bytes, target: str) -> float:
        """log Σ Q(τ) over the cover of ``y``: heads tokenize ``y[:i]`` exactly, the last token starts with ``y[i:]``."""
        terms = []
        for i in range(len(y)):
            rest = y[i:]
            last = [t for t, b in self.tokens.items() if b.startswith(rest)]
            for h in self.exact(y[:i]):
                for t in last:
                    tau = h + (t,)
                    if target == "all" or self.valid(tau):
                        terms.append(self.logq(tau))
        return float(np.logaddexp.reduce(terms)) if terms else -np.inf

    def next_byte(self, text: str, target: str) -> np.ndarray:
        x = self.lead + text.encode()
        m = np.array([self.prefix_mass(x + bytes([b]), target) for b in range(256)] + [-np.inf])
        if target == "canonical":
            m[256] = self.lm.seq_logprob(self.enc(text), self.eos)
        else:
            ends = [self.lm.seq_logprob(tau, self.eos) for tau in self.exact(x)]
            m[256] = np.logaddexp.reduce(ends) if ends else -np.inf
        return m - np.logaddexp.reduce(m)


def _complete_utf8(raw: bytes) -> bytes | None:
    """``raw`` with its unfinished last character finished by the smallest valid continuation bytes
    (any character outside the toy alphabets is spelled by fallback bytes); None if ``raw`` is not
    a prefix of valid UTF-8."""
    while True:
        try:
            raw.decode("utf-8")
            return raw
        except UnicodeDecodeError as e:
            if e.reason != "unexpected end of data":
                return None
        for c in range(0x80, 0xC0):
            try:
                (raw + bytes([c])).decode("utf-8")
            except UnicodeDecodeError as e:
                if e.reason != "unexpected end of data":
                    continue
            raw += bytes([c])
            break
        else:
            return None


@functools.lru_cache(maxsize=None)
def _toy(name: str):
    import tempfile
    from pathlib import Path

    tok, alphabet = R.toy_tokenizer(name, Path(tempfile.mkdtemp()))
    return tok, alphabet


@pytest.mark.parametrize("target", ["canonical", "all"])
@pytest.mark.parametrize("name", sorted(R.TOYS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_engine_equals_brute_force(name, target, data):
    tok, alphabet = _toy(name)
    text = data.draw(st.text(alphabet=alphabet, max_size=4 if name == "spm" else 5), label="text")
    seed = data.draw(st.integers(0, 5), label="seed")
    lm = BigramLM(len(tok.vocab), seed=seed, scale=1.5)
    eos = tok.vocab.role_id("eos")
    oracle = Oracle(tok, alphabet, lm, eos)
    blm = ByteLM(lm, tok, eos_ids=[eos], target=target)
    want = oracle.next_byte(text, target)
    got = blm.next_byte_logprobs(text)
    assert np.array_equal(np.isfinite(got), np.isfinite(want)), f"{name}/{target} {text!r}: support differs"
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], atol=TOL, rtol=0, err_msg=f"{name}/{target} {text!r}")


def test_targets_differ_on_this_lm():
    """Guards a vacuous oracle test: with mass on non-canonical sequences the two targets disagree."""
    tok, alphabet = _toy("bpe")
    lm = BigramLM(len(tok.vocab), seed=0, scale=1.5)
    oracle = Oracle(tok, alphabet, lm, tok.vocab.role_id("eos"))
    a, c = np.exp(oracle.next_byte("ab a", "all")), np.exp(oracle.next_byte("ab a", "canonical"))
    assert 0.5 * np.abs(a - c).sum() > 0.01
