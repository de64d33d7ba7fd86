"""Byte-level ensembles across vocabularies: degeneracies, cross-tokenizer agreement, the Bayes rule."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import reference_bytes as R
from tokkit.bytelevel import ByteEnsemble, ByteLM

TOL = 1e-9
DATA = Path(__file__).resolve().parents[1] / "data" / "moby_dick_excerpt.txt"


def _toy(name, tmp, seed):
    tok, alphabet = R.toy_tokenizer(name, tmp)
    src = R.ByteSource("ab ", 5, seed=seed)
    eos = tok.vocab.role_id("eos")
    return ByteLM(R.IdealLM(tok, src, eos), tok, eos_ids=[eos]), src


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ens")
    a, src = _toy("bpe", tmp, 11)
    b, _ = _toy("bpe_regex", tmp, 11)  # same source, different tokenizer
    c, src_c = _toy("bpe_regex", tmp, 12)  # a different source
    return a, b, c, src, src_c


PREFIXES = [b"", b"a", b"ab ", b"b  a", b" ba"]


@pytest.mark.parametrize("mode", ["mixture", "product", "bayes"])
def test_degenerate_ensembles_equal_the_model(toys, mode):
    a, b, c, src, _ = toys
    for x in PREFIXES:
        want = a.next_byte_logprobs(x)
        np.testing.assert_allclose(ByteEnsemble([a], mode=mode).next_byte_logprobs(x), want, atol=TOL)
        np.testing.assert_allclose(ByteEnsemble([a, c], weights=[1, 0], mode=mode).next_byte_logprobs(x), want, atol=TOL)


@pytest.mark.parametrize("mode", ["mixture", "product", "bayes"])
def test_same_source_different_tokenizers_agree(toys, mode):
    """Two ideal LMs of one byte source with different tokenizers give identical byte distributions,
    so any ensemble of them is the source itself."""
    a, b, c, src, _ = toys
    ens = ByteEnsemble([a, b], weights=[0.3, 0.7], mode=mode)
    for x in PREFIXES:
        np.testing.assert_allclose(np.exp(a.next_byte_logprobs(x)), np.exp(b.next_byte_logprobs(x)), atol=TOL)
        np.testing.assert_allclose(np.exp(ens.next_byte_logprobs(x)), src.next_byte(x), atol=TOL)


def test_mixture_and_product_rules(toys):
    a, b, c, src, _ = toys
    for x in PREFIXES:
        pa, pc = np.exp(a.next_byte_logprobs(x)), np.exp(c.next_byte_logprobs(x))
        mix = np.exp(ByteEnsemble([a, c], weights=[1, 3], mode="mixture").next_byte_logprobs(x))
        np.testing.assert_allclose(mix, 0.25 * pa + 0.75 * pc, atol=TOL)
        prod = np.exp(ByteEnsemble([a, c], mode="product").next_byte_logprobs(x))
        want = np.sqrt(pa * pc)
        np.testing.assert_allclose(prod, want / want.sum(), atol=TOL)


def test_bayes_is_the_sequence_mixture(toys):
    """Chain rule of the Bayes ensemble = log(w_a P_a(x) + w_c P_c(x)) exactly, with and without a prompt."""
    a, b, c, src, src_c = toys
    ens = ByteEnsemble([a, c], weights=[0.4, 0.6], mode="bayes")
    for s in ["ab a", "b  ab", "a b"]:
        want = math.log(0.4 * src.prob[s] + 0.6 * src_c.prob[s])
        assert ens.logprob(s, eos=True) == pytest.approx(want, abs=TOL)
        k = 2
        joint = math.log(0.4 * src.prefix[s[:k].encode()] + 0.6 * src_c.prefix[s[:k].encode()])
        assert ens.logprob(s[k:], eos=True, context=s[:k]) == pytest.approx(want - joint, abs=TOL)


def test_bad_ensemble_input(toys):
    from tokkit.errors import TokkitError

    a = toys[0]
    with pytest.raises(TokkitError):
        ByteEnsemble([])
    with pytest.raises(TokkitError):
        ByteEnsemble([a], weights=[1, 2])
    with pytest.raises(TokkitError):
        ByteEnsemble([a], mode="vote")


@pytest.fixture(scope="module")
def unigram_mistral():
    """A real SentencePiece tokenizer (Mistral 7B v0.1: ▁, byte fallback, dummy prefix) with a token
    unigram LM counted on Moby-Dick chapter 1 (add-one smoothing) — a cheap second real-vocab model."""
    from conftest import need_fixture

    need_fixture("mistral")
    import tokkit

    tok = tokkit.load_tokenizer("mistral")
    text = DATA.read_text(encoding="utf-8").split("\n\n")[0]
    counts = Counter(tok.encode(text))
    V = len(tok.vocab)
    p = np.ones(V)
    for i, n in counts.items():
        p[i] += n
    eos = tok.vocab.role_id("eos")
    p[eos] += 5
    lp = np.log(p / p.sum())
    return ByteLM(lambda ids: lp, tok, eos_ids=[eos])


@pytest.mark.slow
def test_real_sentencepiece_vocab_sums_to_one_and_matches_token_level(unigram_mistral):
    """The SentencePiece path on a real 32k vocabulary: sums to 1, and the chain rule equals the
    token-level log Q(enc(x)·EOS) minus the normalisers (float64 LM: tight tolerance)."""
    blm = unigram_mistral
    s = "Some years ago"
    sc = blm.score(s, eos=True)
    st = blm.state(s[:5])
    assert abs(np.exp(st.next_byte().logprobs).sum() - 1) < 1e-9
    lp = blm.lm.fn(())
    ids = blm.tokenizer.encode(s)
    tok_level = float(sum(lp[i] for i in ids) + lp[blm.eos_ids[0]])
    assert sc.logprob == pytest.approx(tok_level - sc.log_z.sum() - sc.log_lead, abs=1e-8)


@pytest.mark.slow
def test_smollm2_with_a_second_real_vocabulary(smollm2_dir, unigram_mistral):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        smol = ByteLM.from_pretrained(smollm2_dir)
        x = "The capital of Fr"
        ens = ByteEnsemble([smol, unigram_mistral], weights=[0.8, 0.2])
        p = np.exp(ens.next_byte_logprobs(x))
        assert abs(p.sum() - 1) < 1e-9
        ps, pu = np.exp(smol.next_byte_logprobs(x)), np.exp(unigram_mistral.next_byte_logprobs(x))
        np.testing.assert_allclose(p, 0.8 * ps + 0.2 * pu, atol=1e-12)
        assert ens.complete(x) == b"ance"
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_smollm2_gemma3_ensemble(smollm2_dir, gemma3_dir):
    """SmolLM2-135M (byte-level BPE) + Gemma-3-270M (SentencePiece-style BPE, 262k vocab): the Bayes
    ensemble's bits/byte is at most the better member's plus log2(1/w)/n (a property of the
    sequence mixture), and Gemma's fast validity agrees with re-encoding on a real window."""
    import torch

    from tokkit.bytelevel.bpe_canon import PairwiseBPECanon
    from tokkit.bytelevel.canon import ReencodeCanon

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        smol, gem = ByteLM.from_pretrained(smollm2_dir), ByteLM.from_pretrained(gemma3_dir)
        assert isinstance(gem.canon, PairwiseBPECanon)
        ids = tuple(gem.tokenizer.encode("Call me Ish"))
        diff = gem.canon.extend_mask(ids) != ReencodeCanon(gem.tokenizer, gem.table).extend_mask(ids)
        assert [gem.table.token(int(t)) for t in gem.table.ordinary[diff]] == [b"> </"]  # the one excluded token
        assert gem.complete("The capital of Fr") == b"ance"
        text = DATA.read_text(encoding="utf-8").split("\n\n")[1][:40]
        a, b = smol.score(text).bits_per_byte, gem.score(text).bits_per_byte
        ens = ByteEnsemble([smol, gem], mode="bayes").score(text).bits_per_byte
        assert ens <= min(a, b) + 1.0 / len(text.encode()) + 1e-9
    finally:
        torch.set_num_threads(threads)
