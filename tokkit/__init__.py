"""tokkit: text and image tokenization toolkit.

This module is the torch-free public API. Torch-backed names live in subpackages
(``tokkit.embedding``, ``tokkit.transplant``, ``tokkit.bytelevel``, ``tokkit.image``).
"""

from tokkit.errors import TokkitError as TokkitError
from tokkit.formats import load_vocab as load_vocab
from tokkit.names import ALIASES as ALIASES
from tokkit.names import resolve_model as resolve_model
from tokkit.tokenizer import Tokenizer as Tokenizer
from tokkit.tokenizer import load_tokenizer as load_tokenizer
from tokkit.vocab import CodebookVocab as CodebookVocab
from tokkit.vocab import SpecialToken as SpecialToken
from tokkit.vocab import TextVocab as TextVocab

__all__ = [
    "ALIASES",
    "CodebookVocab",
    "SpecialToken",
    "TextVocab",
    "Tokenizer",
    "TokkitError",
    "load_tokenizer",
    "load_vocab",
    "resolve_model",
]
__version__ = "0.1.0"
