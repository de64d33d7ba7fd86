"""datatrove's tokenized files: ``part-00000.ds`` + ``.ds.index`` + ``.ds.metadata``.

The layout of datatrove's ``DocumentTokenizer`` (``datatrove/pipeline/tokens/tokenizer.py``,
``TokenizedFile``) without its shuffling step (tokkit keeps the corpus order; shuffle at training
time): ``.ds`` holds the ids back to back, little-endian ``uint16`` (``token_size`` 2) or ``uint32``
(4); ``.ds.index`` the end of every document in tokens as ``uint64``; ``.ds.metadata`` three lines,
``tokenizer|token_size``, the token count, and the count in words (``humanize.metric(n, "T")``).
datatrove's and nanotron's ``DatatroveFolderDataset(folder, seq_len, token_size=...)`` read the folder.
"""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import numpy as np

from tokkit.train.shards import ShardFormat

__all__ = ["FORMAT", "DatatroveWriter", "metric"]

_BUFFER = 1 << 20


def metric(value: int, unit: str = "T", precision: int = 3) -> str:
    """``1234567 -> "1.23 MT"``: the count as ``humanize.metric`` (4.x) writes it in datatrove's metadata file."""
    exponent = int(math.floor(math.log10(abs(value)))) if value else 0
    bucket = exponent // 3 * 3
    scaled = value / 10**bucket
    digits = max(0, precision - exponent % 3 - 1)
    if round(abs(scaled), digits) >= 10 ** (exponent % 3 + 1):  # a rounding carry (999.6 -> 1.00 k)
        exponent += 1
        scaled /= 10 ** (exponent // 3 * 3 - bucket)
        digits = max(0, precision - exponent % 3 - 1)
    prefix = "kMGTPEZYRQ"[exponent // 3 - 1] if exponent >= 3 else ""
    return f"{scaled:.{digits}f} {prefix}{unit}"


class DatatroveWriter:
    """Streams ids to ``.ds``; writes the ``.ds.index`` and ``.ds.metadata`` files at ``close``."""

    def __init__(self, paths: tuple[Path, ...], dtype: np.dtype, tokenizer: str) -> None:
        self._ds = open(paths[0], "wb", buffering=_BUFFER)
        self._paths = paths
        self._size = dtype.itemsize
        self._tokenizer = tokenizer
        self._ends = array("Q")
        self._pos = 0

    def add(self, data: bytes, n_tokens: int, *, src: str, loc: int) -> None:
        self._ds.write(data)
        self._pos += n_tokens
        self._ends.append(self._pos)

    def close(self) -> None:
        self._ds.close()
        ends = np.frombuffer(self._ends, dtype=np.uint64) if self._ends else np.zeros(0, np.uint64)
        self._paths[1].write_bytes(ends.astype("<u8").tobytes())
        self._paths[2].write_text(f"{self._tokenizer}|{self._size}\n{self._pos}\n{metric(self._pos)}", encoding="utf-8")


def files(stem: str, index: int, total: int) -> tuple[str, ...]:
    return f"{stem}.ds", f"{stem}.ds.index", f"{stem}.ds.metadata"


def read(paths: tuple[Path, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The ids (a read-only memmap) and the document offsets from the ``.ds.index`` ends."""
    ids = np.memmap(paths[0], dtype=dtype, mode="r") if paths[0].stat().st_size else np.zeros(0, dtype)
    ends = np.fromfile(paths[1], dtype="<u8").astype(np.int64)
    return ids, np.concatenate([[0], ends])


FORMAT = ShardFormat("datatrove", files, DatatroveWriter, read, what="datatrove .ds + .ds.index + .ds.metadata")
