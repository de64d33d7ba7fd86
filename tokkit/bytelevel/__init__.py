"""Exact byte-level probabilities from tokenized LMs (torch inside; not imported by ``import tokkit``).

``ByteLM.from_pretrained("smollm2")`` wraps a causal LM and its tokenizer into an exact next-byte
model under the canonical-tokenizations target (Phan et al., arXiv 2410.09303), with the leaked
mass reported, or the all-tokenizations target (Vieira et al., arXiv 2412.03719) with a beam.
``ByteEnsemble`` combines byte LMs with different vocabularies.

Names are imported lazily, so the torch-free ``tokkit.bytelevel.options`` (used by the CLI's help)
does not load torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["ByteEnsemble", "ByteLM", "ByteModel", "ByteScore", "CallableLM", "CoverState", "EOS", "HFCausalLM", "NextByte"]

_WHERE = {
    "ByteEnsemble": "ensemble", "ByteLM": "bytelm", "ByteModel": "bytelm", "ByteScore": "bytelm",
    "CallableLM": "lm", "HFCausalLM": "lm", "CoverState": "engine", "NextByte": "engine", "EOS": "table",
}

if TYPE_CHECKING:
    from tokkit.bytelevel.bytelm import ByteLM as ByteLM
    from tokkit.bytelevel.bytelm import ByteModel as ByteModel
    from tokkit.bytelevel.bytelm import ByteScore as ByteScore
    from tokkit.bytelevel.engine import CoverState as CoverState
    from tokkit.bytelevel.engine import NextByte as NextByte
    from tokkit.bytelevel.ensemble import ByteEnsemble as ByteEnsemble
    from tokkit.bytelevel.lm import CallableLM as CallableLM
    from tokkit.bytelevel.lm import HFCausalLM as HFCausalLM
    from tokkit.bytelevel.table import EOS as EOS


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"tokkit.bytelevel.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'tokkit.bytelevel' has no attribute {name!r}")
