"""Published TiTok / One-D-Piece checkpoints: names, hub ids, configs, and loading by the official state-dict names.

A checkpoint is found from a path or a hub id (:func:`resolve_checkpoint`): a tokkit folder
(``model.safetensors`` + ``model_config.json``), a hub snapshot folder (``config.json`` — the official
OmegaConf dump — + ``model.safetensors``), a bare ``.safetensors`` file, a preset name (``titok-l-32``,
``one-d-piece-s-256``, …) or a hub id (``yucornetto/tokenizer_titok_l32_imagenet``). A hub id resolves from the
local HF cache; when the hub may be used (``HF_HUB_OFFLINE``/``TOKKIT_OFFLINE`` unset and reachable) only the
config and the safetensors weights are downloaded; otherwise one line says what to download. Pickled weights
(``pytorch_model.bin``, the official ``*.bin`` files) are never loaded implicitly: ``tokkit image import``
converts them once, with ``torch.load(weights_only=True)`` (tensors only, no code), into a tokkit folder.

The config comes from ``model_config.json``, else ``config.json``, else the preset, else the tensor shapes
(:func:`infer_config`). Before any tensor is read, the port is built on the meta device and its names and
shapes are compared with the file's header: the first missing, unexpected or differently shaped tensor is
named (:func:`check_names`). The port (:class:`~tokkit.image.titok.TiTok`) was checked against the official
code (docs/image.md, "Parity with the official code").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tokkit.config import hub_offline
from tokkit.errors import FormatError, MissingFileError, UnknownNameError
from tokkit.image.config import TiTokConfig, model_config_from_json

__all__ = ["PRESETS", "Preset", "official_config", "config_from_official", "infer_config", "check_names",
           "expected_shapes", "names_digest", "compact_names", "resolve_checkpoint", "load_titok", "read_pickled_state",
           "import_checkpoint"]

log = logging.getLogger(__name__)
SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}  # width, layers, heads (official)
_BY_WIDTH = {w: (name, d, h) for name, (w, d, h) in SIZES.items()}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class Preset:
    """A published tokenizer: its hub repo, the weights file name there, and its config."""

    name: str
    hub_id: str
    weights_file: str
    config: TiTokConfig
    rfid: str  # reported reconstruction FID on ImageNet-1k val 256² (from the model's README)


def _cfg(enc: str, dec: str, n: int, **kw) -> TiTokConfig:
    (ew, ed, eh), (dw, dd, dh) = SIZES[enc], SIZES[dec]
    return TiTokConfig(enc_width=ew, enc_depth=ed, enc_heads=eh, dec_width=dw, dec_depth=dd, dec_heads=dh,
                       max_tokens=n, **kw)


_SINGLE_VQ = dict(vq_size=8192, token_size=64, use_l2_norm=False, legacy=False, two_stage=False)
_VAE = dict(quantizer="vae", token_size=16, legacy=False, two_stage=False)
PRESETS: dict[str, Preset] = {p.name: p for p in (
    # TiTok (README_TiTok.md model zoo). Hub repos written by PyTorchModelHubMixin: config.json + model.safetensors.
    Preset("titok-l-32", "yucornetto/tokenizer_titok_l32_imagenet", "model.safetensors", _cfg("large", "large", 32), "2.21"),
    Preset("titok-b-64", "yucornetto/tokenizer_titok_b64_imagenet", "model.safetensors", _cfg("base", "base", 64), "1.70"),
    Preset("titok-s-128", "yucornetto/tokenizer_titok_s128_imagenet", "model.safetensors", _cfg("small", "small", 128), "1.71"),
    Preset("titok-bl-64-vq", "yucornetto/tokenizer_titok_bl64_vq8k_imagenet", "model.safetensors",
           _cfg("base", "large", 64, **_SINGLE_VQ), "2.06"),
    Preset("titok-bl-128-vq", "yucornetto/tokenizer_titok_bl128_vq8k_imagenet", "model.safetensors",
           _cfg("base", "large", 128, **_SINGLE_VQ), "1.49"),
    Preset("titok-sl-256-vq", "yucornetto/tokenizer_titok_sl256_vq8k_imagenet", "model.safetensors",
           _cfg("small", "large", 256, **_SINGLE_VQ), "1.03"),
    Preset("titok-ll-32-vae", "yucornetto/tokenizer_titok_ll32_vae_c16_imagenet", "model.safetensors",
           _cfg("large", "large", 32, **_VAE), "1.61"),
    Preset("titok-bl-64-vae", "yucornetto/tokenizer_titok_bl64_vae_c16_imagenet", "model.safetensors",
           _cfg("base", "large", 64, **_VAE), "1.25"),
    Preset("titok-bl-128-vae", "yucornetto/tokenizer_titok_bl128_vae_c16_imagenet", "model.safetensors",
           _cfg("base", "large", 128, **_VAE), "0.84"),
    # One-D-Piece (turingmotors/One-D-Piece README; its demo downloads pytorch_model.bin from these repos)
    Preset("one-d-piece-s-256", "turing-motors/One-D-Piece-S-256", "pytorch_model.bin",
           _cfg("small", "small", 256, family="one_d_piece"), "1.48"),
    Preset("one-d-piece-b-256", "turing-motors/One-D-Piece-B-256", "pytorch_model.bin",
           _cfg("base", "base", 256, family="one_d_piece"), "1.11"),
    Preset("one-d-piece-l-256", "turing-motors/One-D-Piece-L-256", "pytorch_model.bin",
           _cfg("large", "large", 256, family="one_d_piece"), "1.08"),
)}
_BY_HUB = {p.hub_id.lower(): p for p in PRESETS.values()}


# ---- configs ------------------------------------------------------------------------------------------
def official_config(cfg: TiTokConfig) -> dict:
    """The official code's config (``config.model.vq_model``, ``config.dataset.preprocessing``) for ``cfg``."""
    for w, d, h in ((cfg.enc_width, cfg.enc_depth, cfg.enc_heads), (cfg.dec_width, cfg.dec_depth, cfg.dec_heads)):
        if _BY_WIDTH.get(w, (None, None, None))[1:] != (d, h):
            raise FormatError(f"width {w} / {d} layers / {h} heads is not one of the official sizes {SIZES}")
    vq = {"vit_enc_model_size": _BY_WIDTH[cfg.enc_width][0], "vit_dec_model_size": _BY_WIDTH[cfg.dec_width][0],
          "vit_enc_patch_size": cfg.patch, "vit_dec_patch_size": cfg.patch, "num_latent_tokens": cfg.max_tokens,
          "token_size": cfg.token_size, "finetune_decoder": cfg.two_stage, "is_legacy": cfg.legacy,
          "quantize_mode": cfg.quantizer}
    if cfg.quantizer == "vq":
        vq |= {"codebook_size": cfg.vq_size, "use_l2_norm": cfg.use_l2_norm, "commitment_cost": cfg.commitment_cost}
    model: dict = {"vq_model": vq}
    if cfg.family == "one_d_piece":
        model["type"] = "one_d_piece"
        vq["strict_length_assertion"] = False
    return {"model": model, "dataset": {"preprocessing": {"crop_size": cfg.image_size}}}


