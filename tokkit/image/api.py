"""The public image tokenizer: ``tokenize`` / ``detokenize`` / ``encode_adaptive`` and its codebook.

:class:`ImageTokenizer` wraps a trained :class:`~tokkit.image.model.Tokenizer1D` with its config and a
model identity (``model_id``: the first 16 hex digits of the sha256 of its weights file) that ``.tok``
files record. Any prefix of a token list decodes (the model is trained with tail drop / nested dropout).
The codebook is a :class:`~tokkit.vocab.CodebookVocab` with an :class:`~tokkit.embedding.EmbeddingTable`
of code vectors — the interface text tokenizers use, so image tokens can join a text vocab.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from tokkit.embedding import EmbeddingTable
from tokkit.errors import FormatError, InputTypeError, NonFiniteError
from tokkit.formats.weights import check_safetensors
from tokkit.image.bitstream import payload_bytes
from tokkit.image.config import ModelConfig, TiTokConfig, model_config_from_json
from tokkit.image.errors import ImageSizeError, TokenCountError
from tokkit.image.model import Tokenizer1D
from tokkit.vocab import CodebookVocab

if TYPE_CHECKING:
    from tokkit.image.titok import TiTok

__all__ = ["ImageTokenizer", "psnr_per_image"]

log = logging.getLogger(__name__)

WEIGHTS, CONFIG = "model.safetensors", "model_config.json"


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of ``(B, 3, H, W)`` images in [0, 1] after 8-bit rounding: ``(B,)``."""
    x8, y8 = (x.clamp(0, 1) * 255).round(), (y.clamp(0, 1) * 255).round()
    mse = ((x8 - y8) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(255.0**2 / mse)


class ImageTokenizer:
    """A trained 1D image tokenizer (inference). Images are ``(B, 3, S, S)`` float in [0, 1], S = ``image_size``.

    The model is tokkit's own :class:`~tokkit.image.model.Tokenizer1D` or a published TiTok / One-D-Piece
    (:class:`~tokkit.image.titok.TiTok`, loaded by its official state-dict names): both encode to N tokens and
    decode any prefix. TiTok was trained at its full length N only, so a shorter prefix decodes out of
    distribution (logged); One-D-Piece and tokkit's samplers train every prefix. A VAE model's tokens are
    continuous: use :meth:`encode_latents` / :meth:`decode_latents` (no ids, no ``.tok``).
    """

    def __init__(self, model: "Tokenizer1D | TiTok", *, model_id: str) -> None:
        self.model = model.eval()
        self.config: ModelConfig | TiTokConfig = model.cfg
        self.model_id = model_id
        K = self.config.codebook_size
        self.vocab = CodebookVocab(K, name=f"image-{model_id}") if K else None
        self._warned_prefix = False

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path, *, device: str | torch.device = "cpu") -> "ImageTokenizer":
        """Load a checkpoint: a tokkit folder (``model_config.json`` + ``model.safetensors``), or a published
        TiTok / One-D-Piece checkpoint by path, preset name or hub id (:mod:`tokkit.image.published`)."""
        d = Path(folder)
        if not (d / WEIGHTS).is_file() or not (d / CONFIG).is_file():
            from tokkit.image.checkpoint import load_titok

            model, mid = load_titok(folder, device=device)
            return cls(model, model_id=mid)
        try:
            cfg = model_config_from_json((d / CONFIG).read_text())
        except ValueError as e:
            raise FormatError(f"{d / CONFIG} is not a valid image model config: {e}") from None
        if isinstance(cfg, TiTokConfig):
            from tokkit.image.checkpoint import load_titok

            model, mid = load_titok(d, device=device)
            return cls(model, model_id=mid)
        model = Tokenizer1D(cfg)
        check_safetensors(d / WEIGHTS)  # truncated or foreign: one clear error before the native reader
        state = load_file(str(d / WEIGHTS))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if not m.startswith("quantizer.")]:
            raise FormatError(f"{d / WEIGHTS} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return cls(model.to(device), model_id=weights_id(d / WEIGHTS))

    @staticmethod
    def save_model(model: Tokenizer1D, folder: Path) -> str:
        """Write weights + config into an existing ``folder``; returns the model id."""
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        (folder / CONFIG).write_text(json.dumps(model.cfg.model_dump(mode="json"), indent=1))
        return weights_id(folder / WEIGHTS)

    # ---- checks ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def continuous(self) -> bool:
        """True for a VAE model: tokens are vectors, not ids."""
        return self.config.codebook_size == 0

    def require_ids(self) -> None:
        if self.continuous:
            raise TokenCountError("this model has continuous (VAE) tokens: no ids, no .tok files; use "
                                  "encode_latents / decode_latents")

    def _note_prefix(self, k: int) -> None:
        N = self.config.max_tokens
        if k < N and not getattr(self.config, "prefix_trained", True) and not self._warned_prefix:
            self._warned_prefix = True
            log.warning("this TiTok model was trained at its full length N = %d only: a prefix of %d tokens decodes "
                        "out of distribution (One-D-Piece and tokkit's samplers train every prefix)", N, k)

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 3, S, S)`` as the model's floats in [0, 1]: uint8 pixels are divided by 255
        (torchvision's ``to_dtype(scale=True)``), numpy arrays taken as tensors; other integer dtypes,
        non-finite values and values outside [0, 1] (normalised or 0..255 floats, which would encode
        to wrong ids without a sign) are refused."""
        images = _as_pixels(images)
        S = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3:
            raise ImageSizeError(f"expected images of shape (B, 3, {S}, {S}), found {tuple(images.shape)}; "
                                 "load files with tokkit.image.data.load_images(paths, size=...)")
        if images.shape[-2:] != (S, S):
            raise ImageSizeError(f"this model takes {S}x{S} images, found {images.shape[-1]}x{images.shape[-2]}; "
                                 f"resize or crop to {S}x{S} first (load_images does it)")
        _check_range(images)
        return images.to(self.device, next(self.model.parameters()).dtype)

    def _check_k(self, k: int) -> int:
        N = self.config.max_tokens
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):  # 3.5 or True would slice silently
            raise InputTypeError(f"token count k (max_tokens) must be an int, found {type(k).__name__} {k!r}; "
                                 f"pass an int in 1..{N}, e.g. max_tokens={N}")
        k = int(k)
        if not 1 <= k <= N:
            raise TokenCountError(f"token count k (-k/--tokens) must lie in 1..{N} (this model's N), found {k}")
        return k

    # ---- the API -----------------------------------------------------------------------------
    @torch.inference_mode()
    def tokenize(self, images: torch.Tensor, *, max_tokens: int | None = None) -> list[torch.Tensor]:
        """``images (B, 3, S, S)`` -> B LongTensors of the first ``max_tokens`` (default N) ids, on CPU."""
        self.require_ids()
        k = self._check_k(max_tokens if max_tokens is not None else self.config.max_tokens)
        _, ids, _ = self.model.encode(self._check_images(images))
        return [row[:k].cpu() for row in ids]

    @torch.inference_mode()
    def detokenize(self, token_lists: list[torch.Tensor]) -> torch.Tensor:
        """Token lists of any lengths 1..N -> images ``(B, 3, S, S)`` clamped to [0, 1], on CPU."""
        self.require_ids()
        S, size = self.config.image_size, self.config.codebook_size
        out = torch.empty(len(token_lists), 3, S, S)
        by_len: dict[int, list[int]] = {}
        for i, t in enumerate(token_lists):
            t = torch.as_tensor(t)
            if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise TokenCountError(f"each image's token ids must be a 1-d list of ints, found {t.ndim}-d {t.dtype} "
                                      f"at position {i}; pass e.g. ImageTokenizer.tokenize's lists")
            self._check_k(int(t.numel()))
            if int(t.min()) < 0 or int(t.max()) >= size:
                raise TokenCountError(f"image token ids must lie in 0..{size - 1}, found {int(t.min())}..{int(t.max())}")
            by_len.setdefault(int(t.numel()), []).append(i)
        for k, idx in sorted(by_len.items()):
            self._note_prefix(k)
            ids = torch.stack([torch.as_tensor(token_lists[i]).long() for i in idx]).to(self.device)
            out[idx] = self.model.decode_ids(ids).clamp(0, 1).float().cpu()
        return out

    @torch.inference_mode()
    def encode_adaptive(self, images: torch.Tensor, *, min_psnr: float | None = None, max_bytes: int | None = None,
                        ar_prior=None) -> list[torch.Tensor]:
        """Smallest k per image reaching ``min_psnr`` dB (N if none does), or largest k within ``max_bytes``.

        With ``ar_prior`` (an :class:`~tokkit.image.ar_coding.ARCoder`) ``max_bytes`` bounds the real context-coded
        size of each image's ids (its arithmetic code, which never shrinks as k grows); without it, the packed size.
        """
        if (min_psnr is None) == (max_bytes is None):
            raise TokenCountError("encode_adaptive needs exactly one of min_psnr= or max_bytes=")
        if min_psnr is not None:
            if isinstance(min_psnr, bool) or not isinstance(min_psnr, numbers.Real):
                raise InputTypeError(f"min_psnr must be a number of dB, found {type(min_psnr).__name__} {min_psnr!r}; "
                                     "pass e.g. min_psnr=30.0")
            if not math.isfinite(min_psnr):
                raise NonFiniteError(f"min_psnr must be a finite number of dB, found {min_psnr}; pass e.g. "
                                     "min_psnr=30.0 (a target no k reaches gives N tokens)")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral)):
            raise InputTypeError(f"max_bytes must be an int, found {type(max_bytes).__name__} {max_bytes!r}; "
                                 "pass e.g. max_bytes=16")
        full = self.tokenize(images)
        N = self.config.max_tokens
        if max_bytes is not None and ar_prior is not None:
            out = []
            for t in full:
                sizes = ar_prior.prefix_bytes(t.tolist())
                fits = [k for k, b in enumerate(sizes, 1) if b <= max_bytes]
                if not fits:
                    raise TokenCountError(f"max_bytes={max_bytes} is below the {sizes[0]} bytes the first token of an "
                                          "image needs with this prior; allow more bytes")
                out.append(t[: fits[-1]])
            return out
        if max_bytes is not None:
            fits = [k for k in range(1, N + 1) if payload_bytes(k, self.config.codebook_size) <= max_bytes]
            if not fits:
                raise TokenCountError(f"max_bytes={max_bytes} is below the {payload_bytes(1, self.config.codebook_size)} "
                                      "bytes one token needs; allow more bytes")
            return [t[: fits[-1]] for t in full]
        x = self._check_images(images).float().cpu()
        best = [N] * len(full)
        for k in range(N, 0, -1):  # smallest k meeting the target, scanning down keeps the first hit cheap to read
            rec = self.detokenize([t[:k] for t in full])
            ok = psnr_per_image(rec, x) >= min_psnr
            best = [k if bool(ok[i]) else b for i, b in enumerate(best)]
        return [t[:k] for t, k in zip(full, best)]

    @torch.inference_mode()
    def encode_latents(self, images: torch.Tensor, *, max_tokens: int | None = None) -> torch.Tensor:
        """Continuous tokens (the quantizer's input for VQ, the posterior mean for VAE): ``(B, k, C)`` on CPU."""
        k = self._check_k(max_tokens if max_tokens is not None else self.config.max_tokens)
        codes, _, _ = self.model.encode(self._check_images(images))
        return codes[:, :k].float().cpu()

    @torch.inference_mode()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents (B, k, C)``, 1 <= k <= N -> images ``(B, 3, S, S)`` clamped to [0, 1], on CPU."""
        if latents.ndim != 3 or latents.shape[-1] != self.config.token_dim:
            raise TokenCountError(f"expected latents (B, k, {self.config.token_dim}), found {tuple(latents.shape)}")
        self._note_prefix(self._check_k(int(latents.shape[1])))
        dtype = next(self.model.parameters()).dtype
        return self.model.decode_codes(latents.to(self.device, dtype)).clamp(0, 1).float().cpu()

    def codebook_table(self) -> EmbeddingTable:
        """The codebook as an ``EmbeddingTable``: ``(size, token_dim)`` code vectors, row i = code of id i."""
        self.require_ids()
        return EmbeddingTable(self.vocab, self.model.codebook().detach().float().cpu())


def weights_id(path: Path) -> str:
    """Model identity: first 16 hex digits of the sha256 of the weights file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:  # streamed: published weights are up to 2.6 GB
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


#: Pixel values may leave [0, 1] by this much (a resampling filter's overshoot) before they are refused.
PIXEL_SLACK = 0.05


def _as_pixels(images: object) -> torch.Tensor:
    """A tensor of float pixels from a tensor or numpy array (uint8: divided by 255), else an error."""
    if not isinstance(images, torch.Tensor):
        if type(images).__module__ != "numpy":
            raise InputTypeError(f"expected images as a torch tensor (B, 3, S, S) of floats in [0, 1], found "
                                 f"{type(images).__name__}; load files with tokkit.image.data.load_images(paths, size=...)")
        import numpy as np

        images = torch.as_tensor(np.ascontiguousarray(images))  # a view with negative strides (arr[..., ::-1]): a copy
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise InputTypeError(f"expected image pixels as floats in [0, 1] (or uint8 0..255), found dtype {images.dtype}; "
                             "convert with images.float() / 255")
    return images


def _check_range(images: torch.Tensor) -> None:
    if images.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise NonFiniteError("images hold NaN or infinite pixel values; expected floats in [0, 1]: check the loading "
                             "or preprocessing that produced them")
    if lo < -PIXEL_SLACK or hi > 1 + PIXEL_SLACK:
        hint = "divide by 255" if hi > 2 else "undo the mean/std normalisation" if lo < 0 else "clamp to [0, 1]"
        raise ImageSizeError(f"expected pixel values in [0, 1], found {lo:.3g}..{hi:.3g}; {hint} first "
                             "(tokkit.image.data.load_images gives [0, 1])")
