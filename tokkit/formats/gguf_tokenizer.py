"""Encode with the tokenizer stored in a GGUF file, through transformers' GGUF converter.

The vocab itself is read directly by :mod:`tokkit.formats.gguf_vocab`; this module only builds a
native ``tokenizers.Tokenizer`` so that ``load_tokenizer("model.gguf")`` can also encode.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tokkit.errors import FormatError

__all__ = ["hf_tokenizer_from_gguf"]


def hf_tokenizer_from_gguf(path: str | Path) -> Any:
    """A ``tokenizers.Tokenizer`` for the vocab and merges stored in a GGUF file."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tokkit.hf_models import load_gguf_model

    p = Path(path)
    from tokkit.formats.gguf_vocab import open_gguf

    open_gguf(p)  # a missing, empty or truncated file: its own clear error, before transformers parses it
    try:
        tok, _ = load_gguf_model(p, with_model=False)
    except FormatError:
        raise
    except Exception as e:  # transformers raises ValueError/KeyError for architectures it cannot convert
        raise FormatError(f"cannot build a tokenizer from {p} ({type(e).__name__}: {e}); use the model's tokenizer.json instead") from None
    return tok.backend_tokenizer
