"""Rate-distortion at equal payload bytes per image: tokens (packed, per-position, AR-coded) vs JPEG and WebP.

For a budget of B bytes, every image gets its own best code whose **payload** fits in B:

* tokens: the largest k whose coded ids fit (what ``tokkit image encode --max-bytes B`` keeps), for three
  codings of the same ids — packed mixed-radix (``.tok`` v1), per-position arithmetic coding (v2) and
  context coding with the AR prior (v3); the payload is the ids' bytes (the 1-byte k and the code-length
  byte are framing, as JPEG's headers are);
* JPEG (Pillow, baseline, the **standard** Huffman tables of Annex K, ``optimize=False``) and WebP
  (``method=6``): the best PSNR among every quality of a sweep **at every resolution** of {S, S/2, S/4}
  (box-downsampled, decoded, bicubic up-sampled) — a codec at these budgets needs the down-scaling, so the
  baseline gets it; payload as in :mod:`tokkit.image.codecs` (JPEG: the entropy-coded segment; WebP: file
  minus the 20-byte RIFF headers). With the standard tables, JPEG's headers hold nothing a decoder could not
  know in advance, which makes its payload comparable with the token payload (whose "tables", the model and
  the prior, are shared in advance too). ``jpeg_opt`` is the same sweep with ``optimize=True``: per-image
  Huffman tables that live in the uncounted header, i.e. the payload leaves out information about the image;
  it is listed for comparison with :mod:`tokkit.image.codecs`, which uses it;
* an image for which a code has no setting within B falls back to its mean colour (4 bit/channel, 2 B),
  for every code alike; ``served`` says which share of the images the code itself covered.

Tokens pick by size only (no PSNR search); the codecs pick the best-PSNR setting, which favours the codecs.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from tokkit.image.bitstream import payload_bytes
from tokkit.image.codecs import jpeg_payload
from tokkit.image.metrics import psnr

__all__ = ["BUDGETS", "codec_candidates", "token_candidates", "best_within", "rd_table"]

BUDGETS = (2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64)
JPEG_Q = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 90)
WEBP_Q = (0, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90)


def _encode(arr: np.ndarray, fmt: str, q: int) -> tuple[bytes, int]:
    from PIL import Image

    buf = io.BytesIO()
    if fmt.startswith("JPEG"):
        Image.fromarray(arr).save(buf, format="JPEG", quality=q, optimize=fmt == "JPEG_OPT")
    else:
        Image.fromarray(arr).save(buf, format="WEBP", quality=q, method=6)
    data = buf.getvalue()
    return data, jpeg_payload(data) if fmt.startswith("JPEG") else len(data) - 20


def codec_candidates(images: torch.Tensor, fmt: str, *, qualities=None, scales=(1, 2, 4)) -> tuple[np.ndarray, np.ndarray]:
    """``images (M, 3, S, S)`` -> payload bytes and PSNR, both ``(M, C)``, C = len(scales) * len(qualities).

    ``fmt``: ``JPEG`` (standard tables), ``JPEG_OPT`` (optimised tables) or ``WEBP``."""
    from PIL import Image

    qualities = qualities or (JPEG_Q if fmt.startswith("JPEG") else WEBP_Q)
    S = images.shape[-1]
    arrs = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    nb, ps = [], []
    for s in scales:
        small = [np.asarray(Image.fromarray(a).resize((S // s, S // s), Image.Resampling.BOX)) for a in arrs]
        for q in qualities:
            decs, sizes = [], []
            for a in small:
                data, pay = _encode(a, fmt, q)
                decs.append(torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()))
                sizes.append(pay)
            rec = torch.stack(decs).permute(0, 3, 1, 2).float() / 255
            if s > 1:
                rec = F.interpolate(rec, size=(S, S), mode="bicubic", align_corners=False).clamp(0, 1)
            nb.append(sizes)
            ps.append(psnr(rec, images).numpy())
    return np.array(nb, dtype=np.float64).T, np.array(ps, dtype=np.float64).T


def token_candidates(tok, images: torch.Tensor, ids: torch.Tensor, *, coder=None, prior=None) -> dict[str, np.ndarray]:
    """PSNR ``(M, N)`` of every prefix k = 1..N and its payload bytes under each available coding."""
    from tokkit.image.entropy import encode_ids

    M, N = ids.shape
    K = tok.config.codebook_size
    out = {"psnr": np.stack([psnr(tok.detokenize(list(ids[:, :k])), images).numpy() for k in range(1, N + 1)], 1),
           "packed": np.tile(np.array([payload_bytes(k, K) for k in range(1, N + 1)], dtype=np.float64), (M, 1))}
    if prior is not None:
        out["per_position"] = np.array([[len(encode_ids(row[:k].tolist(), prior)) for k in range(1, N + 1)] for row in ids],
                                       dtype=np.float64)
    if coder is not None:
        out["ar"] = np.array([coder.prefix_bytes(row.tolist()) for row in ids], dtype=np.float64)
    return out


def best_within(nbytes: np.ndarray, quality: np.ndarray, budget: float, fallback: np.ndarray, *,
                largest: bool = False) -> tuple[float, float]:
    """Mean quality at ``budget`` and the share of images served; ``largest`` takes the last fitting column
    (tokens: the largest k) instead of the best one."""
    fits = nbytes <= budget
    served = fits.any(1)
    if largest:
        last = np.where(served, fits.shape[1] - 1 - np.argmax(fits[:, ::-1], 1), 0)
        pick = quality[np.arange(len(quality)), last]
    else:
        pick = np.where(fits, quality, -np.inf).max(1)
    val = np.where(served, pick, fallback)
    return float(val.mean()), float(served.mean())


def rd_table(tok, images: torch.Tensor, *, coder=None, prior=None, budgets=BUDGETS) -> list[dict]:
    """One row per budget: mean PSNR (and share served) of every token coding, JPEG and WebP."""
    from tokkit.image.codecs import _q

    ids = torch.stack(tok.tokenize(images))
    toks = token_candidates(tok, images, ids, coder=coder, prior=prior)
    mean = _q(images.mean((2, 3), keepdim=True), 4).expand_as(images)
    fallback = psnr(mean, images).numpy()
    jpeg = codec_candidates(images, "JPEG")
    n_q = len(JPEG_Q)  # the first len(JPEG_Q) columns are the full-resolution sweep
    codecs = {"jpeg": jpeg, "jpeg_full_res": (jpeg[0][:, :n_q], jpeg[1][:, :n_q]),
              "jpeg_opt": codec_candidates(images, "JPEG_OPT"), "webp": codec_candidates(images, "WEBP")}
    rows = []
    for b in budgets:
        fb = fallback if b >= 2 else np.full_like(fallback, np.nan)
        row = {"budget": b}
        for name in ("packed", "per_position", "ar"):
            if name in toks:
                row[f"tokens_{name}"], row[f"tokens_{name}_served"] = best_within(toks[name], toks["psnr"], b, fb,
                                                                                   largest=True)
        for name, (nb, ps) in codecs.items():
            row[name], row[f"{name}_served"] = best_within(nb, ps, b, fb)
        rows.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return rows
