"""User-facing configs for 1D image tokenizers: the model shape and the training recipe.

Both are frozen pydantic models with ``extra="forbid"``: the single source of defaults. Built-in
recipes ``tiny`` (tests, seconds), ``small`` (this 2-core CPU, < 30 min) and ``base`` (GPU) follow the
recommended defaults of the reference note (``shared/reference/image.md`` §8).
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


from tokkit.config import SEED_MAX, flag_name, read_yaml, validation_message
from tokkit.errors import FormatError, UnknownNameError

__all__ = ["LengthSampler", "ModelConfig", "TiTokConfig", "TrainConfig", "RECIPES", "load_recipe", "model_config_from_json"]


class LengthSampler(str, Enum):
    """How many leading tokens the decoder sees during training."""

    NONE = "none"  # fixed length N (plain TiTok) — the contrast run
    TAIL_BATCH = "tail_batch"  # One-D-Piece tail token drop: one k ~ U{1..N} per batch
    NESTED_UNIFORM = "nested_uniform"  # FlexTok nested dropout: k ~ U{1..N} per sample (key mask)
    NESTED_POW2 = "nested_pow2"  # per sample, k uniform over {1, 2, 4, ..., N}
    NESTED_MIX = "nested_mix"  # per sample, k = N with prob p_full, else U{1..N} (reference §7.3 run O)
    NESTED_DUAL = "nested_dual"  # every sample decoded twice: at k = N and at k ~ U{1..N-1} (2x decoder cost)


class ModelConfig(BaseModel):
    """Shape of a :class:`~tokkit.image.model.Tokenizer1D` (TiTok encoder/decoder, arXiv:2406.07550)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(32, ge=8, description="square input side in pixels")
    patch: int = Field(4, ge=1, description="patch side; image_size must be a multiple")
    width: int = Field(96, ge=8)
    enc_depth: int = Field(3, ge=1)
    dec_depth: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    max_tokens: int = Field(32, ge=1, le=65535, description="N latent tokens")
    quantizer: str = Field("fsq", pattern="^(fsq|vq)$")
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    vq_size: int = Field(1024, ge=2)
    vq_dim: int = Field(12, ge=1)
    conv_head: bool = Field(True, description="conv stem and conv refinement head (reference §7.3 runs K-M)")

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        return self

    @property
    def codebook_size(self) -> int:
        return int(math.prod(self.fsq_levels)) if self.quantizer == "fsq" else self.vq_size

    @property
    def token_dim(self) -> int:
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.vq_dim


class TiTokConfig(BaseModel):
    """Shape of a published-architecture tokenizer (:class:`~tokkit.image.titok.TiTok`), named as the official code.

    TiTok (Yu et al., arXiv:2406.07550, bytedance/1d-tokenizer) and One-D-Piece (Miwa et al., arXiv:2501.10064,
    turingmotors/One-D-Piece). ``legacy``: the original checkpoints' encoder reshape quirk and the proxy-code head
    (1024 MaskGIT-VQGAN logits per patch); ``two_stage``: that head is followed by the MaskGIT-VQGAN pixel decoder;
    otherwise the head predicts pixels (``is_legacy: False`` models). ``quantizer='vae'`` gives continuous tokens.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["titok", "one_d_piece"] = "titok"
    image_size: int = Field(256, ge=8)
    patch: int = Field(16, ge=1)
    enc_width: int = Field(1024, ge=8)
    enc_depth: int = Field(24, ge=1)
    enc_heads: int = Field(16, ge=1)
    dec_width: int = Field(1024, ge=8)
    dec_depth: int = Field(24, ge=1)
    dec_heads: int = Field(16, ge=1)
    max_tokens: int = Field(32, ge=1, le=65535, description="num_latent_tokens")
    quantizer: Literal["vq", "vae"] = "vq"
    vq_size: int = Field(4096, ge=2, description="codebook_size")
    token_size: int = Field(12, ge=1, description="channels of a token (VAE: of its mean)")
    use_l2_norm: bool = True
    commitment_cost: float = Field(0.25, ge=0)
    legacy: bool = Field(True, description="is_legacy: encoder reshape quirk + proxy-code head")
    two_stage: bool = Field(True, description="finetune_decoder: proxy codes -> MaskGIT-VQGAN pixel decoder")
    proxy_codes: int = Field(1024, ge=2, description="MaskGIT-VQGAN codebook size (legacy head outputs)")
    pixel_z_channels: int = Field(256, ge=1)
    pixel_hidden: int = Field(128, ge=32)
    pixel_channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    pixel_res_blocks: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "TiTokConfig":
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        for w, h in ((self.enc_width, self.enc_heads), (self.dec_width, self.dec_heads)):
            if w % h:
                raise ValueError(f"width {w} is not a multiple of heads {h}")
        if self.two_stage and not self.legacy:
            raise ValueError("two_stage needs the legacy proxy-code head (legacy: true)")
        if self.two_stage and 2 ** (len(self.pixel_channel_mult) - 1) != self.patch:
            raise ValueError(f"the pixel decoder upsamples by 2**{len(self.pixel_channel_mult) - 1}, the patch is "
                             f"{self.patch}: they must be equal")
        if self.two_stage and any(self.pixel_hidden * m % 32 for m in self.pixel_channel_mult):
            raise ValueError("pixel_hidden * each pixel_channel_mult must be a multiple of 32 (GroupNorm(32))")
        if self.legacy and self.quantizer == "vae":
            raise ValueError("the published VAE models predict pixels: legacy must be false")
        return self

    @property
    def codebook_size(self) -> int:
        """K ids per token (0 for continuous VAE tokens)."""
        return self.vq_size if self.quantizer == "vq" else 0

    @property
    def token_dim(self) -> int:
        return self.token_size

    @property
    def prefix_trained(self) -> bool:
        """True when training dropped tail tokens (One-D-Piece), i.e. any prefix is in distribution."""
        return self.family == "one_d_piece"


def model_config_from_json(text: str) -> "ModelConfig | TiTokConfig":
    """Parse ``model_config.json``: a published-architecture config carries ``family``; tokkit's own does not."""
    import json

    data = json.loads(text)
    if isinstance(data, dict) and "family" in data:
        return TiTokConfig.model_validate(data)
    return ModelConfig.model_validate(data)


