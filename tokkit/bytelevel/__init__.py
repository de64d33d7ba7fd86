"""Exact byte-level probabilities from tokenized LMs (torch inside; not imported by ``import tokkit``).

``ByteLM.from_pretrained("smollm2")`` wraps a causal LM and its tokenizer into an exact next-byte
model under the canonical-tokenizations target (Phan et al., arXiv 2410.09303), with the leaked
mass reported, or the all-tokenizations target (Vieira et al., arXiv 2412.03719) with a beam.
``ByteEnsemble`` combines byte LMs with different vocabularies.
"""

from tokkit.bytelevel.bytelm import ByteLM as ByteLM
from tokkit.bytelevel.bytelm import ByteScore as ByteScore
from tokkit.bytelevel.engine import CoverState as CoverState
from tokkit.bytelevel.engine import NextByte as NextByte
from tokkit.bytelevel.lm import CallableLM as CallableLM
from tokkit.bytelevel.lm import HFCausalLM as HFCausalLM
from tokkit.bytelevel.table import EOS as EOS

__all__ = ["ByteLM", "ByteScore", "CallableLM", "CoverState", "EOS", "HFCausalLM", "NextByte"]
