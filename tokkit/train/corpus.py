"""Training corpora: local text/jsonl/parquet files, folders, globs or a streamed ``datasets`` dataset.

A source is written ``PATH[@RATE]`` (``RATE`` in (0, 1], the share of its documents kept, sampled
with the recipe's seed) or ``hf:NAME[:SPLIT]`` for a hub/local ``datasets`` dataset read in
streaming mode. Documents are: a ``.jsonl`` line's text column, a parquet row's text column,
and for plain text files blocks of whole lines of about 4 KB cut at blank lines (every byte of the
file kept). Text must be UTF-8: a bad byte fails with the file name and byte offset, or, with
``skip_bad_utf8``, the document is skipped and counted. ``skip_bad_utf8=None`` (the default) is a reader
whose command offers no skipping (``compare``, ``extend`` ...): its error names only the conversion, while
``False`` (a recipe's value: ``train-bpe``, ``count``, ``encode``) also names ``--skip-bad-utf8``.

The held-out split is deterministic: a document is held out when a CRC of ``seed:source:index``
falls under the held-out share, until ``held_out_max_bytes`` is reached.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tokkit.errors import FormatError, MissingFileError, TokkitError
from tokkit.input_files import regular_file
from tokkit.text import FIX_OR_SKIP, NotUtf8Error, decode_utf8

__all__ = ["Source", "Corpus", "SEGMENT_BYTES", "parse_sources", "source_documents", "located_documents", "line_ranges",
           "parquet_row_groups", "EmptyCorpusError", "NotUtf8Error"]

LOG = logging.getLogger(__name__)

_BLOCK = 4096
#: Plain-text files are cut into documents afresh in each range of this size (line-aligned): the unit a
#: counting worker may take on its own (recorded in count-table headers).
SEGMENT_BYTES = 64 << 20


class EmptyCorpusError(TokkitError, ValueError):
    """The sources hold no text to train on."""


@dataclass(frozen=True)
class Source:
    """One file (or ``hf:`` dataset) and the share of its documents to keep."""

    path: str
    rate: float = 1.0
    dataset: bool = False


def _split_rate(spec: str) -> tuple[str, float]:
    head, sep, tail = spec.rpartition("@")
    if sep and head:
        try:
            rate = float(tail)
        except ValueError:
            return spec, 1.0  # an @ that is part of the file name
        if not 0.0 < rate <= 1.0:
            raise FormatError(f"source {spec!r}: sampling rate {rate} is outside (0, 1]; write PATH@0.5 to keep half the documents")
        return head, rate
    return spec, 1.0


def parse_sources(specs: Iterable[str | Path], *, what: str = "corpus source") -> list[Source]:
    """Expand ``PATH[@RATE]`` specs (files, folders, globs) and ``hf:NAME[:SPLIT]`` into sources.

    ``what`` names the specs in errors (``"--keep-text"``: the option they came from).

    Raises:
        MissingFileError: a path or glob that matches nothing.
        FormatError: a path that is a device, FIFO or socket (reading it may never end).
        EmptyCorpusError: no source given.
    """
    out: list[Source] = []
    for spec in map(str, specs):
        if spec.startswith("hf:"):
            name, rate = _split_rate(spec[3:])
            out.append(Source(name, rate, dataset=True))
            continue
        path, rate = _split_rate(spec)
        p = Path(path).expanduser()
        if p.is_file():
            files = [p]
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise MissingFileError(f"{what} {spec!r} is a folder without files (hidden ones are not read); give a "
                                       "text/jsonl/parquet file, or a folder that holds some")
        elif p.exists():  # a device, FIFO or socket: refused by name, never read
            regular_file(p, what=what, expected="give a text/jsonl/parquet file, folder or glob")
            files = []
        else:
            files = sorted(Path(f) for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            raise MissingFileError(f"{what} {spec!r} matches no file; give an existing file, folder or glob")
        out += [Source(str(f), rate) for f in files]
    if not out:
        raise EmptyCorpusError("no corpus source given; pass at least one text/jsonl/parquet file, folder or glob")
    return out


def _decode(raw: bytes, where: str, offset: int, skip: bool | None) -> str | None:
    """``skip`` None: the reader's command has no ``--skip-bad-utf8``, so the error does not offer it."""
    if skip is None:
        return decode_utf8(raw, where, offset)
    return decode_utf8(raw, where, offset, skip=skip, fix=FIX_OR_SKIP)


