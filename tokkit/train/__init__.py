"""Tokenizer training (torch-free): domain byte-level BPE, character BPE, supertokens; comparison report.

Public API:

* :func:`train_tokenizer` -- train from files/folders/globs/datasets with a :class:`TrainRecipe`;
* :func:`load_recipe` -- a built-in recipe (``recipes/*.yaml``) or a YAML file, with overrides;
* :func:`compare_tokenizers` -- the comparison report (bytes/token, fertility, Rényi, round trip, speed);
* :func:`export_tiktoken` / :func:`to_tiktoken` -- exact tiktoken ranks from a trained byte-level BPE;
* :func:`lint_tokenizer` -- the after-training checks on any ``tokenizers.Tokenizer``;
* :func:`count_corpus` / :class:`CountSpec` -- a corpus -> a sorted pre-token :class:`CountTable` (local
  processes or Ray); :func:`read_table`, :func:`merge_tables`; ``train_tokenizer(counts=[...])`` trains
  from tables exactly as from the text.

References: KL3M (arXiv 2503.17247), SuperBPE (arXiv 2503.13423), TokenAdapt SuperTokenizer
(arXiv 2505.09738), Zouhar et al. ACL 2023 (Rényi efficiency), Rust et al. 2021 (fertility).
See ``docs/training.md``.
"""

from tokkit.train.compare import Report as Report
from tokkit.train.count import CountSpec as CountSpec
from tokkit.train.count import count_corpus as count_corpus
from tokkit.train.count_table import CountTable as CountTable
from tokkit.train.count_table import merge_tables as merge_tables
from tokkit.train.count_table import read_table as read_table
from tokkit.train.compare import compare_tokenizers as compare_tokenizers
from tokkit.train.lint import lint_tokenizer as lint_tokenizer
from tokkit.train.pipeline import TrainResult as TrainResult
from tokkit.train.pipeline import train_tokenizer as train_tokenizer
from tokkit.train.recipe import Kind as Kind
from tokkit.train.recipe import TrainRecipe as TrainRecipe
from tokkit.train.recipe import load_recipe as load_recipe
from tokkit.train.tiktoken_export import export_tiktoken as export_tiktoken
from tokkit.train.tiktoken_export import to_tiktoken as to_tiktoken

__all__ = ["CountSpec", "CountTable", "Kind", "Report", "TrainRecipe", "TrainResult", "compare_tokenizers", "count_corpus",
           "export_tiktoken", "lint_tokenizer", "load_recipe", "merge_tables", "read_table", "to_tiktoken",
           "train_tokenizer"]
