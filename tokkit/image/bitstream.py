"""The ``.tok`` file: image token ids packed into bytes, with a model-identity header.

Layout (all integers big-endian)::

    magic  b"TKI1"            4 B
    version                    1 B   (= 1)
    model id                   8 B   (sha256 prefix of the weights; decode refuses a mismatch)
    codebook size K            4 B
    max tokens N               2 B
    image size S               2 B
    image count M              4 B
    M x [ k-1 (1 B if N <= 256 else 2 B) | ids as one mixed-radix number, payload_bytes(k, K) bytes ]
    crc32 of everything above  4 B

Version 2 (``pack(..., prior=...)``, entropy-coded ids, :mod:`tokkit.image.entropy`): after the header comes
the 8-byte id of the per-position frequency table (``token_prior.safetensors`` of the checkpoint), and each
image is ``k-1 | code length in bytes (LEB128 varint) | arithmetic code of the ids``. Decoding needs the same
table; a file coded with another table is refused.

Version 3 (``pack(..., ar_prior=...)``, context-coded ids, :mod:`tokkit.image.ar_coding`): after the header
comes the 8-byte id of the autoregressive prior; each image is ``k-1 | code length (LEB128) | arithmetic code``
where position j is coded with the prior's quantised ``p(id_j | id_<j)``; before the file crc32 comes a crc32 of
the decoded ids (big-endian 4-byte ids), which decoding checks. Versions 1 and 2 are still read.

The payload of k ids is the integer ``sum(id_i * K**i)`` in the fewest whole bytes, i.e.
``ceil(log2(K**k) / 8)`` — 40 B for 32 FSQ [8,5,5,5] tokens (K = 1000) instead of 64 B for 16-bit ids.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import torch

from tokkit.errors import MissingFileError
from tokkit.image.entropy import TokenPrior, decode_ids, encode_ids
from tokkit.image.errors import CorruptTokFileError, ModelMismatchError, TokenCountError

__all__ = ["TokFile", "pack", "unpack", "payload_bytes", "HEADER_BYTES", "TRAILER_BYTES"]

MAGIC, VERSION, VERSION_ENTROPY, VERSION_AR = b"TKI1", 1, 2, 3
_HEAD = struct.Struct(">4sB8sIHHI")
HEADER_BYTES, TRAILER_BYTES = _HEAD.size, 4


def payload_bytes(k: int, codebook_size: int) -> int:
    """Bytes holding k ids of a K-code codebook packed as one mixed-radix integer."""
    return ((codebook_size**k - 1).bit_length() + 7) // 8


def length_bytes(max_tokens: int) -> int:
    return 1 if max_tokens <= 256 else 2


@dataclass(frozen=True)
class TokFile:
    """Parsed ``.tok`` contents: ``ids`` holds one LongTensor (k_i,) per image."""

    model_id: str
    codebook_size: int
    max_tokens: int
    image_size: int
    ids: tuple[torch.Tensor, ...]
    prior_id: str | None = None  # set when the ids were entropy-coded (version 2) or AR-coded (version 3)
    version: int = VERSION


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _read_varint(body: bytes, pos: int, source: str) -> tuple[int, int]:
    n, shift = 0, 0
    while pos < len(body) and shift < 35:
        b = body[pos]
        n, pos, shift = n | (b & 0x7F) << shift, pos + 1, shift + 7
        if not b & 0x80:
            return n, pos
    raise CorruptTokFileError(f"{source} is corrupt: a code length runs past the end of the file")


def _ids_crc(lists: list[list[int]]) -> bytes:
    return struct.pack(">I", zlib.crc32(b"".join(struct.pack(f">{len(t)}I", *t) for t in lists)))


def pack(token_lists: list[torch.Tensor], *, model_id: str, codebook_size: int, max_tokens: int, image_size: int,
         prior: TokenPrior | None = None, ar_prior=None) -> bytes:
    """Serialise token lists (each 1..N ids in 0..K-1) into ``.tok`` bytes.

    Entropy-coded (version 2) when ``prior`` is given; context-coded (version 3) when ``ar_prior`` (an
    :class:`~tokkit.image.ar_coding.ARCoder`) is given.
    """
    lb = length_bytes(max_tokens)
    if not token_lists:
        raise TokenCountError("a .tok file holds at least one image, found an empty list; pass the token lists of one "
                              "or more images")
    if prior is not None and ar_prior is not None:
        raise TokenCountError("pass one of prior= (per-position, version 2) or ar_prior= (autoregressive, version 3)")
    if ar_prior is not None:
        if (ar_prior.max_tokens, ar_prior.codebook_size) != (max_tokens, codebook_size):
            raise TokenCountError(f"the AR prior is for N = {ar_prior.max_tokens}, K = {ar_prior.codebook_size}, the "
                                  f"model has N = {max_tokens}, K = {codebook_size}; train one for this model")
        if ar_prior.tokenizer_id != model_id:
            raise ModelMismatchError(f"the AR prior was trained on the tokens of model {ar_prior.tokenizer_id}, not of "
                                     f"{model_id}; train one with `tokkit image prior train` for this model")
        prior = ar_prior
    if prior is not None and (prior.max_tokens, prior.codebook_size) != (max_tokens, codebook_size):
        raise TokenCountError(f"the token prior is for N = {prior.max_tokens}, K = {prior.codebook_size}, the model has "
                              f"N = {max_tokens}, K = {codebook_size}; refit it with `tokkit image fit-prior`")
    version = VERSION if prior is None else VERSION_AR if ar_prior is not None else VERSION_ENTROPY
    out = bytearray(_HEAD.pack(MAGIC, version, bytes.fromhex(model_id),
                               codebook_size, max_tokens, image_size, len(token_lists)))
    if prior is not None:
        out += bytes.fromhex(prior.prior_id)
    all_ids = []
    for t in token_lists:
        ids = [int(v) for v in torch.as_tensor(t).flatten().tolist()]
        all_ids.append(ids)
        if not 1 <= len(ids) <= max_tokens:
            raise TokenCountError(f"each image needs 1..{max_tokens} tokens, found {len(ids)}")
        if min(ids) < 0 or max(ids) >= codebook_size:
            raise TokenCountError(f"ids must lie in 0..{codebook_size - 1}, found {min(ids)}..{max(ids)}")
        if prior is not None:
            code = ar_prior.encode_ids(ids) if ar_prior is not None else encode_ids(ids, prior)
            out += (len(ids) - 1).to_bytes(lb, "big") + _varint(len(code)) + code
            continue
        value = 0
        for v in reversed(ids):
            value = value * codebook_size + v
        out += (len(ids) - 1).to_bytes(lb, "big") + value.to_bytes(payload_bytes(len(ids), codebook_size), "little")
    if ar_prior is not None:
        out += _ids_crc(all_ids)
    out += struct.pack(">I", zlib.crc32(bytes(out)))
    return bytes(out)


def unpack(data: bytes, *, expect_model_id: str | None = None, source: str = "<bytes>",
           prior: TokenPrior | None = None, ar_prior=None, expect_codebook_size: int | None = None,
           expect_max_tokens: int | None = None, expect_image_size: int | None = None) -> TokFile:
    """Parse ``.tok`` bytes; raises :class:`CorruptTokFileError` or :class:`ModelMismatchError`.

    An entropy-coded file (version 2) needs the ``prior`` it was written with; a context-coded one (version 3)
    the ``ar_prior`` (:class:`~tokkit.image.ar_coding.ARCoder`). A header declaring K < 2, N = 0, S = 0 or no
    images is corrupt; the ``expect_*`` values (the decoding model's K, N and S) refuse a header that disagrees.
    """
    if len(data) < HEADER_BYTES + TRAILER_BYTES or data[:4] != MAGIC:
        raise CorruptTokFileError(f"{source} is not a tokkit .tok file: expected magic {MAGIC!r} and at least "
                                  f"{HEADER_BYTES + TRAILER_BYTES} bytes, found {data[:4]!r} and {len(data)} bytes")
    body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
    if zlib.crc32(body) != crc:
        raise CorruptTokFileError(f"{source} is corrupt: crc32 mismatch (stored {crc:08x}, computed {zlib.crc32(body):08x}); "
                                  "the file was truncated or altered — re-encode the image")
    _, version, mid, K, N, S, count = _HEAD.unpack_from(body)
    if version not in (VERSION, VERSION_ENTROPY, VERSION_AR):
        raise CorruptTokFileError(f"{source}: .tok version {version} is not supported (expected {VERSION}, "
                                  f"{VERSION_ENTROPY} or {VERSION_AR})")
    bad = [f"{name} = {value} (expected {want})" for name, value, ok, want in (
        ("codebook size K", K, K >= 2, "at least 2"), ("max tokens N", N, N >= 1, "at least 1"),
        ("image size S", S, S >= 1, "at least 1"), ("image count", count, count >= 1, "at least 1")) if not ok]
    if bad:
        raise CorruptTokFileError(f"{source} is corrupt: its header declares {', '.join(bad)}; the file was damaged "
                                  "or altered — re-encode the image")
    model_id = mid.hex()
    if expect_model_id is not None and model_id != expect_model_id:
        raise ModelMismatchError(f"{source} was written by model {model_id}, but the model given has id {expect_model_id}; "
                                 "decode with the checkpoint that encoded it")
    for name, value, want in (("codebook size K", K, expect_codebook_size), ("max tokens N", N, expect_max_tokens),
                              ("image size S", S, expect_image_size)):
        if want is not None and value != want:
            raise ModelMismatchError(f"{source} declares {name} = {value}, but the model"
                                     f"{'' if expect_model_id is None else ' ' + expect_model_id} has {name} = {want}; "
                                     "the header was altered or the file was written by another model — re-encode "
                                     "the image with this checkpoint")
    lb, pos, lists, prior_id = length_bytes(N), HEADER_BYTES, [], None
    if version == VERSION_ENTROPY:
        prior_id, pos = body[pos:pos + 8].hex(), pos + 8
        if prior is None:
            raise MissingFileError(f"{source} is entropy-coded with token prior {prior_id}; decode it with the checkpoint "
                                   "folder that holds that token_prior.safetensors")
        if prior.prior_id != prior_id or (prior.max_tokens, prior.codebook_size) != (N, K):
            raise ModelMismatchError(f"{source} was entropy-coded with token prior {prior_id}, but the prior given has id "
                                     f"{prior.prior_id}; decode with the checkpoint folder that encoded it")
    if version == VERSION_AR:
        prior_id, pos = body[pos:pos + 8].hex(), pos + 8
        if ar_prior is None:
            raise MissingFileError(f"{source} is context-coded with AR prior {prior_id}; decode it with --prior PRIOR "
                                   "(the folder `tokkit image prior train` wrote)")
        if ar_prior.prior_id != prior_id or (ar_prior.max_tokens, ar_prior.codebook_size) != (N, K):
            raise ModelMismatchError(f"{source} was context-coded with AR prior {prior_id}, but the prior given has id "
                                     f"{ar_prior.prior_id}; decode with the prior that encoded it")
        body, ids_crc = body[:-4], body[-4:]
    for _ in range(count):
        if pos + lb > len(body):
            raise CorruptTokFileError(f"{source} is truncated: {count} images declared, {len(lists)} found")
        k = int.from_bytes(body[pos:pos + lb], "big") + 1
        if prior_id is not None:
            n, start = _read_varint(body, pos + lb, source)
            if k > N or start + n > len(body):
                raise CorruptTokFileError(f"{source} is corrupt: image {len(lists)} declares {k} tokens in {n} bytes")
            code = body[start:start + n]
            ids = ar_prior.decode_ids(code, k) if version == VERSION_AR else decode_ids(code, k, prior)
            lists.append(torch.tensor(ids, dtype=torch.long))
            pos = start + n
            continue
        n = payload_bytes(k, K)
        if k > N or pos + lb + n > len(body):
            raise CorruptTokFileError(f"{source} is corrupt: image {len(lists)} declares {k} tokens (N = {N})")
        value = int.from_bytes(body[pos + lb:pos + lb + n], "little")
        ids = []
        for _ in range(k):
            value, v = divmod(value, K)
            ids.append(v)
        if value:
            raise CorruptTokFileError(f"{source} is corrupt: image {len(lists)} payload exceeds {k} ids")
        lists.append(torch.tensor(ids, dtype=torch.long))
        pos += lb + n
    if pos != len(body):
        raise CorruptTokFileError(f"{source} is corrupt: {len(body) - pos} trailing bytes after {count} images")
    if version == VERSION_AR and _ids_crc([t.tolist() for t in lists]) != ids_crc:
        raise CorruptTokFileError(f"{source} decodes to ids whose crc32 differs from the one stored: this machine computes "
                                  f"the AR prior's conditionals differently from the encoder's; decode where it was encoded")
    return TokFile(model_id, K, N, S, tuple(lists), prior_id, version)
