"""Count tables: the pre-token counts of a corpus, the interchange format between counting and training.

A table is what a BPE trainer needs from a corpus and nothing more (a few percent of the corpus
bytes: reference/training.md §7): every distinct pre-token as raw UTF-8 bytes with a 64-bit count,
**sorted by bytes**, so two tables of the same corpus are byte-identical whoever produced them, and
tables of disjoint corpora merge by summing counts. The header records what the counts depend on
(the pre-tokenizer regex and the normaliser); tables with different headers refuse to merge.

File layout (little-endian)::

    b"TKCOUNT1"                  8-byte magic (format version 1)
    u64 H, H bytes               header: canonical JSON (sorted keys)
    u64 N                        number of records
    N x u32                      key lengths
    N x u64                      counts
    sum(lengths) bytes           keys, concatenated in sorted order
    32 bytes                     sha256 of everything above

Reading verifies the checksum before anything is parsed. Writing is atomic (:mod:`tokkit.atomic`).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tokkit.atomic import atomic_file
from tokkit.errors import FormatError, MissingFileError, TokkitError
from tokkit.input_files import read_input_bytes

__all__ = ["CountTable", "CountTableError", "TableMismatchError", "merge_tables", "read_table", "MAGIC"]

MAGIC = b"TKCOUNT1"
_IDENTITY_KEYS = ("pre_tokenizer", "normalizer", "segment_bytes", "text_column")


class CountTableError(FormatError):
    """A file that is not an intact count table."""


class TableMismatchError(TokkitError, ValueError):
    """Tables (or a table and a recipe) that count different pre-tokens."""


@dataclass(frozen=True)
class CountTable:
    """Sorted ``(pre-token bytes, count)`` records and the header that says how they were counted.

    ``header`` holds ``pre_tokenizer`` (``{"split": "isolated", "pattern": regex}``), ``normalizer``
    (``{"nfkc": bool, "lowercase": bool}``), ``segment_bytes``, ``text_column`` and ``sources``
    (``[{"name", "bytes", "rate"}]``, sorted).
    """

    header: Mapping[str, Any]
    keys: tuple[bytes, ...]
    counts: np.ndarray  # (N,) uint64

    @classmethod
    def from_counts(cls, header: Mapping[str, Any], counts: Mapping[bytes, int]) -> "CountTable":
        keys = tuple(sorted(counts))
        arr = np.fromiter((counts[k] for k in keys), dtype=np.uint64, count=len(keys))
        return cls(dict(header), keys, arr)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def total(self) -> int:
        """Number of pre-token occurrences counted."""
        return int(self.counts.sum(dtype=np.uint64))

    @property
    def identity(self) -> dict[str, Any]:
        return {k: self.header.get(k) for k in _IDENTITY_KEYS}

    def to_bytes(self) -> bytes:
        header = json.dumps({**self.header, "records": len(self.keys), "total": self.total}, sort_keys=True,
                            ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        lens = np.fromiter((len(k) for k in self.keys), dtype="<u4", count=len(self.keys))
        body = b"".join([MAGIC, struct.pack("<Q", len(header)), header, struct.pack("<Q", len(self.keys)),
                         lens.tobytes(), self.counts.astype("<u8").tobytes(), b"".join(self.keys)])
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "count table") -> "CountTable":
        if len(data) < len(MAGIC) + 48 or data[:len(MAGIC)] != MAGIC:
            raise CountTableError(f"{where} is not a tokkit count table (expected the {MAGIC!r} magic, found "
                                  f"{data[:8]!r}); make one with `tokkit count SOURCE... -o TABLE`")
        body, digest = data[:-32], data[-32:]
        if hashlib.sha256(body).digest() != digest:
            raise CountTableError(f"{where} is corrupt: its sha256 checksum does not match its contents "
                                  "(truncated or modified); count the corpus again")
        (hlen,) = struct.unpack_from("<Q", body, 8)
        header = json.loads(body[16:16 + hlen].decode("utf-8"))
        pos = 16 + hlen
        (n,) = struct.unpack_from("<Q", body, pos)
        pos += 8
        lens = np.frombuffer(body, dtype="<u4", count=n, offset=pos)
        pos += 4 * n
        counts = np.frombuffer(body, dtype="<u8", count=n, offset=pos).astype(np.uint64)
        pos += 8 * n
        ends = np.cumsum(lens, dtype=np.int64) + pos
        starts = ends - lens
        keys = tuple(body[s:e] for s, e in zip(starts.tolist(), ends.tolist()))
        header.pop("records", None)
        header.pop("total", None)
        return cls(header, keys, counts)

    def write(self, path: str | Path, *, force: bool = False) -> Path:
        """Write atomically (refuses an existing file without ``force``)."""
        with atomic_file(path, force=force) as tmp:
            tmp.write_bytes(self.to_bytes())
        return Path(path)

    def words(self, *, byte_level: bool) -> dict[str, int]:
        """The table as a BPE trainer's word counts: byte-level spelled (``Ġthe``) or plain text."""
        if byte_level:
            from tokkit.formats.hf_json import bytes_to_unicode

            table = bytes_to_unicode()
            trans = {b: table[b] for b in range(256)}
            return {k.decode("latin-1").translate(trans): int(c) for k, c in zip(self.keys, self.counts.tolist())}
        return {k.decode("utf-8"): int(c) for k, c in zip(self.keys, self.counts.tolist())}

    def prune(self, min_count: int) -> tuple["CountTable", dict[str, float]]:
        """Drop pre-tokens seen fewer than ``min_count`` times; the report says what that removed."""
        keep = self.counts >= np.uint64(min_count)
        kept = CountTable({**self.header, "pruned_below": min_count},
                          tuple(k for k, m in zip(self.keys, keep.tolist()) if m), self.counts[keep])
        report = {"min_count": min_count, "records_before": len(self), "records_after": len(kept),
                  "records_dropped_share": 1 - len(kept) / max(len(self), 1),
                  "occurrences_dropped_share": 1 - kept.total / max(self.total, 1)}
        return kept, report


