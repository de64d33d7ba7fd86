"""Counting on Ray: shards as Ray Data map tasks, partial tables merged in a tree of Ray tasks.

No scheduler of ours: Ray Data schedules the map phase (``Dataset.map`` over the shard list, one
row per shard, each task reading its own byte range, pre-tokenizing with HF ``tokenizers`` and
counting); the partial tables (serialised :class:`~tokkit.train.count_table.CountTable` s, a few
percent of the shard bytes) stay in Ray's object store and are summed by ``@ray.remote`` merge tasks,
``FAN_IN`` at a time, so the driver receives one table. ``ray.init()`` starts a local cluster on a
laptop; ``address="ray://head:10001"`` (or ``"auto"``) uses an existing cluster unchanged — every
node needs tokkit installed (or a ``runtime_env``) and must see the corpus paths (a shared file
system or object store mount).
"""

from __future__ import annotations

import logging
import pickle
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from tokkit.errors import TokkitError

__all__ = ["count_with_ray", "ray_session", "RayUnavailableError", "FAN_IN"]

LOG = logging.getLogger(__name__)
FAN_IN = 8


class RayUnavailableError(TokkitError, RuntimeError):
    """``--engine ray`` without Ray installed or without a reachable cluster."""


def _count_row(row: dict[str, Any]) -> dict[str, Any]:
    from tokkit.train.count import count_shard_table

    shard, spec = pickle.loads(row["task"])
    blob, (docs, nbytes, bad) = count_shard_table(shard, spec)
    return {"table": blob, "docs": docs, "bytes": nbytes, "bad": bad}


def _merge(*parts: Any) -> tuple[bytes, tuple[int, int, int]]:
    """Sum partial tables: Arrow blocks of ``_count_row`` rows, or outputs of an earlier merge."""
    from tokkit.train.count_table import CountTable, merge_tables

    tables, docs, nbytes, bad = [], 0, 0, 0
    for p in parts:
        if isinstance(p, tuple):
            rows = [{"table": p[0], "docs": p[1][0], "bytes": p[1][1], "bad": p[1][2]}]
        else:  # a pyarrow.Table block
            rows = p.to_pylist()
        for r in rows:
            tables.append(CountTable.from_bytes(r["table"]))
            docs, nbytes, bad = docs + r["docs"], nbytes + r["bytes"], bad + r["bad"]
    return merge_tables(tables).to_bytes(), (docs, nbytes, bad)


@contextmanager
def ray_session(*, address: str | None, workers: int | None, progress: bool) -> Iterator[Any]:
    """Yield the ``ray`` module connected to ``address`` (None: a local cluster of ``workers`` CPUs, shut down after)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailableError("--engine ray needs Ray: pip install 'tokkit[ray]' (ray[data]); "
                                  "or run with --engine local") from None
    started = False
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as e:
            raise RayUnavailableError(f"cannot reach the Ray cluster at {address!r} ({e}); start it with `ray start --head` "
                                      "or leave out --address for a local cluster") from None
        started = True
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        yield ray
    finally:
        if started:
            ray.shutdown()


def count_with_ray(shards: Sequence[Any], spec: Any, *, address: str | None = None, workers: int | None = None,
                   progress: bool = True) -> tuple[Any, tuple[int, int, int, int]]:
    """Count ``shards`` on Ray; returns the merged table and ``(documents, bytes, skipped, cpus)``."""
    from tokkit.train.count_table import CountTable

    with ray_session(address=address, workers=workers, progress=progress) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        tasks = [{"task": pickle.dumps((sh, spec))} for sh in shards]
        ds = ray.data.from_items(tasks, override_num_blocks=max(1, len(tasks))).map(_count_row, num_cpus=1)
        level: list[Any] = list(ds.to_arrow_refs())
        merge = ray.remote(num_cpus=1)(_merge)
        while True:
            level = [merge.remote(*level[i:i + FAN_IN]) for i in range(0, len(level), FAN_IN)]
            if len(level) == 1:
                break
        blob, (docs, nbytes, bad) = ray.get(level[0])
        LOG.info("ray: %d shards on %d CPUs", len(shards), cpus)
        return CountTable.from_bytes(blob), (docs, nbytes, bad, cpus)
