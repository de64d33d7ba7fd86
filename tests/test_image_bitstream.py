"""The .tok bitstream: exact id round trips, byte counts, corruption and model-mismatch errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tokkit.errors import MissingFileError  # noqa: E402
from tokkit.image.bitstream import HEADER_BYTES, pack, payload_bytes, unpack  # noqa: E402
from tokkit.image.errors import CorruptTokFileError, ModelMismatchError, TokenCountError  # noqa: E402

MID = "0123456789abcdef"


def _lists(K: int, N: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lens = [1, N, 2, max(1, N - 1), 5 % N + 1]
    lists = [torch.randint(0, K, (k,), generator=g) for k in lens]
    lists.append(torch.full((N,), K - 1))  # extreme ids
    lists.append(torch.zeros(N, dtype=torch.long))
    return lists


@pytest.mark.parametrize("K,N", [(1000, 32), (125, 8), (64000, 128), (2, 300), (4096, 256)])
def test_round_trip_is_exact(K, N):
    lists = _lists(K, N)
    data = pack(lists, model_id=MID, codebook_size=K, max_tokens=N, image_size=32)
    f = unpack(data, expect_model_id=MID)
    assert (f.model_id, f.codebook_size, f.max_tokens, f.image_size) == (MID, K, N, 32)
    assert len(f.ids) == len(lists) and all(torch.equal(a, b) for a, b in zip(f.ids, lists))
    lb = 1 if N <= 256 else 2
    assert len(data) == HEADER_BYTES + 4 + sum(lb + payload_bytes(len(t), K) for t in lists)


def test_payload_bytes_are_the_information_content():
    assert payload_bytes(1, 1000) == 2 and payload_bytes(32, 1000) == 40  # ceil(32 * 9.966 / 8) = 40
    assert payload_bytes(256, 64000) == 511 and payload_bytes(32, 4096) == 48  # FlexTok / TiTok-L-32
    for k in range(1, 40):
        assert payload_bytes(k, 1000) == -(-((1000**k - 1).bit_length()) // 8)


def test_corruption_is_detected():
    data = pack(_lists(1000, 32), model_id=MID, codebook_size=1000, max_tokens=32, image_size=32)
    for i in (0, 5, HEADER_BYTES + 3, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(CorruptTokFileError):
            unpack(bytes(bad))
    for cut in (3, HEADER_BYTES, len(data) - 5):
        with pytest.raises(CorruptTokFileError):
            unpack(data[:cut])
    with pytest.raises(CorruptTokFileError, match="magic"):
        unpack(b"\x89PNG" + data[4:])


def test_model_mismatch_and_bad_ids():
    data = pack([torch.tensor([1, 2])], model_id=MID, codebook_size=10, max_tokens=4, image_size=16)
    with pytest.raises(ModelMismatchError, match=MID):
        unpack(data, expect_model_id="f" * 16)
    with pytest.raises(TokenCountError, match="1..4"):
        pack([torch.arange(5)], model_id=MID, codebook_size=10, max_tokens=4, image_size=16)
    with pytest.raises(TokenCountError, match="0..9"):
        pack([torch.tensor([10])], model_id=MID, codebook_size=10, max_tokens=4, image_size=16)


@pytest.mark.parametrize("K,N", [(1000, 32), (64000, 40), (7, 300)])
def test_entropy_coded_round_trip_and_corruption(K, N):
    from tokkit.image.entropy import TokenPrior

    g = torch.Generator().manual_seed(K)
    counts = (torch.rand(N, K, generator=g) > 0.99).to(torch.int64) * 10**6 + 1  # ~1 % of codes frequent
    counts[torch.arange(N), torch.randint(0, K, (N,), generator=g)] += 10**6  # and at least one per position
    prior = TokenPrior(counts)
    lists = [torch.multinomial(prior.counts[:k].double(), 1, generator=g).flatten() for k in (1, 2, N - 1, N, 7)]
    data = pack(lists, model_id=MID, codebook_size=K, max_tokens=N, image_size=32, prior=prior)
    f = unpack(data, expect_model_id=MID, prior=prior)
    assert f.prior_id == prior.prior_id and all(torch.equal(a, b) for a, b in zip(lists, f.ids))
    plain = pack(lists, model_id=MID, codebook_size=K, max_tokens=N, image_size=32)
    assert len(data) < len(plain) - 20  # ids drawn from the prior cost ~log2(K / 100) bits, not log2(K)
    with pytest.raises(MissingFileError):
        unpack(data)
    for pos in range(0, len(data), 7):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(CorruptTokFileError):
            unpack(bytes(bad), prior=prior)
    with pytest.raises(TokenCountError):
        pack(lists, model_id=MID, codebook_size=K + 1, max_tokens=N, image_size=32, prior=prior)
