"""Tokenizer training (torch-free): domain byte-level BPE, character BPE, supertokens; comparison report.

Public API:

* :func:`train_tokenizer` -- train from files/folders/globs/datasets with a :class:`TrainRecipe`;
* :func:`load_recipe` -- a built-in recipe (``recipes/*.yaml``) or a YAML file, with overrides;
* :func:`compare_tokenizers` -- the comparison report (bytes/token, fertility, Rényi, round trip, speed);
* :func:`export_tiktoken` / :func:`to_tiktoken` -- exact tiktoken ranks from a trained byte-level BPE;
* :func:`lint_tokenizer` -- the after-training checks on any ``tokenizers.Tokenizer``;
* :func:`count_corpus` / :class:`CountSpec` -- a corpus -> a sorted pre-token :class:`CountTable` (local
  processes or Ray); :func:`read_table`, :func:`merge_tables`; ``train_tokenizer(counts=[...])`` trains
  from tables exactly as from the text;
* :func:`encode_corpus` -- a corpus -> token shards (numpy/dolma, Megatron, datatrove, parquet) with a
  :class:`Manifest`; :class:`TokenShards` reads them back (documents, packed windows).

References: KL3M (arXiv 2503.17247), SuperBPE (arXiv 2503.13423), TokenAdapt SuperTokenizer
(arXiv 2505.09738), Zouhar et al. ACL 2023 (Rényi efficiency), Rust et al. 2021 (fertility).
See ``docs/training.md``.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562): `from tokkit.train import train_tokenizer` must not pay for numpy and the
# counting/comparison modules (0.25 CPU-s and 30 MB of the +0.35 CPU-s / +37 MB training overhead, issue 17).
_WHERE = {
    "Report": "compare", "compare_tokenizers": "compare", "CountSpec": "count", "count_corpus": "count",
    "CountTable": "count_table", "merge_tables": "count_table", "read_table": "count_table", "lint_tokenizer": "lint",
    "TrainResult": "pipeline", "train_tokenizer": "pipeline", "Kind": "recipe", "TrainRecipe": "recipe",
    "load_recipe": "recipe", "export_tiktoken": "tiktoken_export", "to_tiktoken": "tiktoken_export",
    "encode_corpus": "encode_corpus", "TokenShards": "shards.reader", "Manifest": "shards.manifest",
}

if TYPE_CHECKING:  # pragma: no cover
    from tokkit.train.compare import Report, compare_tokenizers
    from tokkit.train.count import CountSpec, count_corpus
    from tokkit.train.count_table import CountTable, merge_tables, read_table
    from tokkit.train.encode_corpus import encode_corpus
    from tokkit.train.shards.manifest import Manifest
    from tokkit.train.shards.reader import TokenShards
    from tokkit.train.lint import lint_tokenizer
    from tokkit.train.pipeline import TrainResult, train_tokenizer
    from tokkit.train.recipe import Kind, TrainRecipe, load_recipe
    from tokkit.train.tiktoken_export import export_tiktoken, to_tiktoken


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"tokkit.train.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokkit.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_WHERE))


__all__ = ["CountSpec", "CountTable", "Kind", "Manifest", "Report", "TokenShards", "TrainRecipe", "TrainResult",
           "compare_tokenizers", "count_corpus", "encode_corpus", "export_tiktoken", "lint_tokenizer", "load_recipe", "merge_tables", "read_table", "to_tiktoken",
           "train_tokenizer"]
