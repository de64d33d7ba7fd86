"""``encode_corpus``: a corpus -> token shards that pre-training code reads as they are, exact and resumable.

The corpus (``.txt``/``.jsonl``/``.parquet`` files, folders, globs, ``PATH@RATE``, ``hf:NAME``) is
cut into shards that depend on the files only (:func:`tokkit.train.count.plan_shards`: line-aligned
byte ranges, text segments, parquet row-group runs, small files grouped to about ``shard_bytes``
of input); each shard becomes one output shard, written by one worker
(:func:`tokkit.train.encode_shard.encode_shard`) — in this process, in a local process pool, or as a
Ray Data task (:mod:`tokkit.train.encode_ray`) — so the output is byte-identical for 1 worker, N
workers and Ray, and documents are never split across shards. Every document's ids are
``[BOS] + Tokenizer.encode(text) + [EOS]`` (as asked). Output folder::

    OUT/part-00000.npy  OUT/part-00000.csv.gz  ...  OUT/manifest.json     (format numpy)

While it runs, ``OUT/.tokkit-encode/`` holds the plan and one done-marker per finished shard; a
killed run continues with ``resume=True`` (the shards already done are kept, the others written
again), and the result is byte-identical to an uninterrupted run. ``manifest.json`` is written last;
then the state folder is removed. On bad input (a :class:`~tokkit.errors.TokkitError`) a new output
folder is removed whole: nothing is left half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tokkit.atomic import (_commit_as, atomic_file, check_not_input, check_output, check_replaceable, make_parents,
                           mark_ours, remove_created)
from tokkit.output_checks import remove_path, temp_name
from tokkit.errors import OutputExistsError, TokkitError, UnknownNameError, VocabMismatchError
from tokkit.train.corpus import EmptyCorpusError, Source, parse_sources
from tokkit.train.count import Shard, plan_shards
from tokkit.train.encode_shard import STATE_DIR, EncodeSpec, ShardResult, _tokenizer, encode_shard, read_marker
from tokkit.train.shards import get_format, token_dtype
from tokkit.train.shards.manifest import MANIFEST, VERSION, Manifest

__all__ = ["encode_corpus", "auto_shard_bytes", "ENGINES"]

LOG = logging.getLogger(__name__)

#: Default shard size (input bytes; also the work unit): about 1/:data:`AUTO_SHARDS` of the corpus, so that a
#: few workers have enough units to balance, within these bounds (64 MB of text is about 16M tokens).
AUTO_SHARDS = 32
MIN_SHARD_BYTES, MAX_SHARD_BYTES = 4 << 20, 256 << 20
ENGINES = ("local", "ray")
_PLAN = "plan.json"


def tokenizer_identity(name: str | Path, tok: Any) -> dict[str, Any]:
    """Name, backend, size and sha256 of the tokenizer's file (or, for an encoding without one, of its vocabulary)."""
    from tokkit.names import resolve_tokenizer

    path = resolve_tokenizer(name).path
    h = hashlib.sha256()
    if path is not None:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        what = Path(path).name
    else:
        for t in tok.vocab.tokens:
            h.update(len(t).to_bytes(4, "little") + t)
        for s in tok.vocab.specials:
            h.update(f"{s.id}\t{s.text}\n".encode("utf-8"))
        what = "vocabulary"
    return {"name": str(name), "backend": tok.backend, "vocab_size": tok.vocab_size, "sha256": h.hexdigest(),
            "hashed": what}


def _special(tok: Any, on: bool, token: str | None, role: str) -> dict[str, Any] | None:
    """The id added to every document for ``role`` (``bos``/``eos``): the tokenizer's own, or ``token``'s."""
    if token is not None:
        ids = tok.encode(token, allowed_special="all")
        if len(ids) != 1:
            raise VocabMismatchError(f"--{role}-token {token!r} is not one token of {tok.name} (it encodes to {len(ids)} ids); "
                                     f"pass the exact text of a special token, e.g. one of {[s.text for s in tok.vocab.specials][:6]}")
        return {"id": ids[0], "text": token}
    if not on:
        return None
    i = tok.vocab.role_id(role)
    if i is None:
        raise VocabMismatchError(f"{tok.name} has no {role.upper()} token to add to every document; pass --{role}-token TEXT "
                                 f"(one of its special tokens, e.g. {[s.text for s in tok.vocab.specials][:6]}) or --no-{role}")
    return {"id": i, "text": tok.vocab.tokens[i].decode("utf-8", "replace")}


