"""Quality against token count and against JPEG / WebP / trivial codes at equal bytes, plus a plot.

For held-out images: encode once, decode ``ids[:, :k]`` for k = 1, 2, 3, 4, 6, 8, ... N-1, N; report PSNR
and SSIM per k with payload bytes (packed ids) and whole-file bytes (a one-image ``.tok``), bits per
pixel, the measured index entropy (a bound an entropy coder could reach), and each codec's PSNR
interpolated at the token byte counts — against payload bytes and against file bytes; ``None`` where
the codec cannot go that small (reference §9).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tokkit.image.api import ImageTokenizer
from tokkit.image.bitstream import HEADER_BYTES, TRAILER_BYTES, length_bytes, payload_bytes
from tokkit.image.entropy import TokenPrior, encode_ids
from tokkit.image.codecs import JPEG_QUALITIES, WEBP_QUALITIES, codec_sweep, trivial_baselines
from tokkit.image.metrics import ms_ssim_or_none, psnr, ssim
from tokkit.image.train import code_stats

__all__ = ["default_ks", "evaluate", "plot_eval", "bits_per_token"]


def default_ks(n: int) -> list[int]:
    ks = {k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256) if k <= n} | {max(1, n - 1), n}
    return sorted(ks)


def _interp(x: float, xs: list[float], ys: list[float]) -> float | None:
    """Linear interpolation of a monotone-in-x codec curve; None outside its byte range."""
    order = np.argsort(xs)
    xs_s, ys_s = np.asarray(xs)[order], np.asarray(ys)[order]
    if x < xs_s[0] or x > xs_s[-1]:
        return None
    return round(float(np.interp(x, xs_s, ys_s)), 3)


@torch.inference_mode()
def bits_per_token(ids: torch.Tensor, *, codebook_size: int, prior: TokenPrior | None = None, ar_prior=None) -> dict:
    """Mean bits per token of ``ids (M, N)`` under the uniform code, the per-position prior and the AR prior
    (both with their integer frequencies, i.e. what the arithmetic coder gets within 2 bits per image of)."""
    from tokkit.image.entropy import ideal_bits

    M, N = ids.shape
    out = {"uniform": round(math.log2(codebook_size), 4)}
    if prior is not None:
        out["per_position"] = round(sum(ideal_bits(r.tolist(), prior) for r in ids) / (M * N), 4)
    if ar_prior is not None:
        out["ar"] = round(sum(ar_prior.bits(r.tolist()) for r in ids) / (M * N), 4)
    return out


def evaluate(tok: ImageTokenizer, images: torch.Tensor, *, ks: list[int] | None = None, codecs: bool = True,
             prior: TokenPrior | None = None, ar_prior=None) -> dict:
    """``images (M, 3, S, S)`` in [0, 1] -> the result dict written by ``tokkit image eval --json``.

    With ``prior`` (the checkpoint's training-image token frequencies) each k also reports the mean bytes of
    the entropy-coded ids (``entropy_bytes``) and of a one-image entropy-coded ``.tok`` file. With ``ar_prior``
    (:class:`~tokkit.image.ar_coding.ARCoder`) each k reports the context-coded bytes (``ar_bytes``, ``.tok`` v3)
    and ``held_out_bits_per_token`` compares the AR prior, the per-position prior and the uniform code on these images.
    """
    cfg, M = tok.config, images.shape[0]
    N, K, S = cfg.max_tokens, cfg.codebook_size, cfg.image_size
    ks = ks or default_ks(N)
    ids = torch.stack(tok.tokenize(images))  # (M, N)
    used, ent = code_stats(ids, K)
    ar_sizes = None if ar_prior is None else np.array([ar_prior.prefix_bytes(r.tolist()) for r in ids])  # (M, N)
    per_k = []
    for k in ks:
        rec = tok.detokenize(list(ids[:, :k]))
        pay = payload_bytes(k, K)
        fileb = HEADER_BYTES + length_bytes(N) + pay + TRAILER_BYTES
        ms, _ = ms_ssim_or_none(rec, images)
        per_k.append({"k": k, "psnr": round(float(psnr(rec, images).mean()), 3),
                      "psnr_std": round(float(psnr(rec, images).std()), 3) if M > 1 else 0.0,
                      "ssim": round(float(ssim(rec, images).mean()), 4),
                      "ms_ssim": None if ms is None else round(float(ms.mean()), 4),
                      "bytes": pay, "file_bytes": fileb, "bpp": round(8 * pay / (S * S), 4),
                      "bpp_file": round(8 * fileb / (S * S), 4)})
        if prior is not None:
            codes = [len(encode_ids(row[:k].tolist(), prior)) for row in ids]
            per_k[-1]["entropy_bytes"] = round(sum(codes) / M, 3)
            per_k[-1]["entropy_file_bytes"] = round(HEADER_BYTES + 8 + length_bytes(N) + TRAILER_BYTES
                                                    + sum(c + (1 if c < 128 else 2) for c in codes) / M, 3)
        if ar_sizes is not None:
            codes = ar_sizes[:, k - 1]
            per_k[-1]["ar_bytes"] = round(float(codes.mean()), 3)
            per_k[-1]["ar_file_bytes"] = round(HEADER_BYTES + 8 + length_bytes(N) + 4 + TRAILER_BYTES
                                               + float(np.mean([c + (1 if c < 128 else 2) for c in codes])), 3)
    _, ms_note = ms_ssim_or_none(images[:1], images[:1])
    out = {"model_id": tok.model_id, "images": M, "image_size": S, "max_tokens": N, "codebook_size": K,
           "bits_per_token": round(math.log2(K), 3), "codes_used": used, "index_entropy_bits_per_position": round(ent, 3),
           "entropy_bound_bytes_at_N": math.ceil(ent * N / 8), "per_k": per_k, "ms_ssim_note": ms_note,
           "byte_accounting": f"bytes = ids packed as one mixed-radix integer; file_bytes adds the {HEADER_BYTES}-byte "
                              f".tok header, a {length_bytes(N)}-byte length field and a 4-byte crc32",
           "baselines": trivial_baselines(images)}
    if prior is not None:
        out["token_prior_id"] = prior.prior_id
    if ar_prior is not None:
        out["ar_prior_id"] = ar_prior.prior_id
    out["held_out_bits_per_token"] = bits_per_token(ids, codebook_size=K, prior=prior, ar_prior=ar_prior)
    if codecs:
        jpeg, webp = codec_sweep(images, "JPEG", JPEG_QUALITIES), codec_sweep(images, "WEBP", WEBP_QUALITIES)
        out["jpeg"], out["webp"] = jpeg, webp
        rows = []
        for r in per_k:
            row = {"k": r["k"], "bytes": r["bytes"], "token_psnr": r["psnr"]}
            for name, sweep in (("jpeg", jpeg), ("webp", webp)):
                ys = [s["psnr"] for s in sweep]
                row[f"{name}_psnr_at_payload_bytes"] = _interp(r["bytes"], [s["payload_bytes"] for s in sweep], ys)
                row[f"{name}_psnr_at_file_bytes"] = _interp(r["file_bytes"], [s["file_bytes"] for s in sweep], ys)
            fits = [b for b in out["baselines"] if b["bytes"] <= r["bytes"]]
            best = max(fits, key=lambda b: b["psnr"]) if fits else None
            row["best_trivial_within_bytes"] = None if best is None else {"name": best["name"], "psnr": round(best["psnr"], 3)}
            rows.append(row)
        out["at_equal_bytes"] = rows
    return out


def plot_eval(results: dict[str, dict], path) -> None:
    """PNG: PSNR vs k (log2) for each named result, and PSNR vs bytes with codecs and trivial baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    first = next(iter(results.values()))
    for i, (name, r) in enumerate(results.items()):
        color, ks, ys = f"C{i}", [p["k"] for p in r["per_k"]], [p["psnr"] for p in r["per_k"]]
        a.plot(ks, ys, "o-", color=color, label=name)
        b.plot([p["bytes"] for p in r["per_k"]], ys, "o-", color=color, label=f"{name} (payload)")
        if r is first:
            b.plot([p["file_bytes"] for p in r["per_k"]], ys, "o:", color=color, mfc="none", label=f"{name} (.tok file)")
            if "entropy_bytes" in r["per_k"][0]:
                b.plot([p["entropy_bytes"] for p in r["per_k"]], ys, "d--", color=color, mfc="none",
                       label=f"{name} (entropy-coded payload)")
            if "ar_bytes" in r["per_k"][0]:
                b.plot([p["ar_bytes"] for p in r["per_k"]], ys, "*-", color="C3" if i == 0 else color,
                       label=f"{name} (AR-coded payload)")
    for bl in first["baselines"]:
        a.axhline(bl["psnr"], ls=":", lw=1, color="gray")
        a.text(1, bl["psnr"], f" {bl['name']} ({bl['bytes']} B)", fontsize=7, va="bottom", color="gray")
        b.plot([bl["bytes"]], [bl["psnr"]], "k^")
        b.annotate(bl["name"], (bl["bytes"], bl["psnr"]), fontsize=7)
    for codec in ("jpeg", "webp"):
        if codec in first:
            c = "k" if codec == "jpeg" else "m"
            b.plot([s["payload_bytes"] for s in first[codec]], [s["psnr"] for s in first[codec]], "s--", color=c,
                   label=f"{codec} payload")
            b.plot([s["file_bytes"] for s in first[codec]], [s["psnr"] for s in first[codec]], "x:", color=c,
                   label=f"{codec} file")
    a.set_xscale("log", base=2)
    a.set_xlabel("tokens kept k")
    a.set_ylabel("PSNR (dB)")
    a.set_title(f"quality vs k ({first['images']} held-out images, {first['image_size']} px)")
    b.set_xscale("log")
    b.set_xlabel("bytes per image")
    b.set_ylabel("PSNR (dB)")
    b.set_title("quality vs bytes")
    a.legend(fontsize=8)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
