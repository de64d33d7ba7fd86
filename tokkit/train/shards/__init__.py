"""Token shard formats that pre-training code reads without conversion; one module per format.

Every format stores each document's ids contiguously, little-endian, in the narrowest dtype the
vocabulary fits (:func:`token_dtype`), with an index of document boundaries:

========== =========================================== ============================================
format     files of shard ``part-00000``                read by
========== =========================================== ============================================
numpy      ``.npy`` (raw ids), ``.csv.gz`` (start, end, nanoGPT (``np.memmap``), OLMo / OLMo-core,
           id, src, loc per document)                  dolma's ``tokens`` layout
megatron   ``.bin`` + ``.idx`` (``MMIDIDX`` index)      Megatron-LM / NeMo ``IndexedDataset``
datatrove  ``.ds``, ``.ds.index`` (uint64 ends),       datatrove / nanotron ``DatatroveFolderDataset``
           ``.ds.metadata``
parquet    ``train-00000-of-NNNNN.parquet``             ``datasets.load_dataset``, pandas, pyarrow
           (column ``input_ids``)
========== =========================================== ============================================

A writer (:class:`ShardWriter`) receives one document at a time as the bytes of its ids, so its
memory is one document plus its own small buffers; ``close`` finishes the files. Readers give the
ids and the document offsets back for :class:`tokkit.train.shards.reader.TokenShards`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from tokkit.errors import UnknownNameError, VocabMismatchError

__all__ = ["ShardWriter", "ShardFormat", "FORMATS", "get_format", "token_dtype", "shard_stem"]


class ShardWriter(Protocol):
    """Writes one shard: ``add`` each document in order, then ``close``."""

    def add(self, data: bytes, n_tokens: int, *, src: str, loc: int) -> None:
        """Append one document: ``data`` holds its ``n_tokens`` ids in the shard's dtype, little-endian."""

    def close(self) -> None:
        """Finish every file of the shard (indexes, footers)."""


@dataclass(frozen=True)
class ShardFormat:
    """One on-disk layout: the files of a shard, its writer, and how to read it back."""

    name: str
    #: File names of shard ``stem`` (``stem``, ``index of the shard``, ``number of shards``) -> names.
    files: Callable[[str, int, int], tuple[str, ...]]
    #: ``(paths, dtype, tokenizer name)`` -> writer, ``paths`` in the order of ``files``.
    writer: Callable[[tuple[Path, ...], np.dtype, str], ShardWriter]
    #: ``(paths, dtype)`` -> ``(ids as a 1-D array or memmap, document offsets int64 (n_docs + 1,))``.
    read: Callable[[tuple[Path, ...], np.dtype], tuple[np.ndarray, np.ndarray]]
    #: The id dtypes the format may use, narrowest first (:func:`token_dtype` picks one).
    dtypes: tuple[str, ...] = ("uint16", "uint32")
    what: str = ""


def shard_stem(index: int) -> str:
    """``part-00007``: the base name of shard ``index``."""
    return f"part-{index:05d}"


def token_dtype(vocab_size: int, fmt: ShardFormat) -> np.dtype:
    """The narrowest dtype of ``fmt`` that holds every id below ``vocab_size``.

    Raises:
        VocabMismatchError: no dtype of the format is wide enough.
    """
    for name in fmt.dtypes:
        dt = np.dtype(name)
        if vocab_size - 1 <= np.iinfo(dt).max:
            return dt.newbyteorder("<")
    widest = np.dtype(fmt.dtypes[-1])
    raise VocabMismatchError(f"the tokenizer has {vocab_size:,} ids but the {fmt.name} format stores ids as "
                             f"{widest.name} (at most {int(np.iinfo(widest).max) + 1:,} ids); use a smaller vocabulary"
                             + ("" if fmt.name == "parquet" else " or another --format"))


def _registry() -> dict[str, ShardFormat]:
    from tokkit.train.shards import datatrove_tokens, megatron_indexed, numpy_tokens, parquet_tokens

    return {f.name: f for f in (numpy_tokens.FORMAT, megatron_indexed.FORMAT, datatrove_tokens.FORMAT,
                                parquet_tokens.FORMAT)}


FORMATS: tuple[str, ...] = ("numpy", "megatron", "datatrove", "parquet")


def get_format(name: str) -> ShardFormat:
    """The format called ``name``.

    Raises:
        UnknownNameError: an unknown name (the message lists the known ones).
    """
    formats = _registry()
    if name not in formats:
        raise UnknownNameError(f"unknown token shard format {name!r}; expected one of: {', '.join(FORMATS)}")
    return formats[name]