def _absolute(sources: Sequence[Source]) -> list[Source]:
    """Workers and Ray tasks may run in another folder: give them absolute paths."""
    return [s if s.dataset else Source(os.path.abspath(s.path), s.rate) for s in sources]


def auto_shard_bytes(sources: Sequence[Source]) -> int:
    """The default shard size for ``sources``: a function of their sizes only, never of the workers."""
    total = sum(MAX_SHARD_BYTES if s.dataset else os.path.getsize(s.path) for s in sources)
    return min(max(total // AUTO_SHARDS, MIN_SHARD_BYTES), MAX_SHARD_BYTES)


def _source_info(s: Source, *, mtime: bool = False) -> dict[str, Any]:
    if s.dataset:
        return {"path": f"hf:{s.path}", "rate": s.rate}
    st = os.stat(s.path)
    return {"path": s.path, "bytes": st.st_size, "rate": s.rate, **({"mtime_ns": st.st_mtime_ns} if mtime else {})}


def _pieces(shard: Shard) -> list[dict[str, Any]]:
    return [{"source": f"hf:{p.source.path}" if p.source.dataset else p.source.path, "start": p.start, "end": p.end}
            for p in shard.pieces]


def _shard_size(shard: Shard) -> int:
    total = 0
    for p in shard.pieces:
        if p.source.dataset:
            total += 1
        elif p.end is not None and not p.source.path.lower().endswith(".parquet"):
            total += p.end - p.start
        else:
            total += os.path.getsize(p.source.path)
    return total


class _Bar:
    """tqdm bar over the input bytes, with documents/s and tokens/s after the MB/s."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="encode", unit="B", unit_scale=True, unit_divisor=1000, disable=not enabled,
                        smoothing=0.1)
        self.t0 = time.perf_counter()
        self.docs = self.tokens = self.bytes = 0

    def __call__(self, nbytes: int, docs: int, tokens: int) -> None:
        self.docs += docs
        self.tokens += tokens
        self.bytes += nbytes
        el = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{self.docs / el:,.0f} docs/s, {self.tokens / el / 1e6:.2f}M tokens/s", refresh=False)
        self.bar.update(nbytes)

    def finish(self) -> None:
        """At 100%: the total was the input files' size, the text a little less."""
        if self.bar.n and self.bar.total != self.bar.n:
            self.bar.total = self.bar.n
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _run_local(tasks: list[tuple[int, Shard]], total: int, spec: EncodeSpec, workers: int,
               bar: _Bar) -> Iterator[ShardResult]:
    if workers <= 1 or len(tasks) <= 1:
        for index, shard in tasks:
            yield encode_shard(index, total, shard, spec, bar)
        return
    from tokkit.train.encode_pool import run_pool

    yield from run_pool(tasks, total, spec, workers, bar)


def _check_out(out: Path, sources: Sequence[Source], *, resume: bool, force: bool) -> str:
    """``"resume"``, ``"done"`` (resume asked, output complete) or ``"new"``; refuses what must not be touched."""
    check_not_input(out, [s.path for s in sources if not s.dataset])
    state = out / STATE_DIR / _PLAN
    if resume and state.is_file():
        return "resume"
    if resume and (out / MANIFEST).is_file():
        return "done"
    if state.is_file() and not force:
        raise OutputExistsError(f"{out} holds an interrupted `tokkit encode`; pass --resume to finish it, "
                                "or --force to start over")
    check_output(out, force=force, kind="dir")
    return "new"


def _state_mismatch(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(keys)


def encode_corpus(sources: Iterable[str | Path], *, tokenizer: str | Path, out: str | Path, format: str = "numpy",
                  bos: bool = False, eos: bool = True, bos_token: str | None = None, eos_token: str | None = None,
                  allow_special: bool = False, shard_bytes: int | None = None, workers: int | None = None,
                  engine: str = "local", address: str | None = None, resume: bool = False, force: bool = False,
                  text_column: str = "text", skip_bad_utf8: bool = False, seed: int = 0,
                  progress: bool = True) -> Manifest:
    """Encode ``sources`` with ``tokenizer`` into token shards in folder ``out``; returns the manifest.

    Args:
        sources: files, folders, globs, ``PATH@RATE`` or ``hf:NAME[:SPLIT]`` (as ``tokkit train-bpe`` reads them).
        tokenizer: alias, file or folder (as :func:`tokkit.load_tokenizer`).
        format: ``numpy`` (raw ids + dolma index: nanoGPT, OLMo), ``megatron`` (``.bin`` + ``.idx``),
            ``datatrove`` (``.ds`` files) or ``parquet`` (``input_ids`` rows for ``datasets``).
        bos, eos: add the tokenizer's BOS before / EOS after every document (``bos_token``/``eos_token``:
            that token instead). The ids of a document are ``[bos] + tok.encode(text) + [eos]``.
        allow_special: encode special-token strings found in the text as special tokens; by default
            they are encoded as the plain text they are (a corpus that quotes ``<|endoftext|>`` stays text).
        shard_bytes: input bytes per shard (cut at document boundaries; the same for any ``workers``); default
            :func:`auto_shard_bytes`: about 1/32 of the input, between 4 MiB and 256 MiB.
        workers: local processes, or the CPUs of a local Ray cluster (default: all cores).
        engine: ``"local"`` or ``"ray"`` (``address`` of an existing cluster; its nodes must see the paths).
        resume: finish an interrupted run into ``out``; ``force``: replace an existing ``out``.

    Returns:
        The :class:`~tokkit.train.shards.manifest.Manifest` written to ``out/manifest.json``.

    Raises:
        UnknownNameError: an unknown format or engine. VocabMismatchError: ids too wide for the format,
        no BOS/EOS token. OutputExistsError: ``out`` exists (without ``force``/``resume``).
        EmptyCorpusError: no document has any id.
    """
    fmt = get_format(format)
    if engine not in ENGINES:
        raise UnknownNameError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    out = Path(out)
    srcs = parse_sources(sources)
    tok = _tokenizer(_tokenizer_key(tokenizer))
    dtype = token_dtype(tok.vocab_size, fmt)
    specials = {"bos": _special(tok, bos, bos_token, "bos"), "eos": _special(tok, eos, eos_token, "eos"),
                "strings_in_text": "special" if allow_special else "text"}
    mode = _check_out(out, srcs, resume=resume, force=force)
    srcs = _absolute(srcs)
    shard_bytes = shard_bytes or auto_shard_bytes(srcs)
    shards = plan_shards(srcs, shard_bytes=shard_bytes)
    ident = tokenizer_identity(tokenizer, tok)
    spec = EncodeSpec(tokenizer=_tokenizer_key(tokenizer), tokenizer_label=str(tokenizer), format=fmt.name,
                      dtype=dtype.name, bos=(specials["bos"] or {}).get("id"), eos=(specials["eos"] or {}).get("id"),
                      allow_special=allow_special, text_column=text_column, skip_bad_utf8=skip_bad_utf8, seed=seed,
                      out=os.path.abspath(out))
    header = {"version": VERSION, "format": fmt.name, "dtype": dtype.name, "tokenizer": ident, "special_tokens": specials,
              "reading": {"text_column": text_column, "skip_bad_utf8": skip_bad_utf8, "seed": seed, "shard_bytes": shard_bytes},
              "sources": [_source_info(s) for s in srcs]}
    if mode == "done":  # only if it is this run's output: the same tokenizer, format, specials, reading and sources
        done = Manifest.read(out)
        want = json.loads(json.dumps(header))
        if any(done.data.get(k) != v for k, v in want.items()):
            raise OutputExistsError(f"{out} holds a finished `tokkit encode` of other settings or inputs "
                                    f"({_state_mismatch({k: done.data.get(k) for k in want}, want)} differ); "
                                    "choose another path, or pass --force to replace it")
        LOG.info("%s is complete already: nothing to do", out)
        return done
    # what a resumed run must share with the run it finishes (JSON-normalised: it is compared with the file)
    plan = json.loads(json.dumps({**header, "sources": [_source_info(s, mtime=True) for s in srcs], "shards": len(shards)}))
    created = mode == "new"
    work = out  # with --force over an existing output: a temporary beside it, swapped in when complete
    made: list[Path] = []  # parent folders this run created (removed again on failure while empty)
    try:
        if created:
            if force and os.path.lexists(out):  # the old output stays until the new one is complete
                check_replaceable(out, "dir")  # again: what is there now, not what the preflight saw
                work = temp_name(out)
            made = make_parents(out)
            try:
                os.mkdir(work)  # exclusive: of two runs started together, one creates the folder, the other stops
            except FileExistsError:
                created = False
                raise OutputExistsError(f"output {out} was created by another process while this one worked; pass "
                                        "--force to replace it, or choose another path") from None
            _write_json(work / STATE_DIR / _PLAN, plan)
            mark_ours(work)  # written by tokkit: a later --force may replace it (tokkit.atomic)
        else:
            old = _read_json(out / STATE_DIR / _PLAN)
            if old != plan:
                raise OutputExistsError(f"{out} was started with other settings or inputs ({_state_mismatch(old, plan)} "
                                        "differ); rerun with the same ones and --resume, or with --force to start over")
        manifest = _encode(shards, replace(spec, out=os.path.abspath(work)), header, work, workers=workers, engine=engine,
                           address=address, progress=progress)
        if work != out:
            _commit_as(work, out, True, "dir")
            manifest = Manifest(out, manifest.data, run=manifest.run)
    except BaseException as e:
        if work != out:  # a forced run: its temporary goes, the old output stays as it was
            remove_path(work)
        elif created and isinstance(e, TokkitError) or isinstance(e, EmptyCorpusError):
            shutil.rmtree(out, ignore_errors=True)  # (an interrupted new run stays, for --resume)
        if not os.path.lexists(out):
            remove_created(made)
        raise
    return manifest


def _tokenizer_key(tokenizer: str | Path) -> str:
    """What workers load: an absolute path for a local file (they may run elsewhere), else the alias."""
    p = Path(tokenizer).expanduser()
    return str(p.resolve()) if p.exists() else str(tokenizer)


def _encode(shards: list[Shard], spec: EncodeSpec, header: dict[str, Any], out: Path, *, workers: int | None, engine: str,
            address: str | None, progress: bool) -> Manifest:
    total = len(shards)
    results: dict[int, ShardResult] = {}
    for i in range(total):
        if (r := read_marker(out, i)) is not None:
            results[i] = r
    done_before = len(results)
    pending = sorted(((i, sh) for i, sh in enumerate(shards) if i not in results), key=lambda t: -_shard_size(t[1]))
    n = workers or os.cpu_count() or 1
    total_bytes = sum(_shard_size(sh) for _, sh in pending)
    bar = _Bar(total_bytes, progress and total_bytes > 0)
    try:
        if engine == "ray" and pending:
            from tokkit.train.encode_ray import encode_with_ray

            runs: Iterator[ShardResult] = encode_with_ray(pending, total, spec, address=address, workers=workers, bar=bar)
        else:
            _tokenizer(spec.tokenizer).encode("warm up")  # build the native encoder once, before the pool forks
            runs = _run_local(pending, total, spec, n, bar)
        for r in runs:
            results[r.index] = r
        bar.finish()
    finally:
        bar.close()
    ordered = [results[i] for i in range(total)]
    counts = {k: sum(getattr(r, k) for r in ordered) for k in ("documents", "tokens", "bytes", "skipped_empty", "skipped_bad_utf8")}
    if counts["documents"] == 0:
        names = ", ".join(s["path"] for s in header["sources"][:3])
        raise EmptyCorpusError(f"the corpus ({names}) holds no text to encode ({counts['skipped_empty']} empty documents"
                               f"{', %d skipped as non-UTF-8' % counts['skipped_bad_utf8'] if counts['skipped_bad_utf8'] else ''}); "
                               "give non-empty UTF-8 text, jsonl or parquet files")
    data = {**header, "counts": counts,
            "shards": [{**r.to_json(), "pieces": _pieces(sh)} for r, sh in zip(ordered, shards)]}
    for s in data["shards"]:
        del s["index"]
    used = (workers or 0) if engine == "ray" else 1 if n <= 1 or len(pending) <= 1 else min(n, len(pending))
    manifest = Manifest(out, data, run={"engine": engine, "workers": used, "shards_done_before": done_before})
    with atomic_file(out / MANIFEST, force=True) as tmp:
        tmp.write_bytes(manifest.to_bytes())
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, force=True) as tmp:
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable: it matches no plan, and the caller says so
        return {}
    return data if isinstance(data, dict) else {}
