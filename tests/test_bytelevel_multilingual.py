"""Property test: walk real multilingual text byte by byte on toy models of both tokenizer families.

At every prefix of six real texts (Japanese, Chinese, Russian, Persian in the Arabic script, emoji
sequences, Python source; data/multilingual/) the next-byte distribution must be normalised
(log-sum-exp 0 within 1e-6), finite exactly where the byte can follow (every byte that keeps the
text a prefix of valid UTF-8, end-of-text only after a complete character) and -inf elsewhere; the
chain rule over the whole walk must equal the token-level ``log Q(enc(x)·EOS)`` computed
independently, minus the reported normalisers (reference note §9, P7). Starting fresh at
mid-character cuts must give the distributions of the walk (P4; arbitrary cuts for the ASCII code).

This is the check that would have caught the all -inf on SmolLM2 for "の首都": byte-level BPE splits
rare characters over several tokens, and a token that continues a character without finishing it
was masked out, so the covers died inside 首.

``TOKKIT_WALK_BYTES`` sets the bytes walked per text (default 500: 6,000 prefixes over the two
families, about 20 s on a shared 2-core machine; 0 = the whole ~1,000-byte texts).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import multilingual_toys as M
from tokkit.bytelevel import EOS, ByteLM
from tokkit.bytelevel.table import logsumexp
from tokkit.errors import ImpossiblePrefixError

WALK = int(os.environ.get("TOKKIT_WALK_BYTES", "500")) or None
TOL = 1e-6


def _cut_text(text: str, n: int | None) -> bytes:
    """The longest prefix of whole characters within ``n`` bytes."""
    return text.encode("utf-8")[:n].decode("utf-8", errors="ignore").encode("utf-8")


@functools.lru_cache(maxsize=None)
def _utf8_next(partial: bytes) -> frozenset[int]:
    """Bytes ``b`` for which ``partial + b`` is a prefix of valid UTF-8 (``partial``: the open character)."""
    out = set()
    for b in range(256):
        try:
            (partial + bytes([b])).decode("utf-8")
            out.add(b)
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data":
                out.add(b)
    return frozenset(out)


def _open_char(prefix: bytes) -> bytes:
    """The unfinished last character of ``prefix`` (b"" when it ends on a character boundary)."""
    for k in range(1, min(4, len(prefix)) + 1):
        lead = prefix[-k]
        if lead < 0x80:
            return b""
        if lead >= 0xC0:
            size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            return prefix[-k:] if k < size else b""
    return b""


@pytest.fixture(scope="module", params=sorted(M.FAMILIES))
def family(request, tmp_path_factory):
    tok = M.toy_tokenizer(request.param, tmp_path_factory.mktemp(request.param))
    lm = M.BigramLM(len(tok.vocab), seed=1)
    return request.param, tok, lm, ByteLM(lm, tok)


@pytest.mark.parametrize("script", M.SCRIPTS)
def test_walk_real_text_byte_by_byte(family, script):
    name, tok, lm, blm = family
    text = _cut_text(M.texts()[script], WALK)
    spelled = blm.table.spelled_bytes()
    st = blm.state(b"")
    lead = st.mass()
    chain, cuts, seen = 0.0, {}, 0
    cut_at = {k for k in range(1, len(text)) if _open_char(text[:k])}  # mid-character prefixes
    cut_at = set(sorted(cut_at)[:: max(1, len(cut_at) // 4)]) or set(range(7, len(text), 97))  # ASCII: any cut
    for i in range(len(text) + 1):
        prefix = text[:i]
        nb = st.next_byte()
        lp = nb.logprobs
        assert abs(logsumexp(lp)) < TOL, f"{name}/{script}: not normalised after {prefix[-12:]!r}"
        want = set(_utf8_next(_open_char(prefix))) & spelled
        if not _open_char(prefix):
            want.add(EOS)
        got = set(np.flatnonzero(np.isfinite(lp)).tolist())
        assert got == want, (f"{name}/{script} byte {i} after {prefix[-12:]!r}: finite where it cannot follow "
                             f"{sorted(got - want)[:8]}, -inf where it can {sorted(want - got)[:8]}")
        assert nb.log_z <= 1e-12
        if i in cut_at:
            cuts[i] = lp
        seen += 1
        if i == len(text):
            chain += lp[EOS] + nb.log_z
            break
        chain += lp[text[i]] + nb.log_z
        st.push(text[i])
    # P7: the chain rule equals the token-level probability of the canonical encoding, computed apart
    ids = tok.encode(text.decode("utf-8"))
    assert chain == pytest.approx(lm.seq_logprob(ids, blm.eos_ids[0]) - lead, abs=1e-6)
    # P4: a fresh state at a mid-character cut gives the walk's distribution there
    for i, lp in cuts.items():
        np.testing.assert_allclose(blm.next_byte_logprobs(text[:i]), lp, atol=1e-9, rtol=0)
    assert seen >= min(len(text), 450) and len(cuts) >= 3


def test_enough_prefixes_and_scripts():
    """The walk above covers at least 5,000 prefixes of six scripts over the two families."""
    per_family = sum(len(_cut_text(t, WALK)) + 1 for t in M.texts().values())
    assert len(M.SCRIPTS) == 6 and 2 * per_family >= 5000
    texts = M.texts()
    assert any(0x3040 <= ord(c) <= 0x30FF for c in texts["ja"]) and any(0x4E00 <= ord(c) <= 0x9FFF for c in texts["zh"])
    assert any(0x0400 <= ord(c) <= 0x04FF for c in texts["ru"]) and any(0x0600 <= ord(c) <= 0x06FF for c in texts["fa"])
    assert any(ord(c) >= 0x1F300 for c in texts["emoji"]) and "\u200d".encode() in _cut_text(texts["emoji"], WALK) and "class " in texts["code"]


def test_impossible_prefix_raises_never_silent_inf(tmp_path):
    """A byte with no token has probability 0 by construction; a prefix containing it raises a clear error."""
    import reference_bytes as R

    tok, _ = R.toy_tokenizer("bpe", tmp_path)  # vocabulary spells only "a", "b" and " "
    V = len(tok.vocab)
    blm = ByteLM(lambda ids: np.full(V, -np.log(V)), tok)
    lp = blm.next_byte_logprobs(b"ab")
    assert lp[ord("c")] == -np.inf and abs(logsumexp(lp)) < 1e-12
    assert blm.logprob(b"abc") == -np.inf
    with pytest.raises(ImpossiblePrefixError, match="0x63"):
        blm.next_byte_logprobs(b"abc")
    st = blm.state(b"ab")
    st.push(ord("c"))
    with pytest.raises(ImpossiblePrefixError, match="probability 0"):
        st.next_byte()


@pytest.mark.slow
@pytest.mark.parametrize("alias", ["smollm2", "gemma3"])
def test_canonical_path_is_valid_on_real_vocabularies(alias):
    """The real tokenizer's own encoding of each text is a chain of valid extensions: the mask never
    drops the canonical next token (ByteSampler's "canonical path present" invariant); SmolLM2 is
    byte-level BPE (:class:`BPECanon`), Gemma 3 SentencePiece-style BPE with byte fallback (:class:`PairwiseBPECanon`)."""
    from conftest import cached_tokenizer, need_fixture

    from tokkit.bytelevel.bytelm import _make_canon
    from tokkit.bytelevel.table import TokenTable

    need_fixture(alias)
    tok = cached_tokenizer(alias)
    table = TokenTable.from_vocab(tok.vocab)
    canon = _make_canon(tok, table)
    assert type(canon).__name__ == {"smollm2": "BPECanon", "gemma3": "PairwiseBPECanon"}[alias]
    pos = {int(t): j for j, t in enumerate(table.ordinary)}
    checked = 0
    for script, text in M.texts().items():
        ids = tuple(tok.encode(_cut_text(text, 150).decode("utf-8")))
        for j in range(len(ids)):
            assert canon.extend_mask(ids[:j])[pos[ids[j]]], f"{alias}/{script}: token {j} {table.token(ids[j])!r} masked out"
            checked += 1
    assert checked > 150