def config_from_official(data: dict, *, family: str | None = None) -> TiTokConfig:
    """Parse the official config (a hub ``config.json`` or a training YAML as a dict) into a :class:`TiTokConfig`."""
    try:
        vq = data["model"]["vq_model"]
        crop = data["dataset"]["preprocessing"]["crop_size"]
        (ew, ed, eh), (dw, dd, dh) = SIZES[vq["vit_enc_model_size"]], SIZES[vq["vit_dec_model_size"]]
        patch = vq["vit_enc_patch_size"]
        if vq.get("vit_dec_patch_size", patch) != patch:
            raise FormatError(f"encoder patch {patch} and decoder patch {vq['vit_dec_patch_size']} differ; tokkit's "
                              "port supports equal patch sizes (as every published model)")
        mode = vq.get("quantize_mode", "vq")
        fam = family or ("one_d_piece" if data["model"].get("type") == "one_d_piece" else "titok")
        kw = dict(family=fam, image_size=crop, patch=patch, enc_width=ew, enc_depth=ed, enc_heads=eh, dec_width=dw,
                  dec_depth=dd, dec_heads=dh, max_tokens=vq["num_latent_tokens"], quantizer=mode,
                  token_size=vq["token_size"], legacy=vq.get("is_legacy", True),
                  two_stage=vq.get("finetune_decoder", True) and mode == "vq")
        if mode == "vq":
            kw |= dict(vq_size=vq["codebook_size"], use_l2_norm=vq.get("use_l2_norm", False),
                       commitment_cost=vq.get("commitment_cost", 0.25))
        return TiTokConfig(**kw)
    except (KeyError, TypeError) as e:
        raise FormatError(f"not a TiTok / One-D-Piece config: missing {e} (expected model.vq_model.* and "
                          "dataset.preprocessing.crop_size, as the official configs)") from None
    except ValueError as e:
        raise FormatError(f"unsupported TiTok / One-D-Piece config: {e}") from None


