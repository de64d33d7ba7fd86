"""Exact arithmetic coding of image token ids with per-position frequencies (tokkit.image.entropy)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tokkit.image.entropy import TokenPrior, decode_ids, encode_ids, ideal_bits  # noqa: E402
from tokkit.image.errors import CorruptTokFileError, TokenCountError  # noqa: E402


def _prior(n: int, k: int, seed: int = 0) -> TokenPrior:
    g = torch.Generator().manual_seed(seed)
    skew = torch.rand(n, k, generator=g) ** 6  # a few frequent codes per position, many rare ones
    return TokenPrior((skew * 1000).to(torch.int64) + 1)


def test_fit_counts_per_position_plus_one():
    ids = torch.tensor([[0, 2], [0, 1], [1, 2]])
    p = TokenPrior.fit(ids, 3, scale=1)
    assert p.counts.tolist() == [[3, 2, 1], [1, 2, 3]]
    assert p.max_tokens == 2 and p.codebook_size == 3 and len(p.prior_id) == 16
    q = TokenPrior.fit(ids, 3, scale=4)
    assert q.counts.tolist() == [[9, 5, 1], [1, 5, 9]] and q.prior_id != p.prior_id
    assert abs(q.fitted_entropy_bits - p.fitted_entropy_bits) < 1e-12  # entropy of the observed counts: 0.918 bit
    assert abs(p.fitted_entropy_bits - (-(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))) < 1e-12


@pytest.mark.parametrize("n,k", [(1, 2), (4, 3), (32, 1000), (40, 64000)])
def test_round_trip_every_prefix_and_length_bound(n, k):
    prior = _prior(n, k, seed=n)
    g = torch.Generator().manual_seed(k)
    for trial in range(30 if k < 10_000 else 6):
        probs = prior.counts.double()
        ids = [int(torch.multinomial(probs[j], 1, generator=g)) if trial % 2 else int(torch.randint(0, k, (1,), generator=g))
               for j in range(n)]
        for m in {1, max(1, n // 2), n}:
            data = encode_ids(ids[:m], prior)
            assert decode_ids(data, m, prior) == ids[:m]
            assert len(data) <= math.ceil((ideal_bits(ids[:m], prior) + 2) / 8)


def test_exhaustive_tiny_alphabet_is_a_prefix_free_decodable_code():
    prior = TokenPrior(torch.tensor([[5, 1, 2], [1, 1, 6], [3, 3, 2]], dtype=torch.int64))
    seen = {}
    for a in range(3):
        for b in range(3):
            for c in range(3):
                data = encode_ids([a, b, c], prior)
                assert decode_ids(data, 3, prior) == [a, b, c]
                seen[(a, b, c)] = data
    assert len(set(seen.values())) == 27  # distinct codes for distinct messages
    skewed = TokenPrior(torch.tensor([[1000, 1], [1000, 1]], dtype=torch.int64))
    assert len(encode_ids([0, 0], skewed)) == 0 and len(encode_ids([1, 1], skewed)) == 3  # 0.003 bits vs 19.9 bits
    assert decode_ids(b"", 2, skewed) == [0, 0] and decode_ids(encode_ids([1, 1], skewed), 2, skewed) == [1, 1]


def test_refusals():
    prior = _prior(4, 10)
    with pytest.raises(TokenCountError):
        encode_ids([], prior)
    with pytest.raises(TokenCountError):
        encode_ids([10], prior)
    with pytest.raises(TokenCountError):
        encode_ids([0] * 5, prior)
    with pytest.raises(CorruptTokFileError):
        decode_ids(b"\x00", 5, prior)
    with pytest.raises(ValueError):
        TokenPrior(torch.zeros(2, 3, dtype=torch.int64))


def test_save_load(tmp_path):
    prior = _prior(8, 100)
    prior.save(tmp_path / "token_prior.safetensors")
    back = TokenPrior.load(tmp_path)
    assert torch.equal(back.counts, prior.counts) and back.prior_id == prior.prior_id
    from tokkit.errors import MissingFileError

    with pytest.raises(MissingFileError, match="fit-prior"):
        TokenPrior.load(tmp_path / "nope")
    from tokkit.errors import FormatError

    (tmp_path / "token_prior.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(FormatError, match="not a token prior"):
        TokenPrior.load(tmp_path)
