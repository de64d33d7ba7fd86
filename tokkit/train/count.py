"""``count_corpus``: read, normalise, pre-tokenize and count a corpus into a :class:`CountTable`.

This is the embarrassingly parallel three quarters of BPE training (reference/training.md §7). The
corpus is cut into **shards** that depend only on the files (:func:`plan_shards`): a jsonl file in
line-aligned byte ranges of ``shard_bytes``, a plain-text file in its :data:`SEGMENT_BYTES`
document segments, a ``PATH@RATE`` file, a parquet file or a ``datasets`` source whole. Each shard is
counted with HF ``tokenizers``' own normaliser and ``Split`` pre-tokenizer (native code, the exact
pre-tokens the trainer sees; pure-ASCII documents go through the same regex in the ``regex``
module, which agrees with HF's Oniguruma on every ASCII character — tested exhaustively — and
avoids one Rust-to-Python crossing per pre-token), and partial tables are summed. The engines only decide *where* shards
run — in this process, in a local process pool (``engine="local"``), or as Ray Data tasks on a
laptop or a cluster (:mod:`tokkit.train.count_ray`) — so the table is byte-identical whichever ran it.

Documents are counted as the trainer reads them (the same cutting of text files into documents);
a count table counts *every* document: the held-out share of ``train-bpe`` does not apply.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterator, Sequence

from tokkit.config import peak_rss_mb
from tokkit.train.corpus import SEGMENT_BYTES, Source, line_ranges, parse_sources, source_documents
from tokkit.train.count_table import CountTable
from tokkit.train.domain import GPT2_PATTERN, expand_domain_tokens, pretokenize_pattern
from tokkit.train.recipe import Kind, TrainRecipe

__all__ = ["CountSpec", "Piece", "Shard", "CountStats", "plan_shards", "count_shard", "count_corpus", "DEFAULT_SHARD_BYTES"]

LOG = logging.getLogger(__name__)

#: Work unit for jsonl files (line-aligned); any value gives the same table.
DEFAULT_SHARD_BYTES = 32 << 20


@dataclass(frozen=True)
class CountSpec:
    """What the counts depend on: pre-tokenizer regex, normaliser, how documents are read."""

    pattern: str = GPT2_PATTERN
    nfkc: bool = False
    lowercase: bool = False
    text_column: str = "text"
    skip_bad_utf8: bool = False
    seed: int = 0

    @classmethod
    def from_recipe(cls, recipe: TrainRecipe) -> "CountSpec":
        """The spec whose table trains ``recipe`` (domain tokens change the pre-tokenizer of the bpe kind)."""
        pattern = GPT2_PATTERN
        if recipe.kind == Kind.BPE:
            pattern = pretokenize_pattern(expand_domain_tokens(recipe.domain_tokens, recipe.domain_token_sets))
        return cls(pattern, recipe.nfkc, recipe.lowercase, recipe.text_column, recipe.skip_bad_utf8, recipe.seed)

    def identity(self) -> dict[str, Any]:
        return {"pre_tokenizer": {"split": "isolated", "pattern": self.pattern},
                "normalizer": {"nfkc": self.nfkc, "lowercase": self.lowercase},
                "segment_bytes": SEGMENT_BYTES, "text_column": self.text_column}


@dataclass(frozen=True)
class Piece:
    """A byte range of a text or jsonl file, a range of row groups of a parquet file (``end`` None: to the end), or a whole source."""

    source: Source
    start: int = 0
    end: int | None = None


@dataclass(frozen=True)
class Shard:
    """One unit of counting work: pieces of about ``shard_bytes`` (small files are grouped)."""

    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class CountStats:
    """What counting read and cost."""

    shards: int
    documents: int
    bytes: int
    skipped_bad_utf8: int
    seconds: float
    peak_rss_mb: float
    engine: str
    workers: int

    def summary(self, table: CountTable, out: str | Path | None = None) -> str:
        mb_s = self.bytes / 1e6 / self.seconds if self.seconds else float("nan")
        lines = [f"counted {self.documents} documents, {self.bytes / 1e6:.2f} MB in {self.shards} shards"
                 + (f" -> {out}" if out else ""),
                 f"  table        {len(table)} distinct pre-tokens, {table.total} occurrences",
                 f"  cost         {self.seconds:.1f}s ({mb_s:.2f} MB/s with {self.workers} {self.engine} worker(s)); "
                 f"peak memory {self.peak_rss_mb:.0f} MB (this process)"]
        if self.skipped_bad_utf8:
            lines.append(f"  warning      skipped {self.skipped_bad_utf8} non-UTF-8 document(s)")
        return "\n".join(lines)


def _row_group_pieces(s: Source, shard_bytes: int) -> list[tuple[Piece, int]]:
    """Runs of consecutive row groups of a parquet file, each of about ``shard_bytes`` (uncompressed)."""
    from tokkit.train.corpus import parquet_row_groups

    out: list[tuple[Piece, int]] = []
    first = size = 0
    groups = parquet_row_groups(s.path)
    for i, (_, nbytes) in enumerate(groups):
        if i > first and size + nbytes > shard_bytes:
            out.append((Piece(s, first, i), size))
            first, size = i, 0
        size += nbytes
    if groups:
        out.append((Piece(s, first, len(groups)), size))
    return out


def plan_shards(sources: Sequence[Source], *, shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[Shard]:
    """Cut ``sources`` into shards that depend on the files only (never on the number of workers).

    Big files are cut into pieces (jsonl: line ranges of ``shard_bytes``; text: its document
    segments; parquet: runs of row groups of about ``shard_bytes`` uncompressed); consecutive small
    files are grouped until a shard holds ``shard_bytes``.
    """
    pieces: list[tuple[Piece, int]] = []
    for s in sources:
        suffix = Path(s.path).suffix.lower()
        if suffix == ".parquet" and s.rate >= 1.0 and not s.dataset:
            pieces += _row_group_pieces(s, shard_bytes)
        elif s.dataset or suffix == ".parquet" or s.rate < 1.0:
            pieces.append((Piece(s), shard_bytes if s.dataset else os.path.getsize(s.path)))
        else:
            chunk = shard_bytes if suffix in (".jsonl", ".ndjson") else SEGMENT_BYTES
            pieces += [(Piece(s, a, b), b - a) for a, b in line_ranges(s.path, chunk)]
    out: list[Shard] = []
    group: list[Piece] = []
    size = 0
    for p, n in pieces:
        if group and size + n > shard_bytes:
            out.append(Shard(tuple(group)))
            group, size = [], 0
        group.append(p)
        size += n
    if group:
        out.append(Shard(tuple(group)))
    return out


@lru_cache(maxsize=4)
def _fast(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


@lru_cache(maxsize=4)
def _pipeline(spec: CountSpec) -> tuple[Any, Any]:
    from tokenizers import Regex, normalizers, pre_tokenizers

    parts = ([normalizers.NFKC()] if spec.nfkc else []) + ([normalizers.Lowercase()] if spec.lowercase else [])
    norm = None if not parts else parts[0] if len(parts) == 1 else normalizers.Sequence(parts)
    return norm, pre_tokenizers.Split(Regex(spec.pattern), behavior="isolated")


def count_shard(shard: Shard, spec: CountSpec) -> tuple[dict[bytes, int], tuple[int, int, int]]:
    """Pre-token counts of one shard (keys: UTF-8 bytes) and ``(documents, bytes, skipped non-UTF-8)``."""
    norm, pre = _pipeline(spec)
    fast = _fast(spec.pattern)
    counts: Counter[str] = Counter()
    bad: list[int] = []
    ndocs = nbytes = 0
    first = itemgetter(0)
    for piece in shard.pieces:
        for doc in source_documents(piece.source, text_column=spec.text_column, skip_bad_utf8=spec.skip_bad_utf8,
                                    seed=spec.seed, bad=bad, start=piece.start, end=piece.end):
            ndocs += 1
            nbytes += len(doc.encode("utf-8"))
            if norm is not None:
                doc = norm.normalize_str(doc)
            parts = fast.findall(doc) if doc.isascii() else None
            if parts is not None and sum(map(len, parts)) == len(doc):
                # 3-4x faster than crossing into tokenizers per token, and the same pre-tokens: on ASCII the
                # two regex engines agree (every ASCII character in every context is tested against HF), and
                # matches that cover the whole text leave no gap, so findall == Split(..., "isolated").
                counts.update(parts)
            else:  # Unicode classes may differ between regex engines' Unicode versions: HF's own splitter
                counts.update(map(first, pre.pre_tokenize_str(doc)))
    return {k.encode("utf-8"): v for k, v in counts.items()}, (ndocs, nbytes, len(bad))


def count_shard_table(shard: Shard, spec: CountSpec) -> tuple[bytes, tuple[int, int, int]]:
    """:func:`count_shard` as a serialised partial table (what crosses process and node boundaries)."""
    counts, stats = count_shard(shard, spec)
    return CountTable.from_counts(spec.identity(), counts).to_bytes(), stats


def _sources_header(sources: Sequence[Source]) -> list[dict[str, Any]]:
    out = []
    for s in sources:
        size = None if s.dataset else os.path.getsize(s.path)
        out.append({"name": s.path if s.dataset else Path(s.path).name, "bytes": size, "rate": s.rate})
    return out


def _local(shards: Sequence[Shard], spec: CountSpec, workers: int,
           progress: bool) -> Iterator[tuple[dict[bytes, int], tuple[int, int, int]]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(shards), desc="count", unit="shard", disable=not progress)
    if workers <= 1 or len(shards) <= 1:
        for sh in shards:
            yield count_shard(sh, spec)
            bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork where the platform has it: no re-import of the caller's __main__ (spawn needs a main guard)
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
            for res in pool.map(count_shard, shards, [spec] * len(shards)):
                yield res
                bar.update(1)
    bar.close()


def count_corpus(sources: Sequence[str | Path], *, spec: CountSpec, engine: str = "local", workers: int | None = None,
                 address: str | None = None, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 progress: bool = True) -> tuple[CountTable, CountStats]:
    """Count ``sources`` (``PATH[@RATE]`` files, folders, globs, ``hf:NAME``) into one sorted table.

    Args:
        spec: pre-tokenizer, normaliser and reading options (:meth:`CountSpec.from_recipe`).
        engine: ``"local"`` (process pool of ``workers``, default all cores) or ``"ray"`` (Ray Data map
            tasks and a tree of merge tasks; ``address`` for an existing cluster, else a local one).
        shard_bytes: work unit for jsonl files; it changes the speed, never the table.

    Returns:
        ``(table, stats)``; the table is byte-identical for any engine, worker count or shard size.
    """
    t0 = time.perf_counter()
    srcs = parse_sources(sources)
    shards = plan_shards(srcs, shard_bytes=shard_bytes)
    n = workers or os.cpu_count() or 1
    if engine == "ray":
        from tokkit.train.count_ray import count_with_ray

        table, (docs, nbytes, bad, n) = count_with_ray(shards, spec, address=address, workers=workers, progress=progress)
        parts_stats = [(docs, nbytes, bad)]
    elif engine == "local":
        total: Counter[bytes] = Counter()
        parts_stats = []
        for counts, st in _local(shards, spec, n, progress):
            total.update(counts)  # summing is order-free: the sorted table is the same for any schedule
            parts_stats.append(st)
        table = CountTable.from_counts(spec.identity(), total)
    else:
        from tokkit.errors import UnknownNameError

        raise UnknownNameError(f"unknown counting engine {engine!r}: expected 'local' or 'ray'")
    header = {**spec.identity(), "sources": _sources_header(srcs)}
    table = CountTable(header, table.keys, table.counts)
    docs = sum(s[0] for s in parts_stats)
    nbytes = sum(s[1] for s in parts_stats)
    bad = sum(s[2] for s in parts_stats)
    if len(table) == 0:
        from tokkit.train.corpus import EmptyCorpusError

        raise EmptyCorpusError(f"the corpus ({', '.join(map(str, sources))[:200]}) holds no text to count "
                               f"({docs} documents{f', {bad} skipped as non-UTF-8' if bad else ''}); give non-empty "
                               "UTF-8 text, jsonl or parquet files")
    stats = CountStats(len(shards), docs, nbytes, bad, time.perf_counter() - t0, peak_rss_mb(), engine, n)
    LOG.info("counted %d shards: %s", len(shards), asdict(stats))
    return table, stats
