"""Parquet token shards that ``datasets.load_dataset`` opens: one row per document, column ``input_ids``.

Files are named as on the HF hub, ``train-00000-of-00012.parquet``, so ``load_dataset("parquet",
data_files="OUT/*.parquet")`` and ``load_dataset(OUT)`` both give a ``train`` split with
``input_ids: Sequence(Value("uint16"))`` (or ``uint32``). Documents are buffered into row groups of
about :data:`ROW_GROUP_TOKENS` ids (zstd-compressed), so the writer holds at most one row group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tokkit.train.shards import ShardFormat

__all__ = ["FORMAT", "ParquetWriter", "ROW_GROUP_TOKENS", "COLUMN"]

#: Ids per row group (a row group closes after the document that reaches it): 2-4 MB of ids.
ROW_GROUP_TOKENS = 1 << 20
COLUMN = "input_ids"


class ParquetWriter:
    """Buffers documents into row groups of about :data:`ROW_GROUP_TOKENS` ids."""

    def __init__(self, paths: tuple[Path, ...], dtype: np.dtype, tokenizer: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._type = pa.from_numpy_dtype(dtype.newbyteorder("="))
        self._schema = pa.schema([pa.field(COLUMN, pa.list_(self._type))])
        self._writer = pq.ParquetWriter(paths[0], self._schema, compression="zstd")
        self._dtype = dtype
        self._docs: list[bytes] = []
        self._lengths: list[int] = [0]
        self._tokens = 0

    def add(self, data: bytes, n_tokens: int, *, src: str, loc: int) -> None:
        self._docs.append(data)
        self._lengths.append(n_tokens)
        self._tokens += n_tokens
        if self._tokens >= ROW_GROUP_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if len(self._lengths) == 1:
            return
        pa = self._pa
        values = np.frombuffer(b"".join(self._docs), dtype=self._dtype)
        offsets = np.cumsum(self._lengths, dtype=np.int32)
        column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(self._dtype.newbyteorder("=")),
                                                                       type=self._type))
        self._writer.write_table(pa.Table.from_arrays([column], schema=self._schema), row_group_size=len(self._docs))
        self._docs, self._lengths, self._tokens = [], [0], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def files(stem: str, index: int, total: int) -> tuple[str, ...]:
    return (f"train-{index:05d}-of-{total:05d}.parquet",)


def read(paths: tuple[Path, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The ids and document offsets of the shard (read into memory: parquet pages are compressed)."""
    import pyarrow.parquet as pq

    column = pq.read_table(paths[0], columns=[COLUMN]).column(COLUMN).combine_chunks()
    if len(column) == 0:
        return np.zeros(0, dtype), np.zeros(1, np.int64)
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.values.to_numpy(zero_copy_only=False)
    return values[offsets[0]:offsets[-1]], offsets - offsets[0]


FORMAT = ShardFormat("parquet", files, ParquetWriter, read, what="parquet, one input_ids row per document")
