"""Raw numpy token files with a dolma metadata index: the nanoGPT / OLMo / dolma layout.

``part-00000.npy`` holds the ids of every document back to back as raw little-endian ``uint16`` or
``uint32`` (no ``.npy`` header, as dolma's ``tokens`` writes them and OLMo reads them:
``np.memmap(path, dtype=np.uint16, mode="r")``; nanoGPT's ``train.bin`` is the same bytes).
``part-00000.csv.gz`` has one row per document, ``start,end,id,src,loc`` (dolma's
``MemmapMetadata``: token range ``[start, end)`` in the ``.npy`` file, then the source file and the
document's location in it — its byte offset in a text/jsonl file, its row in a parquet file or
dataset; ``id`` is left empty: tokkit does not carry document ids). The gzip stream has no file name
and a zero time stamp, so equal shards are equal bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np

from tokkit.train.shards import ShardFormat

__all__ = ["FORMAT", "NumpyWriter"]

_BUFFER = 1 << 20


class NumpyWriter:
    """Streams ids to the ``.npy`` file and one metadata row per document to the ``.csv.gz`` file."""

    def __init__(self, paths: tuple[Path, ...], dtype: np.dtype, tokenizer: str) -> None:
        self._ids = open(paths[0], "wb", buffering=_BUFFER)
        self._raw = open(paths[1], "wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        self._text = io.TextIOWrapper(self._gz, encoding="utf-8", newline="", write_through=False)
        self._rows = csv.writer(self._text)
        self._pos = 0

    def add(self, data: bytes, n_tokens: int, *, src: str, loc: int) -> None:
        self._ids.write(data)
        self._rows.writerow((self._pos, self._pos + n_tokens, "", src, loc))
        self._pos += n_tokens

    def close(self) -> None:
        self._ids.close()
        self._text.close()  # closes the gzip stream, which leaves the file to us
        self._raw.close()


def files(stem: str, index: int, total: int) -> tuple[str, ...]:
    return f"{stem}.npy", f"{stem}.csv.gz"


def read(paths: tuple[Path, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The ids (a read-only memmap) and the document offsets from the metadata rows."""
    ids = _memmap(paths[0], dtype)
    with gzip.open(paths[1], "rt", encoding="utf-8", newline="") as f:
        ends = [int(row[1]) for row in csv.reader(f)]
    return ids, np.asarray([0, *ends], dtype=np.int64)


def _memmap(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.stat().st_size == 0:  # numpy cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


FORMAT = ShardFormat("numpy", files, NumpyWriter, read, what="raw .npy ids + dolma .csv.gz index")
