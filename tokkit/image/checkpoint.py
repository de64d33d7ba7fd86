"""Finding and loading TiTok / One-D-Piece checkpoint files, by path, preset name or hub id; never unpickling.

A checkpoint is found (:func:`resolve_checkpoint`) as a tokkit folder (``model.safetensors`` +
``model_config.json``), a hub snapshot folder (``config.json`` — the official OmegaConf dump — +
``model.safetensors``), a bare ``.safetensors`` file, a preset name (``titok-l-32``, ``one-d-piece-s-256``, …)
or a hub id (``yucornetto/tokenizer_titok_l32_imagenet``). A hub id resolves from the local HF cache; when the
hub may be used (``HF_HUB_OFFLINE``/``TOKKIT_OFFLINE`` unset and reachable) only ``config.json`` and
``model.safetensors`` are downloaded; otherwise one line says what to download. Pickled weights
(``pytorch_model.bin``, the official ``*.bin`` files) are never loaded implicitly: :func:`import_checkpoint`
(``tokkit image import``) converts them once, with ``torch.load(weights_only=True)`` (tensors only, no code).

The config comes from ``model_config.json``, else ``config.json``, else the preset, else the tensor shapes
(:func:`~tokkit.image.published.infer_config`). Before any tensor is read, the port is built on the meta
device and its names and shapes are compared with the file's header (the first mismatch is named). The port
(:class:`~tokkit.image.titok.TiTok`) was checked against the official code (docs/image.md, "Parity with the
official code").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tokkit.atomic import atomic_dir, note_input
from tokkit.config import hub_offline
from tokkit.errors import FormatError, MissingFileError, NonFiniteError, UnknownNameError
from tokkit.formats.weights import check_finite_safetensors, check_safetensors
from tokkit.image.config import TiTokConfig, model_config_from_json
from tokkit.image.published import PRESETS, Preset, check_names, config_from_official, expected_shapes, infer_config, preset_for

__all__ = ["Checkpoint", "resolve_checkpoint", "config_for", "load_titok", "read_pickled_state", "import_checkpoint"]

log = logging.getLogger(__name__)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class Checkpoint:
    """A located checkpoint: the weights file, the config file beside it (if any) and the preset (if known)."""

    weights: Path
    config_file: Path | None
    preset: Preset | None


def _cached(repo: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        p = try_to_load_from_cache(repo, filename)
    except Exception:  # no cache, malformed repo id: not cached
        return None
    return Path(p) if isinstance(p, str) else None


def _from_hub(repo: str, preset: Preset | None, *, allow_pickle: bool = False) -> Checkpoint:
    from tokkit.names import hub_reachable

    names = ("model.safetensors", "pytorch_model.bin")
    cached = {n: _cached(repo, n) for n in names}
    cfg = _cached(repo, "config.json")
    if cached["model.safetensors"] is not None:
        return Checkpoint(cached["model.safetensors"], cfg, preset)
    if cached["pytorch_model.bin"] is not None and allow_pickle:
        return Checkpoint(cached["pytorch_model.bin"], cfg, preset)
    if cached["pytorch_model.bin"] is not None:
        raise FormatError(f"{repo} is cached with pickled weights only ({cached['pytorch_model.bin']}); tokkit does not "
                          f"unpickle implicitly: convert once with `tokkit image import {repo} -o DIR` and use DIR")
    wanted = preset.weights_file if preset else "model.safetensors"
    if wanted == "model.safetensors" and hub_reachable():
        from tokkit.hub import fetch_model  # config.json + top-level safetensors only, announced with their size

        snap = fetch_model(repo)
        return Checkpoint(snap / "model.safetensors", snap / "config.json" if (snap / "config.json").is_file() else None,
                          preset)
    if wanted != "model.safetensors":
        raise MissingFileError(f"checkpoint {repo} is published as pickled {wanted}, which tokkit neither downloads nor "
                               f"unpickles implicitly: run `huggingface-cli download {repo} {wanted}` then "
                               f"`tokkit image import {repo} -o DIR`, and use DIR")
    why = "the hub is offline (HF_HUB_OFFLINE / TOKKIT_OFFLINE)" if hub_offline() else "the hub is not reachable"
    raise MissingFileError(f"checkpoint {repo} is not in the local HF cache and {why}; where the hub is reachable run "
                           f"`huggingface-cli download {repo} config.json model.safetensors`, then use the cached id "
                           "or pass the downloaded folder")


def resolve_checkpoint(name_or_path: str | Path, *, allow_pickle: bool = False) -> Checkpoint:
    """Locate a published-architecture checkpoint (see the module note). ``allow_pickle`` (``tokkit image import``
    only) also returns pickled weights files, which the caller reads with :func:`read_pickled_state`."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        cfg_file = next((p / n for n in ("model_config.json", "config.json") if (p / n).is_file()), None)
        if (p / "model.safetensors").is_file():
            return Checkpoint(p / "model.safetensors", cfg_file, None)
        pickles = sorted(q.name for q in p.iterdir() if q.suffix in PICKLE_SUFFIXES)
        if pickles and allow_pickle:
            return Checkpoint(p / pickles[0], cfg_file, None)
        if pickles:
            raise FormatError(f"{p} holds pickled weights only ({pickles[0]}); tokkit does not unpickle implicitly: convert "
                              f"once with `tokkit image import {p / pickles[0]} -o DIR` and use DIR")
        found = ", ".join(sorted(q.name for q in p.iterdir())[:5]) or "nothing"
        raise MissingFileError(f"{p} is not an image tokenizer checkpoint: expected model.safetensors with "
                               f"model_config.json (tokkit) or config.json (published) in it, found {found}; train one "
                               "with `tokkit image train -o DIR` or pass a published checkpoint")
    if p.is_file():
        if p.suffix in PICKLE_SUFFIXES and not allow_pickle:
            raise FormatError(f"{p} is a pickled checkpoint; tokkit does not unpickle implicitly: convert it once with "
                              f"`tokkit image import {p} -o DIR` and use DIR")
        side = next((p.parent / n for n in ("model_config.json", "config.json") if (p.parent / n).is_file()), None)
        return Checkpoint(p, side, None)
    key = str(name_or_path)
    preset = preset_for(key)
    if preset is not None:
        return _from_hub(preset.hub_id, preset, allow_pickle=allow_pickle)
    if _REPO_ID.match(key) and not Path(key.split("/")[0]).exists():
        return _from_hub(key, None, allow_pickle=allow_pickle)
    raise UnknownNameError(f"image model {key!r} is neither an existing path nor a known checkpoint; known: "
                           f"{', '.join(PRESETS)} (or any hub id org/name, or a checkpoint folder)")


