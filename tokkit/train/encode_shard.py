"""One unit of ``tokkit encode`` work: read a shard's documents, encode them, write its files atomically.

A shard is a run of input pieces that depends on the files only (:func:`tokkit.train.count.plan_shards`),
so any worker — this process, a pool process, a Ray task on another node — writes the same bytes
for it. Documents are read one at a time (:func:`tokkit.train.corpus.located_documents`), encoded with
the public :meth:`tokkit.Tokenizer.encode` (the native encoder; one core per worker), wrapped in the
BOS/EOS ids asked for, and handed to the format's writer as little-endian bytes, so a worker's memory
is the tokenizer, one document and the writers' buffers (:data:`WORKER_BUFFER_MB`), whatever the
corpus size. Each file goes through :func:`tokkit.atomic.atomic_file`; after the last one a
done-marker (``.tokkit-encode/part-00000.json``: counts and sha256 of every file) is written, which
``--resume`` trusts.
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tokkit.atomic import atomic_file
from tokkit.errors import SpecialTokenError
from tokkit.train.corpus import located_documents
from tokkit.train.count import Shard
from tokkit.train.shards import get_format, shard_stem
from tokkit.train.shards.manifest import STATE_DIR

__all__ = ["EncodeSpec", "ShardResult", "encode_shard", "STATE_DIR", "marker_path", "read_marker", "WORKER_BUFFER_MB"]

#: Progress is reported after about this much text.
_REPORT_BYTES = 1 << 20
#: What a worker holds beyond the tokenizer and the current document: file buffers (1 MB each) and at
#: most one parquet row group (4 MB of ids + the same again to build the arrays).
WORKER_BUFFER_MB = 16
_TYPECODES = {"uint16": "H", "uint32": "I", "int32": "i"}
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class EncodeSpec:
    """Everything a shard's bytes depend on (besides its pieces); pickled to workers and Ray tasks."""

    tokenizer: str
    tokenizer_label: str
    format: str
    dtype: str
    bos: int | None
    eos: int | None
    allow_special: bool
    text_column: str
    skip_bad_utf8: bool
    seed: int
    out: str


@dataclass(frozen=True)
class ShardResult:
    """What a shard holds: counts and its files as ``(name, bytes, sha256)``."""

    index: int
    documents: int
    tokens: int
    bytes: int
    skipped_empty: int
    skipped_bad_utf8: int
    files: tuple[tuple[str, int, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "files": [{"name": n, "bytes": b, "sha256": h} for n, b, h in self.files]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ShardResult":
        return cls(**{**d, "files": tuple((f["name"], f["bytes"], f["sha256"]) for f in d["files"])})


def marker_path(out: str | Path, index: int) -> Path:
    return Path(out) / STATE_DIR / f"{shard_stem(index)}.json"


def read_marker(out: str | Path, index: int) -> ShardResult | None:
    """The done-marker of shard ``index`` if it and every file it lists (at the listed size) exist, else None."""
    p = marker_path(out, index)
    try:
        res = ShardResult.from_json(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for name, size, _ in res.files:
        f = Path(out) / name
        if not f.is_file() or f.stat().st_size != size:
            return None
    return res


@lru_cache(maxsize=2)
def _tokenizer(name: str) -> Any:
    from tokkit.tokenizer import load_tokenizer

    return load_tokenizer(name)


def _encoder(tok: Any, allow_special: bool) -> Callable[[str], list[int]]:
    """``text -> ids``: :meth:`Tokenizer.encode`, special-token strings as text unless ``allow_special``."""
    if allow_special:
        return lambda text: tok.encode(text, allowed_special="all")

    def encode(text: str) -> list[int]:
        try:
            return tok.encode(text)  # the native fast path; refuses special-token strings ...
        except SpecialTokenError:  # ... which a corpus may quote: then they are encoded as plain text
            return tok.encode(text, disallowed_special=())

    return encode


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def encode_shard(index: int, total: int, shard: Shard, spec: EncodeSpec, progress: Progress | None = None) -> ShardResult:
    """Encode shard ``index`` of ``total`` into ``spec.out`` and write its done-marker; returns its counts."""
    tok = _tokenizer(spec.tokenizer)
    encode = _encoder(tok, spec.allow_special)
    fmt = get_format(spec.format)
    dtype = np.dtype(spec.dtype).newbyteorder("<")
    code = _TYPECODES[spec.dtype]
    head = [spec.bos] if spec.bos is not None else []
    tail = [spec.eos] if spec.eos is not None else []
    swap = sys.byteorder == "big"
    names = fmt.files(shard_stem(index), index, total)
    out = Path(spec.out)
    docs = tokens = nbytes = empty = 0
    pending = [0, 0, 0]
    bad: list[int] = []
    with ExitStack() as stack:
        tmps = tuple(stack.enter_context(atomic_file(out / n, force=True)) for n in names)
        writer = fmt.writer(tmps, dtype, spec.tokenizer_label)
        for piece in shard.pieces:
            src = f"hf:{piece.source.path}" if piece.source.dataset else piece.source.path
            for loc, text in located_documents(piece.source, text_column=spec.text_column, skip_bad_utf8=spec.skip_bad_utf8,
                                               seed=spec.seed, bad=bad, start=piece.start, end=piece.end):
                size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
                ids = encode(text) if text else []
                if not ids:
                    empty += 1
                    continue
                a = array(code, head)
                a.fromlist(ids)
                a.extend(tail)
                if swap:
                    a.byteswap()
                writer.add(a, len(a), src=src, loc=loc)  # type: ignore[arg-type]  # any bytes-like object
                docs += 1
                tokens += len(a)
                nbytes += size
                pending[0] += size
                pending[1] += 1
                pending[2] += len(a)
                if progress is not None and pending[0] >= _REPORT_BYTES:
                    progress(*pending)
                    pending = [0, 0, 0]
        writer.close()
        files = tuple((n, t.stat().st_size, _sha256(t)) for n, t in zip(names, tmps))
    if progress is not None and any(pending):
        progress(*pending)
    res = ShardResult(index, docs, tokens, nbytes, empty, len(bad), files)
    with atomic_file(marker_path(out, index), force=True) as tmp:
        tmp.write_text(json.dumps(res.to_json(), sort_keys=True), encoding="utf-8")
    return res