def line_ranges(path: str, chunk: int) -> list[tuple[int, int]]:
    """``[start, end)`` byte ranges that cover ``path``, each starting at the first line start at or after
    a multiple of ``chunk`` (so a range never cuts a line, and the ranges depend on the file alone)."""
    size = os.path.getsize(path)
    starts = [0]
    with open(path, "rb") as f:
        k = 1
        while k * chunk < size:
            f.seek(k * chunk - 1)
            f.readline()  # to the end of the line holding byte k*chunk - 1
            pos = f.tell()
            if pos >= size:
                break
            if pos > starts[-1]:
                starts.append(pos)
            k = max(k + 1, pos // chunk + 1)
    return list(zip(starts, starts[1:] + [size]))


def _text_blocks(path: str, skip: bool | None, bad: list[int], start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    buf: list[bytes] = []
    size = 0
    pos = start
    with open(path, "rb") as f:
        f.seek(start)
        for line in f:
            if end is not None and pos >= end:
                break
            buf.append(line)
            size += len(line)
            pos += len(line)
            if size >= _BLOCK and line.strip() == b"":
                text = _decode(b"".join(buf), path, start, skip)
                if text is None:
                    bad.append(1)
                else:
                    yield start, text
                buf, size, start = [], 0, pos
    if buf:
        text = _decode(b"".join(buf), path, start, skip)
        if text is None:
            bad.append(1)
        else:
            yield start, text


def _column(row: Any, column: str, where: str) -> str:
    if not isinstance(row, dict) or column not in row:
        keys = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise FormatError(f"{where}: no text column {column!r} (found {keys}); pass --text-column NAME")
    value = row[column]
    if not isinstance(value, str):
        raise FormatError(f"{where}: column {column!r} holds {type(value).__name__}, expected text")
    return value


def _jsonl(path: str, column: str, skip: bool | None, bad: list[int], start: int = 0,
           end: int | None = None) -> Iterator[tuple[int, str]]:
    pos = start
    with open(path, "rb") as f:
        f.seek(start)
        for n, line in enumerate(f, 1):
            if end is not None and pos >= end:
                break
            where = f"{path} line {n}" if start == 0 else f"{path} line at byte offset {pos}"
            begin, pos = pos, pos + len(line)
            if not line.strip():
                continue
            text = _decode(line, where, begin, skip)
            if text is None:
                bad.append(1)
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise FormatError(f"{where} is not JSON ({e.msg}); expected one JSON object per line") from None
            yield begin, _column(row, column, where)


def parquet_row_groups(path: str) -> list[tuple[int, int]]:
    """``(rows, uncompressed bytes)`` of each row group of a parquet file (the unit a worker may take on its own)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as e:  # pyarrow raises its own error types for non-parquet input
        raise FormatError(f"{path} is not a parquet file ({e})") from None
    return [(meta.row_group(i).num_rows, meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups)]


def _parquet(path: str, column: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """Rows of row groups ``[start, end)`` (all by default) as ``(row number in the file, text)``."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own error types for non-parquet input
        raise FormatError(f"{path} is not a parquet file ({e})") from None
    if column not in pf.schema_arrow.names:
        raise FormatError(f"{path}: no text column {column!r} (found {pf.schema_arrow.names}); pass --text-column NAME")
    import pyarrow as pa

    kind = pf.schema_arrow.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise FormatError(f"{path}: column {column!r} holds {kind}, expected text (string); pass --text-column with "
                          f"a string column (the string columns: "
                          f"{[f.name for f in pf.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)] or 'none'})")
    groups = list(range(start, pf.metadata.num_row_groups if end is None else end))
    row = sum(pf.metadata.row_group(i).num_rows for i in range(start))
    if not groups:
        return
    for batch in pf.iter_batches(columns=[column], batch_size=1024, row_groups=groups):
        for v in batch.column(0).to_pylist():
            if v:
                yield row, v
            row += 1


def _dataset(name: str, column: str) -> Iterator[str]:
    from datasets import load_dataset

    base, _, split = name.partition(":")
    try:
        ds = load_dataset(base, split=split or "train", streaming=True)
    except Exception as e:  # datasets raises many types (offline hub, unknown split, no data files)
        raise MissingFileError(f"dataset hf:{name} could not be opened ({type(e).__name__}: {e}); expected a local dataset "
                               "folder/file or a hub dataset reachable online, written hf:NAME[:SPLIT]") from None
    for i, row in enumerate(ds):
        yield i, _column(row, column, f"dataset {name} row {i}")


def located_documents(source: Source, *, text_column: str = "text", skip_bad_utf8: bool | None = None, seed: int = 0,
                      bad: list[int] | None = None, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """The documents of one source with their location: ``(loc, text)``.

    ``loc`` is the byte offset where the document starts in a text or jsonl file, its row number in a
    parquet file or ``datasets`` dataset. ``[start, end)`` is a byte range of a text or jsonl file (for
    text files one :func:`line_ranges` segment), a range of row groups of a parquet file
    (:func:`parquet_row_groups`); by default the whole source.

    Plain text is cut into blocks of whole lines of about 4 KB at blank lines, and the cutting starts
    afresh at each :data:`SEGMENT_BYTES` range (:func:`line_ranges`), so a huge file reads as the same
    documents whether one process reads it or each range goes to another worker. ``PATH@RATE``
    sampling draws from one random stream per file (a sampled file is read by one worker).

    ``skip_bad_utf8``: True skips (and counts in ``bad``) documents that are not UTF-8; False and None fail on
    them, None for a caller that offers no skipping (the error then does not suggest ``--skip-bad-utf8``).
    """
    bad = [] if bad is None else bad
    suffix = Path(source.path).suffix.lower()
    if source.dataset:
        docs: Iterable[tuple[int, str]] = _dataset(source.path, text_column)
    elif suffix in (".jsonl", ".ndjson"):
        docs = _jsonl(source.path, text_column, skip_bad_utf8, bad, start, end)
    elif suffix == ".parquet":
        docs = _parquet(source.path, text_column, start, end)
    else:
        # a whole file reads segment by segment; a given range must be one of its segments (plan_shards)
        ranges = line_ranges(source.path, SEGMENT_BYTES) if start == 0 and end is None else [(start, end)]
        docs = (d for a, b in ranges for d in _text_blocks(source.path, skip_bad_utf8, bad, a, b))
    if source.rate >= 1.0:
        yield from docs
        return
    rng = random.Random(f"{seed}:{source.path}")
    for d in docs:
        if rng.random() < source.rate:
            yield d


def source_documents(source: Source, *, text_column: str = "text", skip_bad_utf8: bool | None = None, seed: int = 0,
                     bad: list[int] | None = None, start: int = 0, end: int | None = None) -> Iterator[str]:
    """The documents of one source, as :func:`located_documents` without the locations."""
    for _, text in located_documents(source, text_column=text_column, skip_bad_utf8=skip_bad_utf8, seed=seed, bad=bad,
                                     start=start, end=end):
        yield text


@dataclass
class Corpus:
    """The documents of ``sources``, split into training and held-out documents.

    ``train_docs()`` can be iterated several times (two-stage training) and yields the same
    documents each time; ``held_out`` and the counters are filled during the first pass.
    ``datasets`` objects (``IterableDataset``/``Dataset``) and plain iterables of strings are
    accepted as in-memory sources too (``extra``); a one-shot iterator is kept in memory after the
    first pass, a re-iterable (list, ``datasets`` object) is read again.
    """

    sources: Sequence[Source]
    text_column: str = "text"
    skip_bad_utf8: bool | None = None  # None: no --skip-bad-utf8 to offer (see located_documents)
    held_out_share: float = 0.0
    held_out_max_bytes: int = 2_000_000
    seed: int = 0
    extra: Sequence[Iterable[Any]] = ()
    held_out: list[str] = field(default_factory=list)
    n_docs: int = 0
    n_bytes: int = 0
    n_bad_utf8: int = 0
    _passes: int = 0

    def _docs(self, bad: list[int]) -> Iterator[tuple[str, str]]:
        for s in self.sources:
            for d in source_documents(s, text_column=self.text_column, skip_bad_utf8=self.skip_bad_utf8, seed=self.seed,
                                      bad=bad):
                yield s.path, d
        for k, it in enumerate(self.extra):
            if iter(it) is it:  # a one-shot iterator: keep its rows for the later passes
                it = list(it)
                self.extra = [*self.extra[:k], it, *self.extra[k + 1:]]
            for i, row in enumerate(it):
                yield f"<iterable {k}>", (row if isinstance(row, str) else _column(row, self.text_column, f"iterable {k} row {i}"))

    def train_docs(self) -> Iterator[str]:
        """Training documents (held-out ones removed); raises EmptyCorpusError after an empty pass."""
        first = self._passes == 0
        self._passes += 1
        bad: list[int] = []
        held_bytes = 0
        n_train = 0
        for i, (src, doc) in enumerate(self._docs(bad)):
            nb = len(doc.encode("utf-8")) if first or self.held_out_share else 0
            if self.held_out_share and held_bytes < self.held_out_max_bytes:
                # keyed on the file name, not its folder: the same corpus splits the same way wherever it lives
                h = zlib.crc32(f"{self.seed}:{Path(src).name}:{i}".encode()) / 2**32
                if h < self.held_out_share:
                    held_bytes += nb
                    if first:
                        self.held_out.append(doc)
                    continue
            if first:
                self.n_docs += 1
                self.n_bytes += nb
            n_train += 1
            yield doc
        if first:
            self.n_bad_utf8 = len(bad)
            if bad:
                LOG.warning("skipped %d document(s) that are not UTF-8", len(bad))
        if n_train == 0 or (first and self.n_bytes == 0):
            where = ", ".join(s.path for s in self.sources[:3]) + (" ..." if len(self.sources) > 3 else "")
            what = "training text" if self.held_out_share else "text"
            raise EmptyCorpusError(
                f"the corpus ({where}) holds no {what} ({n_train} documents"
                f"{f', {self.n_bad_utf8} skipped as non-UTF-8' if self.n_bad_utf8 else ''}); "
                "give non-empty UTF-8 text files" + (", or lower the held-out share" if self.held_out_share else ""))

    def sample(self, max_bytes: int = 100_000, max_doc_chars: int = 20_000) -> list[str]:
        """The first documents (each cut to ``max_doc_chars``) up to ``max_bytes``: a cheap partial read for lint."""
        out: list[str] = []
        size = 0
        for _, doc in self._docs([]):
            out.append(doc[:max_doc_chars])
            size += len(out[-1])
            if size >= max_bytes:
                break
        return out

    def batches(self, size: int = 256) -> Iterator[list[str]]:
        """``train_docs()`` in lists of ``size`` documents (what ``train_from_iterator`` reads fastest)."""
        batch: list[str] = []
        for d in self.train_docs():
            batch.append(d)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
