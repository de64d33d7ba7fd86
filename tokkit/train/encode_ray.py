"""Shards of ``tokkit encode`` as Ray Data map tasks: each task writes its own shard's files.

No scheduler of ours: ``ray.data.from_items`` holds one row per shard (its pieces and the spec,
pickled) and ``Dataset.map`` runs :func:`tokkit.train.encode_shard.encode_shard` on each, one CPU
per task; the task writes the shard's files into the output folder itself and returns only its
counts and checksums, which the driver gathers for the manifest. The bytes are those of the local
engine. ``ray.init()`` starts a local cluster; ``address="ray://head:10001"`` (or ``"auto"``) uses an
existing one, whose nodes need tokkit, the tokenizer (an alias in their ``$TOKKIT_HOME``, or the
same path) and the corpus and output folder on a shared file system.
"""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any, Callable, Iterator

from tokkit.errors import TokkitError
from tokkit.train.count import Shard
from tokkit.train.count_ray import ray_session
from tokkit.train.encode_shard import EncodeSpec, ShardResult

__all__ = ["encode_with_ray"]

LOG = logging.getLogger(__name__)


def _encode_row(row: dict[str, Any]) -> dict[str, Any]:
    from tokkit.train.encode_shard import encode_shard

    index, total, shard, spec = pickle.loads(row["task"])
    try:
        return {"result": json.dumps(encode_shard(index, total, shard, spec).to_json()), "error": b""}
    except TokkitError as e:  # Ray would wrap it in its own exception types and keep only the text: send it back whole
        return {"result": "", "error": pickle.dumps(e)}


def encode_with_ray(tasks: list[tuple[int, Shard]], total: int, spec: EncodeSpec, *, address: str | None,
                    workers: int | None, bar: Callable[[int, int, int], None]) -> Iterator[ShardResult]:
    """Encode ``tasks`` (``(index, shard)``) as Ray tasks; yields each shard's result as the driver receives it."""
    with ray_session(address=address, workers=workers, progress=False) as ray:
        rows = [{"task": pickle.dumps((i, total, sh, spec))} for i, sh in tasks]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map(_encode_row, num_cpus=1)
        LOG.info("ray: %d shards on %d CPUs", len(rows), int(ray.cluster_resources().get("CPU", 1)))
        for row in ds.iter_rows():
            if row["error"]:
                raise pickle.loads(row["error"])  # bad input found by a task: the same one-line error as locally
            res = ShardResult.from_json(json.loads(row["result"]))
            bar(res.bytes, res.documents, res.tokens)
            yield res
