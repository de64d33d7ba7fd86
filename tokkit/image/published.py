"""The published TiTok / One-D-Piece tokenizers: presets (hub ids, configs), the official config format, names.

* :data:`PRESETS` — the 12 published tokenizers (TiTok L-32/B-64/S-128, the single-stage VQ and VAE models;
  One-D-Piece S/B/L-256) with their hub repos and :class:`~tokkit.image.config.TiTokConfig`;
* :func:`official_config` / :func:`config_from_official` — to and from the official code's config
  (``model.vq_model.*``, ``dataset.preprocessing.crop_size``: what a hub ``config.json`` holds);
  :func:`infer_config` — the config from a state dict's tensor shapes alone;
* :func:`expected_shapes` / :func:`check_names` — the port's state-dict names and shapes (built on the meta
  device) and the check that names the first missing, unexpected or differently shaped tensor;
  :func:`names_digest` / :func:`compact_names` — the forms ``data/image/official_state_dicts.json`` records.

Finding and loading checkpoint files is :mod:`tokkit.image.checkpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokkit.errors import FormatError
from tokkit.image.config import TiTokConfig

__all__ = ["PRESETS", "Preset", "SIZES", "official_config", "config_from_official", "infer_config", "check_names",
           "expected_shapes", "names_digest", "compact_names", "preset_for"]

SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}  # width, layers, heads (official)
_BY_WIDTH = {w: (name, d, h) for name, (w, d, h) in SIZES.items()}


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


def preset_for(name: str) -> Preset | None:
    """The preset named ``name`` (``titok-l-32``) or published as hub repo ``name``; None if neither."""
    return PRESETS.get(name.lower()) or _BY_HUB.get(name.lower())


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
