"""Megatron-LM's indexed dataset: ``part-00000.bin`` (ids) + ``part-00000.idx`` (the ``MMIDIDX`` index).

Written from the published layout (``megatron/core/datasets/indexed_dataset.py``, ``_IndexWriter``),
one sequence per document as ``tools/preprocess_data.py`` writes without sentence splitting:

* ``.bin``: the ids of every document back to back, little-endian, ``uint16`` when the vocabulary
  fits (dtype code 8) else ``int32`` (code 4; Megatron has no ``uint32`` code);
* ``.idx``: ``b"MMIDIDX\\x00\\x00"``, version ``<Q`` 1, dtype code ``<B``, sequence count ``<Q`` n,
  document count ``<Q`` n + 1, then ``int32`` lengths (n), ``int64`` byte pointers (n) and ``int64``
  document indices ``0..n`` (n + 1).

Megatron reads it with ``IndexedDataset(prefix)``; pass the prefixes (``OUT/part-00000`` ...) as
``--data-path``. The lengths are kept in memory until ``close`` (4 bytes per document of the shard).
"""

from __future__ import annotations

import struct
from array import array
from pathlib import Path

import numpy as np

from tokkit.errors import FormatError
from tokkit.train.shards import ShardFormat

__all__ = ["FORMAT", "MegatronWriter", "HEADER", "DTYPE_CODES"]

HEADER = b"MMIDIDX\x00\x00"
#: Megatron's ``DType`` codes for the dtypes tokkit writes.
DTYPE_CODES = {"uint16": 8, "int32": 4}
_BUFFER = 1 << 20


class MegatronWriter:
    """Streams ids to the ``.bin`` file; writes the ``.idx`` index at ``close``."""

    def __init__(self, paths: tuple[Path, ...], dtype: np.dtype, tokenizer: str) -> None:
        self._bin = open(paths[0], "wb", buffering=_BUFFER)
        self._idx_path = paths[1]
        self._dtype = dtype
        self._lengths = array("q")

    def add(self, data: bytes, n_tokens: int, *, src: str, loc: int) -> None:
        self._bin.write(data)
        self._lengths.append(n_tokens)

    def close(self) -> None:
        self._bin.close()
        lengths = np.frombuffer(self._lengths, dtype=np.int64) if self._lengths else np.zeros(0, np.int64)
        n = len(lengths)
        pointers = np.zeros(n, dtype="<i8")
        if n:
            np.cumsum(lengths[:-1] * self._dtype.itemsize, out=pointers[1:])
        with open(self._idx_path, "wb") as f:
            f.write(HEADER + struct.pack("<Q", 1) + struct.pack("<B", DTYPE_CODES[self._dtype.name]))
            f.write(struct.pack("<Q", n) + struct.pack("<Q", n + 1))
            f.write(lengths.astype("<i4").tobytes())
            f.write(pointers.tobytes())
            f.write(np.arange(n + 1, dtype="<i8").tobytes())


def files(stem: str, index: int, total: int) -> tuple[str, ...]:
    return f"{stem}.bin", f"{stem}.idx"


def read_index(path: Path) -> tuple[np.dtype, np.ndarray, np.ndarray, np.ndarray]:
    """``(dtype, lengths int32 (n,), byte pointers int64 (n,), document indices int64 (m,))`` of an ``.idx`` file."""
    raw = path.read_bytes()
    if raw[:9] != HEADER or struct.unpack_from("<Q", raw, 9)[0] != 1:
        raise FormatError(f"{path} is not a Megatron indexed-dataset index (expected the MMIDIDX header, version 1)")
    code = raw[17]
    names = {v: k for k, v in DTYPE_CODES.items()} | {1: "uint8", 2: "int8", 3: "int16", 5: "int64"}
    if code not in names:
        raise FormatError(f"{path}: unknown dtype code {code}")
    n, m = struct.unpack_from("<QQ", raw, 18)
    off = 34
    lengths = np.frombuffer(raw, dtype="<i4", count=n, offset=off)
    pointers = np.frombuffer(raw, dtype="<i8", count=n, offset=off + 4 * n)
    docs = np.frombuffer(raw, dtype="<i8", count=m, offset=off + 12 * n)
    return np.dtype(names[code]).newbyteorder("<"), lengths, pointers, docs


def read(paths: tuple[Path, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The ids (a read-only memmap) and the document offsets (in ids) from the index."""
    stored, lengths, _, _ = read_index(paths[1])
    ids = np.memmap(paths[0], dtype=stored, mode="r") if paths[0].stat().st_size else np.zeros(0, stored)
    return ids, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


FORMAT = ShardFormat("megatron", files, MegatronWriter, read, dtypes=("uint16", "int32"),
                     what="Megatron indexed dataset .bin + .idx")
