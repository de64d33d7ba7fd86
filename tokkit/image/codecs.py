"""Baselines at equal bytes: JPEG and WebP quality sweeps (file and payload bytes), mean colour, thumbnails.

At thumbnail sizes container headers dominate (JPEG ~300 B at 32x32 even with ``optimize=True``),
so both are reported (reference §7.4, §9): JPEG payload = bytes after the SOS header up to EOI;
WebP payload = file - 20 B (RIFF 12 + chunk header 8). The trivial codes cost: mean colour at
4 bit/channel = 2 B; a k x k thumbnail at 6 bit/channel = ceil(18 k^2 / 8) B, bicubic up-sampled.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

from tokkit.image.metrics import psnr, ssim

__all__ = ["jpeg_payload", "codec_sweep", "trivial_baselines", "JPEG_QUALITIES", "WEBP_QUALITIES"]

JPEG_QUALITIES = (1, 3, 5, 10, 20, 30, 50, 75, 90)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 50, 75, 90)


def jpeg_payload(data: bytes) -> int:
    """Entropy-coded bytes of a baseline JPEG: after the SOS segment, before EOI."""
    i = data.find(b"\xff\xda")
    if i < 0:
        return len(data)
    seg = int.from_bytes(data[i + 2:i + 4], "big")
    return len(data) - (i + 2 + seg) - 2


def _roundtrip(img: np.ndarray, fmt: str, quality: int) -> tuple[np.ndarray, int, int]:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        Image.fromarray(img).save(buf, format="WEBP", quality=quality, method=6)
    data = buf.getvalue()
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    payload = jpeg_payload(data) if fmt == "JPEG" else len(data) - 20
    return dec, len(data), payload


def codec_sweep(images: torch.Tensor, fmt: str, qualities: tuple[int, ...]) -> list[dict]:
    """``images (M, 3, H, W)`` in [0, 1] -> per quality: mean file/payload bytes, PSNR, SSIM."""
    arrs = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    rows = []
    for q in qualities:
        decs, files, pays = [], [], []
        for a in arrs:
            d, f, p = _roundtrip(a, fmt, q)
            decs.append(torch.from_numpy(d.copy()))
            files.append(f)
            pays.append(p)
        rec = torch.stack(decs).permute(0, 3, 1, 2).float() / 255
        rows.append({"quality": q, "file_bytes": float(np.mean(files)), "payload_bytes": float(np.mean(pays)),
                     "psnr": float(psnr(rec, images).mean()), "ssim": float(ssim(rec, images).mean())})
    return rows


def _q(x: torch.Tensor, bits: int) -> torch.Tensor:
    levels = 2**bits - 1
    return (x.clamp(0, 1) * levels).round() / levels


def trivial_baselines(images: torch.Tensor) -> list[dict]:
    """Mean colour (2 B) and 2x2 / 4x4 / 8x8 thumbnails at 6 bit/channel, bicubic up (where smaller than the image)."""
    H, W = images.shape[-2:]
    mean = _q(images.mean((2, 3), keepdim=True), 4).expand_as(images)
    rows = [{"name": "mean colour", "bytes": 2, "psnr": float(psnr(mean, images).mean()),
             "ssim": float(ssim(mean, images).mean())}]
    for s in (2, 4, 8):
        if s >= min(H, W):
            continue
        thumb = _q(F.adaptive_avg_pool2d(images, s), 6)
        up = F.interpolate(thumb, size=(H, W), mode="bicubic", align_corners=False).clamp(0, 1)
        rows.append({"name": f"{s}x{s} thumbnail", "bytes": math.ceil(18 * s * s / 8),
                     "psnr": float(psnr(up, images).mean()), "ssim": float(ssim(up, images).mean())})
    return rows
