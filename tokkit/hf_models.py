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
* before loading, every safetensors file is checked complete and free of NaN/inf, and a sharded model's
  index names only plain shard files present in the folder (:func:`tokkit.formats.weights.check_weights_folder`),
  so a damaged model is one line naming the tensor or the shard;
* ``config.json`` is read as a regular file of at most 16 MB and checked before transformers sees it: a JSON
  object, a ``model_type`` transformers knows, sizes that are positive integers within :data:`CONFIG_BOUNDS`;
* after loading, a tensor the model needs but the weights lack (transformers fills it with random values and
  goes on), a tensor of the wrong size, or an input embedding stored as integers is one error
  (:func:`load_causal_lm`).

Torch and transformers are imported inside the functions (``import tokkit`` stays torch-free).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json, read_side_bytes

__all__ = ["check_model_folder", "check_model_config", "load_causal_lm", "load_base_model", "load_hf_tokenizer", "load_gguf_model",
           "PICKLE_SUFFIXES", "SAFE_KWARGS", "CONFIG_BOUNDS"]

#: Weight files that only pickle can read.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: What every from_pretrained call gets.
SAFE_KWARGS: dict[str, Any] = {"trust_remote_code": False, "local_files_only": True}

#: Upper bounds of a config's sizes (generous for any published model; a config beyond them is damaged or
#: hostile: 10**9 layers would allocate without end).
CONFIG_BOUNDS = {"vocab_size": 1 << 24, "hidden_size": 1 << 17, "intermediate_size": 1 << 20, "num_hidden_layers": 1024,
                 "num_attention_heads": 1024, "num_key_value_heads": 1024, "max_position_embeddings": 1 << 24,
                 "head_dim": 1 << 14, "n_embd": 1 << 17, "n_layer": 1024, "n_head": 1024, "n_positions": 1 << 24}

_CONVERT = ("convert it to safetensors first (in a Python you trust: `AutoModelForCausalLM.from_pretrained(FOLDER)"
            ".save_pretrained(OUT, safe_serialization=True)`), or use a folder that has *.safetensors weights")


def _auto_map(folder: Path) -> str | None:
    for name in ("config.json", "tokenizer_config.json"):
        p = folder / name
        if not p.is_file():
            continue
        try:
            data = read_json(p, max_bytes=SIDE_FILE_MAX_BYTES)  # a regular file, capped: /dev/zero never read
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
        check_model_config(d)
        safe = list(d.glob("*.safetensors"))
        pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())
        if not safe and pickles:
            raise FormatError(f"{d} has weights only as pickle files ({', '.join(pickles[:3])}), which tokkit does not "
                              f"load because unpickling runs code; {_CONVERT}")
        from tokkit.formats.weights import check_weights_folder

        check_weights_folder(d)
    return d.resolve()


def check_model_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` checked before transformers reads it (module docstring); returns it."""
    p = folder / "config.json"
    if not os.path.lexists(p):
        raise MissingFileError(f"{folder} has no config.json; expected an HF model folder (config.json + *.safetensors)")
    raw = read_side_bytes(p, expected="pass an HF model folder with a JSON config.json")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{p} is not valid JSON ({str(e)[:80]}); the model folder is damaged: fetch or save it again") from None
    if not isinstance(data, dict):
        raise FormatError(f"{p} holds a JSON {type(data).__name__}, not an object; the model folder is damaged: fetch "
                          "or save it again")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    mt = data.get("model_type")
    if not isinstance(mt, str) or mt not in CONFIG_MAPPING_NAMES:
        raise FormatError(f"{p}: model_type {mt!r} is not an architecture this transformers knows; expected one such as "
                          "'llama', 'gemma3_text', 'qwen2': use a model of a built-in architecture (tokkit runs no "
                          "model code of its own)")
    for key, top in CONFIG_BOUNDS.items():
        v = data.get(key)
        if v is not None and (type(v) is not int or not 1 <= v <= top):
            raise FormatError(f"{p}: {key} = {v!r}; expected a whole number in 1..{top:,}: the config is damaged or "
                              "was changed: fetch or save the model again")
    return data


def load_causal_lm(folder: str | Path, *, device: Any = "cpu", dtype: Any = None) -> Any:
    """``AutoModelForCausalLM`` from a checked local folder, float32 by default, in eval mode on ``device``.

    Raises:
        FormatError: the weights lack a tensor the model needs, hold one of the wrong size, or store the input
            embedding as integers; or transformers cannot build the model from the folder at all.
    """
    import torch
    from transformers import AutoModelForCausalLM

    d = check_model_folder(folder)
    try:
        model, info = AutoModelForCausalLM.from_pretrained(str(d), dtype=dtype or torch.float32, use_safetensors=True,
                                                           output_loading_info=True, **SAFE_KWARGS)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - anything transformers raises on a folder it cannot build: one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].replace(" For details look at the above report!", "")[:200]
        fix = ("config.json's vocab_size (or another size) disagrees with the weights: fix config.json or re-save the "
               "model" if "mismatch" in str(e) else "fix or re-save the model folder")
        raise FormatError(f"cannot load the model in {d} ({type(e).__name__}: {first}); {fix}") from None
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        tie = " (an untied config without lm_head.weight: set tie_word_embeddings to true if the head is the input " \
              "embedding)" if any(k.endswith("lm_head.weight") for k in missing) else ""
        raise FormatError(f"the weights in {d} lack {len(missing)} tensor(s) the model needs ({', '.join(missing[:3])})"
                          f"{tie}; transformers would fill them with random values: fetch the model again or re-save it")
    _check_float_embedding(model, d)
    return model.to(device).eval()


def _check_float_embedding(model: Any, folder: Path) -> None:
    """The stored dtype of the input embedding is a float (an integer table read as weights gives nonsense)."""
    from tokkit.formats.weights import FLOAT_DTYPES, read_index, safetensors_header

    weight = model.get_input_embeddings().weight
    names = {n for n, p in model.named_parameters() if p is weight}
    files = sorted(set((read_index(folder) or {}).values())) or [p.name for p in sorted(folder.glob("*.safetensors"))]
    for f in files:
        _, header = safetensors_header(folder / f)
        for name in names & header.keys():
            dtype = header[name].get("dtype")
            if dtype not in FLOAT_DTYPES:
                raise FormatError(f"{folder / f}: the input embedding {name} is stored as {dtype}; expected a float "
                                  "tensor (F32, F16, BF16): the file is damaged or was changed: fetch or save the model again")


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