def infer_config(shapes: dict[str, tuple[int, ...]], *, family: str = "titok") -> TiTokConfig:
    """A config from the tensor shapes of an official state dict (heads from the official width → heads table)."""
    def layers(prefix: str) -> int:
        return len({k.split(".")[2] for k in shapes if k.startswith(prefix + ".transformer.")})

    try:
        ew, _, p, _ = shapes["encoder.patch_embed.weight"]
        dw = shapes["decoder.decoder_embed.weight"][0]
        n = shapes["latent_tokens"][0]
        grid2 = shapes["encoder.positional_embedding"][0] - 1
        out = shapes["encoder.conv_out.weight"][0]
    except KeyError as e:
        raise FormatError(f"not a TiTok / One-D-Piece state dict: no tensor {e}") from None
    if ew not in _BY_WIDTH or dw not in _BY_WIDTH:
        raise FormatError(f"widths {ew}/{dw} are not official sizes; the heads cannot be read from shapes: put a "
                          "model_config.json (or the official config.json) beside the weights")
    vq = "quantize.embedding.weight" in shapes
    legacy = shapes.get("decoder.ffn.0.weight", (0,))[0] == 2 * dw
    kw: dict = dict(quantizer="vq" if vq else "vae", token_size=out if vq else out // 2, legacy=legacy,
                    two_stage="pixel_quantize.embedding.weight" in shapes)
    if vq:
        kw |= dict(vq_size=shapes["quantize.embedding.weight"][0], use_l2_norm=legacy)  # as every published model
    if legacy:
        kw["proxy_codes"] = shapes["decoder.ffn.2.weight"][0]
    return TiTokConfig(family=family, image_size=round(grid2**0.5) * p, patch=p, enc_width=ew, enc_depth=layers("encoder"),
                       enc_heads=_BY_WIDTH[ew][2], dec_width=dw, dec_depth=layers("decoder"), dec_heads=_BY_WIDTH[dw][2],
                       max_tokens=n, **kw)


