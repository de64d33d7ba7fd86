"""Shards of ``tokkit encode`` on a local process pool: one process per core, progress through a queue.

Each process encodes whole shards (:func:`tokkit.train.encode_shard.encode_shard`) and reports its
progress (text bytes, documents, tokens) about every megabyte of text through a queue the parent
drains into the progress bar, so the bar moves inside a shard too. Processes are forked where the
platform allows (they inherit the tokenizer the parent loaded and warmed up); the largest shards
are submitted first so that the last ones to finish are small.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator

from tokkit.train.count import Shard
from tokkit.train.encode_shard import EncodeSpec, ShardResult, encode_shard

__all__ = ["run_pool"]

_QUEUE: Any = None


def _init(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _report(nbytes: int, docs: int, tokens: int) -> None:
    _QUEUE.put((nbytes, docs, tokens))


def _work(index: int, total: int, shard: Shard, spec: EncodeSpec) -> ShardResult:
    return encode_shard(index, total, shard, spec, _report)


def _drain(q: Any, bar: Callable[[int, int, int], None]) -> None:
    while True:
        try:
            bar(*q.get_nowait())
        except queue.Empty:
            return


def run_pool(tasks: list[tuple[int, Shard]], total: int, spec: EncodeSpec, workers: int,
             bar: Callable[[int, int, int], None]) -> Iterator[ShardResult]:
    """Encode ``tasks`` (``(index, shard)``) on ``workers`` processes; yields each result as it finishes."""
    # fork where the platform has it: no re-import of the caller's __main__ (spawn needs a main guard)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    # HF tokenizers' own threads: each worker is one core already (and a fork after HF used its pool warns)
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield from _run(ctx, tasks, total, spec, workers, bar)
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def _run(ctx: Any, tasks: list[tuple[int, Shard]], total: int, spec: EncodeSpec, workers: int,
         bar: Callable[[int, int, int], None]) -> Iterator[ShardResult]:
    q = ctx.Queue()
    before = set(mp.active_children())
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_init, initargs=(q,))
    futures: set[Future[ShardResult]] = {pool.submit(_work, i, total, sh, spec) for i, sh in tasks}
    try:
        while futures:
            done, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, bar)
            for f in done:
                yield f.result()  # a worker's error (bad input in its shard) is raised here
    except BaseException:
        # stop the other workers now, before the caller cleans up the output they write into
        pool.shutdown(wait=False, cancel_futures=True)
        for p in set(mp.active_children()) - before:
            p.terminate()
            p.join()
        raise
    pool.shutdown(wait=True)
    _drain(q, bar)
