"""Training input from count tables: load, check against the recipe, merge, prune (with its effect reported).

A table trains a recipe when it was counted with the recipe's pre-tokenizer and normaliser
(:meth:`tokkit.train.count.CountSpec.from_recipe`): the domain ``bpe`` kind (domain tokens change the
pre-tokenizer, so count with the same recipe) and both ``char`` units. The ``supertoken`` kind cannot:
its second stage counts multi-word chunks *as segmented by the stage-1 tokenizer*, which a table of
pre-tokens does not hold (train supertokens from text).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tokkit.errors import TokkitError
from tokkit.train.count import CountSpec
from tokkit.train.count_table import CountTable, TableMismatchError, merge_tables, read_table
from tokkit.train.recipe import Kind, TrainRecipe

__all__ = ["LoadedCounts", "load_counts", "UnsupportedFromCountsError"]

LOG = logging.getLogger(__name__)


class UnsupportedFromCountsError(TokkitError, ValueError):
    """A tokenizer kind that cannot be trained from pre-token counts."""


@dataclass(frozen=True)
class LoadedCounts:
    """The merged (and maybe pruned) table plus what the summary and the manifest say about it."""

    table: CountTable
    manifest: dict[str, Any]
    notes: tuple[str, ...] = field(default=())


def _describe(t: CountTable | str | Path) -> tuple[CountTable, dict[str, Any]]:
    if isinstance(t, CountTable):
        return t, {"path": None, "sha256": hashlib.sha256(t.to_bytes()).hexdigest()}
    table = read_table(t)
    return table, {"path": str(t), "sha256": hashlib.sha256(Path(t).read_bytes()).hexdigest()}


def _mismatch(path: str, key: str, found: Any, wanted: Any) -> str:
    """One short line: which setting of the table differs from the recipe's, and the flag that fixes it."""
    if key == "normalizer":
        diff = ", ".join(f"{k} {found.get(k) if isinstance(found, dict) else None} (recipe: {v})"
                         for k, v in wanted.items() if not isinstance(found, dict) or found.get(k) != v)
        return (f"count table {path} was counted with another normaliser: {diff}; count it again with the "
                f"training settings (tokkit count ... --recipe NAME, or --nfkc / --lowercase as for training)")
    n_found = len(found.get("pattern", "")) if isinstance(found, dict) else 0
    n_want = len(wanted.get("pattern", ""))
    why = ("the recipe reserves domain tokens the table was counted without" if n_want > n_found else
           "the table reserves domain tokens the recipe does not" if n_want < n_found else "the regexes differ")
    return (f"count table {path} was counted with another pre-tokenizer than the recipe's ({why}: regex of {n_found:,} "
            f"vs {n_want:,} characters); count it again with the training settings "
            f"(tokkit count ... --recipe NAME, or the same --domain-tokens)")


def load_counts(counts: Sequence[CountTable | str | Path], recipe: TrainRecipe, *,
                prune_below: int | None = None) -> LoadedCounts:
    """Read, check and merge ``counts`` for ``recipe``; ``prune_below`` drops rarer pre-tokens (reported).

    Raises:
        UnsupportedFromCountsError: the supertoken kind.
        TableMismatchError: a table counted with another pre-tokenizer or normaliser than the recipe's.
        CountTableError / MissingFileError: a corrupt or missing table.
    """
    if recipe.kind == Kind.SUPERTOKEN:
        raise UnsupportedFromCountsError(
            "the supertoken kind cannot be trained from count tables: its second stage counts multi-word chunks as "
            "segmented by the stage-1 tokenizer, which a pre-token table does not hold; train it from the text "
            "(tokkit train-bpe SOURCES --kind supertoken)")
    loaded = [_describe(t) for t in counts]
    want = CountSpec.from_recipe(recipe).identity()
    for (table, info) in loaded:
        for key in ("pre_tokenizer", "normalizer"):
            if table.header.get(key) != want[key]:
                raise TableMismatchError(_mismatch(info["path"] or "(in memory)", key, table.header.get(key), want[key]))
    table = merge_tables([t for t, _ in loaded])
    notes: list[str] = [f"trained from {len(loaded)} count table(s): {len(table)} distinct pre-tokens, "
                        f"{table.total} occurrences"]
    manifest: dict[str, Any] = {"tables": [i for _, i in loaded], "sources": table.header.get("sources", []),
                                "records": len(table), "occurrences": table.total}
    if prune_below is not None and prune_below > 1:
        table, report = table.prune(prune_below)
        manifest["pruned"] = report
        notes.append(f"pruned pre-tokens seen < {prune_below} times: {report['records_before'] - report['records_after']} "
                     f"of {report['records_before']} records ({report['records_dropped_share']:.1%}), "
                     f"{report['occurrences_dropped_share']:.2%} of occurrences; merges can differ from the unpruned table")
        LOG.info("pruning: %s", report)
    if len(table) == 0:
        from tokkit.train.corpus import EmptyCorpusError

        raise EmptyCorpusError("the count table(s) hold no pre-tokens; count a non-empty corpus"
                               + (" or lower --prune-below" if prune_below else ""))
    return LoadedCounts(table, manifest, tuple(notes))