def expected_shapes(cfg: TiTokConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the port's state dict for ``cfg`` (built on the meta device: no memory)."""
    import torch

    from tokkit.image.titok import TiTok

    with torch.device("meta"):
        model = TiTok(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def names_digest(shapes: dict[str, tuple[int, ...]]) -> str:
    """sha256 of the sorted ``name<TAB>[shape]`` lines of a state dict (what ``official_state_dicts.json`` records)."""
    import hashlib

    lines = "".join(f"{k}\t{list(v)}\n" for k, v in sorted(shapes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def compact_names(shapes: dict[str, tuple[int, ...]]) -> dict[str, list[int]]:
    """Names with the transformer layer index replaced by ``*`` (every layer holds the same tensors)."""
    out: dict[str, list[int]] = {}
    for k, v in sorted(shapes.items()):
        parts = k.split(".")
        if len(parts) > 2 and parts[1] == "transformer":
            parts[2] = "*"
        out[".".join(parts)] = list(v)
    return out


def check_names(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], *, source: str) -> None:
    """Raise :class:`FormatError` naming the first tensor missing, unexpected or with another shape."""
    for k, shape in expected.items():
        if k not in found:
            raise FormatError(f"{source} does not match the model: tensor {k} {list(shape)} is missing "
                              f"({len(found)} tensors found, {len(expected)} expected)")
        if tuple(found[k]) != shape:
            raise FormatError(f"{source} does not match the model: tensor {k} has shape {list(found[k])}, "
                              f"expected {list(shape)}")
    extra = [k for k in found if k not in expected]
    if extra:
        raise FormatError(f"{source} does not match the model: unexpected tensor {extra[0]} {list(found[extra[0]])} "
                          f"({len(extra)} unexpected in all)")


# ---- finding the files --------------------------------------------------------------------------------
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
        from huggingface_hub import hf_hub_download

        log.warning("downloading %s: config.json and model.safetensors (about 0.1-2.5 GB) into the HF cache", repo)
        try:
            return Checkpoint(Path(hf_hub_download(repo, "model.safetensors")), Path(hf_hub_download(repo, "config.json")),
                              preset)
        except Exception as e:  # gated, missing file, network: one line
            raise MissingFileError(f"could not download {repo} (model.safetensors, config.json): {type(e).__name__}") from None
    how = (f"`huggingface-cli download {repo} config.json model.safetensors`" if wanted == "model.safetensors" else
           f"`huggingface-cli download {repo} {wanted}` then `tokkit image import {repo} -o DIR`")
    why = "the hub is offline (HF_HUB_OFFLINE / TOKKIT_OFFLINE)" if hub_offline() else "the hub is not reachable"
    raise MissingFileError(f"checkpoint {repo} is not in the local HF cache and {why}; where the hub is reachable run "
                           f"{how}, then use the cached id or pass the downloaded folder")


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
    preset = PRESETS.get(key.lower()) or _BY_HUB.get(key.lower())
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

    from tokkit.formats.weights import check_safetensors

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
    shapes = _header_shapes(ck.weights)
    cfg = config_for(ck, shapes)
    check_names(expected_shapes(cfg), shapes, source=str(ck.weights))
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

    from tokkit.atomic import atomic_dir
    from tokkit.image.api import weights_id

    if preset is not None and preset not in PRESETS:
        raise UnknownNameError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    ck = resolve_checkpoint(src, allow_pickle=True)
    if preset is not None:
        ck = Checkpoint(ck.weights, ck.config_file, PRESETS[preset])
    if ck.weights.suffix in PICKLE_SUFFIXES:
        state = read_pickled_state(ck.weights)
    else:
        from tokkit.formats.weights import check_safetensors

        check_safetensors(ck.weights)
        state = load_file(str(ck.weights))
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    cfg = PRESETS[preset].config if preset is not None else config_for(ck, shapes, family=family)
    if family is not None:
        cfg = cfg.model_copy(update={"family": family})
    check_names(expected_shapes(cfg), shapes, source=str(ck.weights))
    with atomic_dir(out, force=force) as tmp:
        save_file({k: v.float().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
        (tmp / "model_config.json").write_text(cfg.model_dump_json(indent=1))
        mid = weights_id(tmp / "model.safetensors")
    return {"source": str(ck.weights), "config": cfg, "model_id": mid,
            "params": sum(v.numel() for v in state.values())}