class TrainConfig(BaseModel):
    """A training recipe: the model plus optimiser, length sampler and data augmentation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig()
    sampler: LengthSampler = LengthSampler.NESTED_MIX
    p_full: float = Field(0.5, ge=0.0, le=1.0, description="nested_mix: probability of keeping all N tokens")
    full_final: float = Field(0.0, ge=0.0, lt=1.0,
                              description="share of the last steps trained at k = N only, whatever the sampler")
    steps: int = Field(1200, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine decays to lr * this")
    warmup: int = Field(50, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    l1_weight: float = Field(0.0, ge=0, description="added L1 loss weight (MSE always on)")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    eval_images: int = Field(256, ge=0, description="held-out-of-training images of the train split used for the PSNR readout")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None = torch default)")
    init: str | None = Field(None, description="start from this checkpoint (a tokkit folder, or a published TiTok / "
                                               "One-D-Piece path, preset or hub id) instead of random weights; its "
                                               "architecture replaces `model`")
    trainable: Literal["all", "decoder"] = Field(
        "all", description="'decoder' freezes the encoder, latent tokens and codebook (TiTok's stage 2): the ids of "
                           "existing .tok files and priors keep their meaning")


RECIPES: dict[str, dict] = {
    "tiny": {"model": {"image_size": 16, "patch": 4, "width": 32, "enc_depth": 1, "dec_depth": 1, "heads": 2,
                       "max_tokens": 8, "fsq_levels": [5, 5, 5], "conv_head": False},
             "steps": 20, "batch_size": 8, "warmup": 5, "log_every": 5, "checkpoint_every": 10, "eval_images": 8},
    "small": {"model": {"image_size": 32, "patch": 4, "width": 96, "enc_depth": 3, "dec_depth": 3, "heads": 4,
                        "max_tokens": 32, "fsq_levels": [8, 5, 5, 5], "conv_head": True},
              "sampler": "nested_dual", "steps": 2400, "batch_size": 32, "checkpoint_every": 200},
    "base": {"model": {"image_size": 256, "patch": 16, "width": 512, "enc_depth": 8, "dec_depth": 8, "heads": 8,
                       "max_tokens": 128, "fsq_levels": [8, 8, 8, 5, 5, 5], "conv_head": True},
             "steps": 200_000, "batch_size": 128, "lr": 1e-4, "warmup": 5000, "log_every": 200,
             "checkpoint_every": 5000},
}


def load_recipe(name_or_path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """A built-in recipe name or a YAML file, with ``overrides`` (None values ignored) laid on top."""
    if str(name_or_path) in RECIPES:
        base = dict(RECIPES[str(name_or_path)])
    else:
        p = Path(name_or_path)
        if not p.is_file():
            raise UnknownNameError(f"unknown image recipe {name_or_path!r}; expected one of {sorted(RECIPES)} or a YAML file")
        base = read_yaml(p, "image recipe") or {}
        if not isinstance(base, dict):
            raise FormatError(f"image recipe {p}: expected a mapping of recipe keys, found {type(base).__name__}")
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    model_over = over.pop("model", {}) or {}
    if model_over:
        base["model"] = {**base.get("model", {}), **model_over}
    try:
        return TrainConfig.model_validate({**base, **over})
    except ValidationError as e:
        flags = {k: flag_name(k) for k in over}
        raise FormatError(validation_message(e, label=f"image recipe {name_or_path}", flags=flags,
                                             known=TrainConfig.model_fields)) from None
