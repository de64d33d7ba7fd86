"""tokkit: text and image tokenization toolkit.

This module is the torch-free public API. Torch-backed names live in subpackages
(``tokkit.embedding``, ``tokkit.transplant``, ``tokkit.bytelevel``, ``tokkit.image``).
``encode_corpus`` and ``TokenShards`` (corpus -> token shards, torch-free) live in ``tokkit.train`` and
are named here lazily (PEP 562): ``import tokkit`` does not import the domain package, and this core
module never imports upwards at import time (tests/test_layering.py checks both).
"""

from importlib import import_module as _import_module

from tokkit.errors import TokkitError as TokkitError
from tokkit.formats import load_vocab as load_vocab
from tokkit.names import ALIASES as ALIASES
from tokkit.names import resolve_model as resolve_model
from tokkit.tokenizer import Tokenizer as Tokenizer
from tokkit.tokenizer import load_tokenizer as load_tokenizer
from tokkit.vocab import CodebookVocab as CodebookVocab
from tokkit.vocab import SpecialToken as SpecialToken
from tokkit.vocab import TextVocab as TextVocab

#: Torch-free names of the domain packages, imported on first use.
_LAZY = {"encode_corpus": "tokkit.train.encode_corpus", "TokenShards": "tokkit.train.shards.reader"}

__all__ = [
    "ALIASES",
    "CodebookVocab",
    "SpecialToken",
    "TextVocab",
    "TokenShards",
    "Tokenizer",
    "TokkitError",
    "encode_corpus",
    "load_tokenizer",
    "load_vocab",
    "resolve_model",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tokkit' has no attribute {name!r}")
