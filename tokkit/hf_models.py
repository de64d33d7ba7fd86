"""The one way tokkit loads a transformers model or tokenizer: no code from the data, no prompt, no download.

Every ``from_pretrained`` in the library goes through here (tests/test_safe_loading.py checks the source):

* ``trust_remote_code=False`` always, so transformers never asks "run the custom code? [y/N]" and never
  imports a ``.py`` file shipped in a model folder;
* a folder whose ``config.json`` or ``tokenizer_config.json`` has ``auto_map`` (it names such code) is
  refused in one line before transformers sees it -- tokkit never runs a folder's code;
* weights are read from safetensors only (``use_safetensors=True``): a folder whose weights exist only
  as pickles (``pytorch_model.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) is refused with how to convert it,
  because unpickling runs code;
* ``local_files_only=True``: loading never touches the network (a hub model is fetched, when the user
  named one, by :func:`tokkit.names.resolve_model` with its own notice and file patterns);
* before loading, every safetensors file is checked complete and free of NaN/inf
  (:func:`tokkit.formats.weights.check_weights_folder`), so a damaged model is one line naming the tensor.

Torch and transformers are imported inside the functions (``import tokkit`` stays torch-free).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokkit.errors import FormatError, MissingFileError

__all__ = ["check_model_folder", "load_causal_lm", "load_base_model", "load_hf_tokenizer", "load_gguf_model",
           "PICKLE_SUFFIXES", "SAFE_KWARGS"]

#: Weight files that only pickle can read.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: What every from_pretrained call gets.
SAFE_KWARGS: dict[str, Any] = {"trust_remote_code": False, "local_files_only": True}

_CONVERT = ("convert it to safetensors first (in a Python you trust: `AutoModelForCausalLM.from_pretrained(FOLDER)"
            ".save_pretrained(OUT, safe_serialization=True)`), or use a folder that has *.safetensors weights")


def _auto_map(folder: Path) -> str | None:
    for name in ("config.json", "tokenizer_config.json"):
        p = folder / name
        if not p.is_file():
            continue
        try:
            data = json.loads(p.read_text(encoding="utf-8-sig"))
        except (ValueError, OSError):
            continue  # the loader itself reports a damaged config
        if isinstance(data, dict) and data.get("auto_map"):
            return name
    return None


def check_model_folder(folder: str | Path, *, weights: bool = True) -> Path:
    """Refuse a folder that would run code or whose weights are damaged; returns it resolved.

    ``weights``: also require safetensors weights (False for a tokenizer-only folder).
    """
    d = Path(folder)
    if not d.is_dir():
        raise MissingFileError(f"model folder {d} does not exist; pass an HF model folder or a model alias")
    where = _auto_map(d)
    if where is not None:
        raise FormatError(f"{d}/{where} has an auto_map: the folder wants transformers to run its own Python code, "
                          "and tokkit never runs code from a model folder; use a model of an architecture "
                          "transformers ships (remove auto_map only if the built-in class is the right one)")
    if weights:
        safe = list(d.glob("*.safetensors"))
        pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
        if not safe and pickles:
            raise FormatError(f"{d} has weights only as pickle files ({', '.join(pickles[:3])}), which tokkit does not "
                              f"load because unpickling runs code; {_CONVERT}")
        from tokkit.formats.weights import check_weights_folder

        check_weights_folder(d)
    return d.resolve()


def load_causal_lm(folder: str | Path, *, device: Any = "cpu", dtype: Any = None) -> Any:
    """``AutoModelForCausalLM`` from a checked local folder, float32 by default, in eval mode on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    d = check_model_folder(folder)
    model = AutoModelForCausalLM.from_pretrained(str(d), dtype=dtype or torch.float32, use_safetensors=True,
                                                 **SAFE_KWARGS)
    return model.to(device).eval()


def load_base_model(folder: str | Path, *, device: Any = "cpu") -> Any:
    """``AutoModel`` (the backbone, e.g. a sentence-embedding model) from a checked local folder, eval mode."""
    from transformers import AutoModel

    d = check_model_folder(folder)
    return AutoModel.from_pretrained(str(d), use_safetensors=True, **SAFE_KWARGS).to(device).eval()


def load_hf_tokenizer(folder: str | Path, **kwargs: Any) -> Any:
    """``AutoTokenizer`` from a checked local folder (no weights needed)."""
    from transformers import AutoTokenizer

    d = check_model_folder(folder, weights=False)
    return AutoTokenizer.from_pretrained(str(d), **kwargs, **SAFE_KWARGS)


def load_gguf_model(path: str | Path, *, with_model: bool = True) -> tuple[Any, Any]:
    """(tokenizer, causal LM or None) from a local GGUF file (transformers dequantizes; a GGUF holds no code)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    if _auto_map(p.parent) is not None:
        check_model_folder(p.parent, weights=False)  # raises the auto_map refusal
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name, **SAFE_KWARGS)
    model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, **SAFE_KWARGS) if with_model else None
    return tok, model
