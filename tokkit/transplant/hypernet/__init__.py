"""ZeTT-style hypernetwork transplantation: train once per base model, then embed any tokenizer zero-shot.

``train_hypernet(HypernetConfig(base=..., corpus=[...]), out_dir)`` trains and checkpoints;
``tokkit transplant --method hypernet --hypernet OUT_DIR`` applies it through
:class:`tokkit.transplant.methods.hypernet.HypernetInit`.
"""

from tokkit.transplant.hypernet.config import HypernetConfig as HypernetConfig

__all__ = ["HypernetConfig"]
