"""Model folders of the real shapes with seeded random weights, paired with the real tokenizer files.

``configs/smollm2-135m.json`` and ``configs/llama-3.2-1b.json`` are the shapes (data, no download);
:func:`build` instantiates ``LlamaForCausalLM`` from one with ``torch.manual_seed(seed)`` on the
device under test (1.24 B parameters initialise in seconds there, minutes on a CPU), saves it as
float32 safetensors and writes the tokenizer files beside it, so every tokkit path loads it like a
downloaded checkpoint. The weights are random: the checks compare CPU with CUDA on the same folder,
never quality. ``tiny=True`` keeps the vocabulary and shrinks the body (CPU twin).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["CONFIGS", "TINY_BODY", "load_config", "build"]

CONFIGS = Path(__file__).resolve().parent / "configs"
#: the body of the tiny twins: same vocabulary and head layout rules, a few thousand body parameters.
TINY_BODY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16}


def load_config(name: str, *, tiny: bool = False) -> dict:
    """The config dict of ``configs/NAME.json`` (provenance key dropped), shrunk with ``TINY_BODY`` when ``tiny``."""
    cfg = {k: v for k, v in json.loads((CONFIGS / f"{name}.json").read_text()).items() if not k.startswith("_")}
    return cfg | TINY_BODY if tiny else cfg


def build(name: str, tokenizer: str | Path, out: Path, *, tiny: bool, device: torch.device, seed: int = 0,
          layers: int | None = None) -> Path:
    """Write an HF model folder at ``out``: config ``name`` with random weights and the tokenizer at ``tokenizer``.

    ``layers`` overrides the depth (a donor whose embeddings alone are read needs one layer).
    """
    import transformers

    from tokkit.hf_folder import write_tokenizer_files
    from tokkit.tokenizer import load_tokenizer

    cfg = load_config(name, tiny=tiny)
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    tok = load_tokenizer(tokenizer)
    if len(tok.vocab) > cfg["vocab_size"]:
        raise ValueError(f"{tokenizer} has {len(tok.vocab)} ids but config {name} only {cfg['vocab_size']} rows")
    v = tok.vocab
    for role, key in (("bos", "bos_token_id"), ("eos", "eos_token_id")):
        if v.role_id(role) is not None:
            cfg[key] = v.role_id(role)
    cfg.pop("pad_token_id", None)
    config = transformers.LlamaConfig(**cfg)
    torch.manual_seed(seed)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    write_tokenizer_files(tok.to_hf(), v, out, chat_template=tok.chat_template)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out