def read_table(path: str | Path) -> CountTable:
    """Read and verify a count table file."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"count table {p} does not exist; make one with `tokkit count SOURCE... -o {p}`")
    raw = read_input_bytes(p, what="count table", expected="expected a count table file: pass the file that "
                           "`tokkit count SOURCE... -o TABLE` wrote")
    return CountTable.from_bytes(raw, where=str(p))


def _merge_sources(tables: Sequence[CountTable]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for t in tables:
        for s in t.header.get("sources", []):
            seen[json.dumps(s, sort_keys=True)] = s
    return [seen[k] for k in sorted(seen)]


def merge_tables(tables: Sequence[CountTable]) -> CountTable:
    """Sum the counts of tables with the same header identity (a k-way merge of the sorted keys)."""
    if not tables:
        raise TableMismatchError("no count table to merge; give at least one")
    first = tables[0].identity
    for t in tables[1:]:
        if t.identity != first:
            diff = sorted(k for k in _IDENTITY_KEYS if t.identity[k] != first[k])
            raise TableMismatchError(
                f"count tables were made with different settings ({', '.join(diff)}): expected {first}, found "
                f"{t.identity}; count all sources with the same recipe (pre-tokenizer, normaliser)")
    if len(tables) == 1:
        return tables[0]
    streams: Iterable[tuple[bytes, int]] = heapq.merge(*(zip(t.keys, t.counts.tolist()) for t in tables))
    keys: list[bytes] = []
    counts: list[int] = []
    for k, c in streams:
        if keys and keys[-1] == k:
            counts[-1] += c
        else:
            keys.append(k)
            counts.append(c)
    header = {**tables[0].header, "sources": _merge_sources(tables)}
    header.pop("pruned_below", None)
    return CountTable(header, tuple(keys), np.array(counts, dtype=np.uint64))
