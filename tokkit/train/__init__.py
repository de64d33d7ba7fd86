"""Tokenizer training (torch-free): domain byte-level BPE, character BPE, supertokens; comparison report.

Public API:

* :func:`train_tokenizer` -- train from files/folders/globs/datasets with a :class:`TrainRecipe`;
* :func:`load_recipe` -- a built-in recipe (``recipes/*.yaml``) or a YAML file, with overrides;
* :func:`compare_tokenizers` -- the comparison report (bytes/token, fertility, Rényi, round trip, speed);
* :func:`export_tiktoken` -- exact tiktoken ranks from a trained byte-level BPE.

References: KL3M (arXiv 2503.17247), SuperBPE (arXiv 2503.13423), Zouhar et al. ACL 2023 (Rényi
efficiency), Rust et al. 2021 (fertility). See ``docs/training.md``.
"""

from tokkit.train.pipeline import TrainResult as TrainResult
from tokkit.train.pipeline import train_tokenizer as train_tokenizer
from tokkit.train.recipe import Kind as Kind
from tokkit.train.recipe import TrainRecipe as TrainRecipe
from tokkit.train.recipe import load_recipe as load_recipe

__all__ = ["Kind", "TrainRecipe", "TrainResult", "load_recipe", "train_tokenizer"]
