"""``TokenShards``: read a folder written by ``tokkit encode`` — documents by index, fixed-length windows.

For users who train with plain PyTorch: ``shards[i]`` is document ``i``'s ids (a read-only numpy
view of the memory-mapped shard file for the numpy, Megatron and datatrove formats; parquet shards
are read into memory one at a time), and ``shards.window(k, length)`` is the ``k``-th of the
non-overlapping windows of ``length`` ids over all documents back to back (documents are separated
by the EOS/BOS ids the manifest lists; the last partial window is dropped), the usual packing for
causal-LM pre-training: take ``length = block_size + 1`` and split into inputs and targets.
Everything is numpy; ``torch.from_numpy(np.asarray(x, dtype=np.int64))`` makes a tensor.

Example:
    >>> shards = TokenShards("out/tokens")                               # doctest: +SKIP
    >>> len(shards), shards.tokens, shards[0][:5]                       # doctest: +SKIP
    >>> x = shards.window(0, 1025); inputs, targets = x[:-1], x[1:]      # doctest: +SKIP
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from tokkit.train.shards import get_format
from tokkit.train.shards.manifest import Manifest

__all__ = ["TokenShards"]


class TokenShards:
    """The documents and windows of a token-shard folder (``manifest.json`` + shard files)."""

    def __init__(self, folder: str | Path) -> None:
        self.manifest = Manifest.read(folder)
        self.folder = Path(folder)
        self._fmt = get_format(self.manifest.format)
        self.dtype = np.dtype(self.manifest.dtype).newbyteorder("<")
        shards = self.manifest.shards
        self._doc_starts = np.cumsum([0] + [s["documents"] for s in shards], dtype=np.int64)
        self._tok_starts = np.cumsum([0] + [s["tokens"] for s in shards], dtype=np.int64)
        self._read = lru_cache(maxsize=1 if self._fmt.name == "parquet" else None)(self._load)

    def _load(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        paths = tuple(self.folder / f["name"] for f in self.manifest.shards[k]["files"])
        return self._fmt.read(paths, self.dtype)

    def __len__(self) -> int:
        """Number of documents."""
        return int(self._doc_starts[-1])

    @property
    def tokens(self) -> int:
        """Number of ids in all shards."""
        return int(self._tok_starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        """The ids of document ``i`` (BOS/EOS included as written), shape ``(n,)``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"document {i} is out of range: the folder holds {n} documents")
        i %= n
        k = int(np.searchsorted(self._doc_starts, i, side="right")) - 1
        ids, offsets = self._read(k)
        j = i - int(self._doc_starts[k])
        return ids[offsets[j]:offsets[j + 1]]

    def num_windows(self, length: int) -> int:
        """How many whole windows of ``length`` ids the folder holds."""
        return self.tokens // length

    def window(self, k: int, length: int) -> np.ndarray:
        """Ids ``[k * length, (k + 1) * length)`` of all documents back to back, shape ``(length,)``."""
        if not 0 <= k < self.num_windows(length):
            raise IndexError(f"window {k} of {length} ids is out of range: the folder holds {self.num_windows(length)}")
        start, end = k * length, (k + 1) * length
        parts = []
        s = int(np.searchsorted(self._tok_starts, start, side="right")) - 1
        while start < end:
            ids, _ = self._read(s)
            a = start - int(self._tok_starts[s])
            take = min(end - start, len(ids) - a)
            parts.append(ids[a:a + take])
            start += take
            s += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
