"""Convert the GGUF models of the fixtures into ordinary HF model folders, once.

transformers dequantizes GGUF weights to float32 (SmolLM2-135M: ~22 s, Gemma-3-270M: ~50 s);
the result (safetensors + config.json + tokenizer files + generation_config.json) is cached under
``tokkit_home()/models/NAME`` and reused by every later run.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tokkit.atomic import atomic_dir
from tokkit.config import tokkit_home

__all__ = ["GGUF_MODELS", "convert_gguf", "convert_gguf_models"]

LOG = logging.getLogger(__name__)

#: alias -> (GGUF file under tokkit_home(), group)
GGUF_MODELS = {
    "smollm2": ("gguf/SmolLM2-135M-Instruct.Q4_1.gguf", "core"),
    "gemma3": ("gguf/gemma-3-270m-q4_k_m.gguf", "all"),
}


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, *, force: bool = False, label: str | None = None) -> Path:
    """Dequantize a GGUF causal LM into an HF folder ``out_dir`` (atomic). transformers' tensor bar is
    labelled ``label`` (default: the GGUF file name), so a user sees *what* is being converted."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tokkit.hf_models import load_gguf_model

    g = Path(gguf_path)
    t0 = time.perf_counter()
    with _labelled_bars(f"converting {label or g.name} to float32"):
        tok, model = load_gguf_model(g)
    # The weights are already dequantized to float32: drop the GGUF quantizer marker so the model
    # saves as an ordinary checkpoint.
    model.hf_quantizer = None
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:
            pass
    with atomic_dir(out_dir, force=force) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    LOG.info("converted %s -> %s in %.1f s", g.name, out_dir, time.perf_counter() - t0)
    return Path(out_dir)


def convert_gguf_models(*, include_all: bool = False, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Convert each fetched GGUF model that has no HF folder yet; return the folders."""
    out = []
    for alias, (rel, group) in GGUF_MODELS.items():
        if group != "core" and not include_all:
            continue
        folder = tokkit_home() / "models" / alias
        if not (folder / "config.json").exists():
            (progress or LOG.info)(f"converting {alias} ({Path(rel).name}, quantized) to a float32 HF folder ...")
            t0 = time.perf_counter()
            convert_gguf(tokkit_home() / rel, folder, force=True, label=alias)
            (progress or LOG.info)(f"converted {alias} ({Path(rel).name}) to an HF folder in "
                                   f"{time.perf_counter() - t0:.0f} s -> {folder}")
        out.append(folder)
    return out


@contextmanager
def _labelled_bars(label: str) -> Iterator[None]:
    """tqdm bars opened inside get ``label`` as their description (transformers names its GGUF bar after
    the step, not the model, and tokkit fetch quiets the rest)."""
    import tqdm.auto as auto

    real = auto.tqdm

    class Labelled(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kw):
            kw["desc"] = label
            super().__init__(*args, **kw)

    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    old = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = Labelled
    try:
        yield
    finally:
        if old is not None:
            gguf_utils.tqdm = old