def read_pickled_state(path: Path) -> dict:
    """Tensors of a pickled state dict via ``torch.load(weights_only=True)`` (refuses code objects)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise FormatError(f"{path} is not a loadable tensor-only checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise FormatError(f"{path} does not hold a flat state dict of tensors")
    return state


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    check_safetensors(path)
    with safe_open(str(path), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def config_for(ck: Checkpoint, shapes: dict[str, tuple[int, ...]], *, family: str | None = None) -> TiTokConfig:
    """The model config of a located checkpoint: its config file, else its preset, else its shapes.
    ``family`` overrides the family (TiTok and One-D-Piece share every tensor name and shape)."""
    cfg = _config_for(ck, shapes)
    return cfg if family is None or family == cfg.family else cfg.model_copy(update={"family": family})


def _config_for(ck: Checkpoint, shapes: dict[str, tuple[int, ...]]) -> TiTokConfig:
    if ck.config_file is not None:
        text = ck.config_file.read_text()
        try:
            if ck.config_file.name == "model_config.json":
                cfg = model_config_from_json(text)
                if not isinstance(cfg, TiTokConfig):
                    raise FormatError(f"{ck.config_file} is a tokkit Tokenizer1D config; load it with ImageTokenizer.load")
                return cfg
            return config_from_official(json.loads(text), family=ck.preset.config.family if ck.preset else None)
        except ValueError as e:
            raise FormatError(f"{ck.config_file} is not a valid model config: {str(e).splitlines()[0]}") from None
    if ck.preset is not None:
        return ck.preset.config
    return infer_config(shapes)


def load_titok(name_or_path: str | Path, *, device="cpu"):
    """``(TiTok model in eval mode, model id)`` for a path / preset / hub id; refuses mismatched names or shapes."""
    import torch
    from safetensors.torch import load_file

    from tokkit.image.titok import TiTok

    ck = resolve_checkpoint(name_or_path)
    note_input(ck.weights, ck.config_file)  # what the run reads: no output of it may replace these files
    shapes = _header_shapes(ck.weights)
    cfg = config_for(ck, shapes)
    check_names(expected_shapes(cfg), shapes, source=str(ck.weights))
    check_finite_safetensors(ck.weights)  # NaN/inf weights: one line naming the tensor, before any work
    with torch.device("meta"):
        model = TiTok(cfg)
    model.load_state_dict(load_file(str(ck.weights), device=str(device)), strict=True, assign=True)
    from tokkit.image.api import weights_id

    return model.eval(), weights_id(ck.weights)


def import_checkpoint(src: str | Path, out: Path, *, preset: str | None = None, family: str | None = None,
                      force: bool = False) -> dict:
    """Convert a published checkpoint (safetensors, or a pickle read with ``weights_only=True``) into a tokkit folder
    ``out`` (``model.safetensors`` under the official names + ``model_config.json``); returns a summary."""
    from safetensors.torch import load_file, save_file

    from tokkit.image.api import weights_id

    if preset is not None and preset not in PRESETS:
        raise UnknownNameError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    ck = resolve_checkpoint(src, allow_pickle=True)
    note_input(ck.weights, ck.config_file)
    if preset is not None:
        ck = Checkpoint(ck.weights, ck.config_file, PRESETS[preset])
    if ck.weights.suffix in PICKLE_SUFFIXES:
        state = read_pickled_state(ck.weights)
    else:
        check_safetensors(ck.weights)
        state = load_file(str(ck.weights))
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    cfg = PRESETS[preset].config if preset is not None else config_for(ck, shapes, family=family)
    if family is not None:
        cfg = cfg.model_copy(update={"family": family})
    check_names(expected_shapes(cfg), shapes, source=str(ck.weights))
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)
    if bad is not None:
        raise NonFiniteError(f"{ck.weights}: tensor {bad} holds NaN or infinite values; the weights are damaged: "
                             "download them again")
    with atomic_dir(out, force=force) as tmp:
        save_file({k: v.float().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
        (tmp / "model_config.json").write_text(cfg.model_dump_json(indent=1))
        mid = weights_id(tmp / "model.safetensors")
    return {"source": str(ck.weights), "config": cfg, "model_id": mid,
            "params": sum(v.numel() for v in state.values())}
