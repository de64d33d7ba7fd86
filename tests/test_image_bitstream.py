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



def _reheader(data: bytes, body: bytes | None = None, **fields) -> bytes:
    """``data`` (a version-1 .tok) with header fields K, N, S, M replaced and a valid crc32: a hostile header."""
    import struct
    import zlib

    head = struct.Struct(">4sB8sIHHI")
    magic, version, mid, K, N, S, M = head.unpack_from(data)
    v = {"K": K, "N": N, "S": S, "M": M, **fields}
    out = head.pack(magic, version, mid, v["K"], v["N"], v["S"], v["M"]) + (data[head.size:-4] if body is None else body)
    return out + struct.pack(">I", zlib.crc32(out))


def _one_image() -> bytes:  # the shape of the tiny recipe's model: K = 125, N = 8, S = 16
    return pack([torch.tensor([1, 2, 3])], model_id=MID, codebook_size=125, max_tokens=8, image_size=16)


@pytest.mark.parametrize("fields,named", [
    ({"K": 0, "body": b"\x00\x00"}, "codebook size K = 0"), ({"K": 1, "body": b"\x07"}, "codebook size K = 1"),
    ({"N": 0}, "max tokens N = 0"), ({"S": 0}, "image size S = 0"), ({"M": 0, "body": b""}, "image count = 0")])
def test_a_degenerate_header_is_corrupt_not_a_crash(fields, named):
    hostile = _reheader(_one_image(), **fields)
    with pytest.raises(CorruptTokFileError, match=f"corrupt: its header declares {named} \\(expected at least"):
        unpack(hostile, expect_model_id=MID)
    with pytest.raises(CorruptTokFileError, match="corrupt"):  # also with no model to compare against
        unpack(hostile)


@pytest.mark.parametrize("fields,named,model", [
    ({"K": 124}, "codebook size K = 124", "codebook size K = 125"),
    ({"N": 300, "body": "2-byte length"}, "max tokens N = 300", "max tokens N = 8"),
    ({"S": 32}, "image size S = 32", "image size S = 16")])
def test_a_header_that_disagrees_with_the_model_is_refused(fields, named, model):
    data = _one_image()
    if "body" in fields:  # N > 256 stores each image's length in 2 bytes: the file parses, only the model disagrees
        fields["body"] = b"\x00" + data[HEADER_BYTES:-4]
    hostile = _reheader(data, **fields)
    expect = {"expect_model_id": MID, "expect_codebook_size": 125, "expect_max_tokens": 8, "expect_image_size": 16}
    with pytest.raises(ModelMismatchError, match=f"declares {named}, but the model {MID} has {model}"):
        unpack(hostile, **expect)
    unpack(hostile)  # well-formed by itself: only the comparison with the model refuses it
    assert unpack(data, **expect).ids[0].tolist() == [1, 2, 3]


def test_pack_refuses_no_images():
    with pytest.raises(TokenCountError, match="at least one image"):
        pack([], model_id=MID, codebook_size=10, max_tokens=4, image_size=16)

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
