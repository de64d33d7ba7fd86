"""Checks of the training loops: heal (fp32, bf16 autocast, 1B-sized), hypernet train, image train and prior train.

Every loop is seeded and draws its data on the CPU, so the CPU and device runs see the same batches
and start from the same weights; what may differ is float32 rounding in the kernels (and TF32
convolutions, on by default in cuDNN), compounded over the steps. Tolerances, on every step's losses:
heal and hypernet ≤ 1e-3 relative (fp32 transformer maths, 20 steps of AdamW); bf16 autocast ≤ 5e-2
relative to the device's fp32 run and finite; the image tokenizer ≤ 2e-2 (FSQ rounds latents, so a
latent on a rounding edge may take the neighbouring code) and its readout PSNR within 0.3 dB.
Speed is the loop's own tokens (or images) per second at the default batch, load and writing excluded.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch

from .common import Ctx, Run, Verdict, rel, series_rel, timed

__all__ = ["check_heal", "check_heal_bf16", "check_heal_big", "check_hypernet", "check_image", "check_image_prior"]

HEAL_KEYS = ("lm", "alm", "bpb")


def _heal(ctx: Ctx, model: Path, dev: torch.device, name: str, *, steps: int, bf16: bool = False,
          heldout_max_bytes: int | None = None):
    from tokkit.transplant.heal import HealConfig, plan_heal, run_heal

    opt = {"batch_size": ctx.sizes.heal_batch, "seq_bytes": ctx.sizes.heal_seq_bytes,
           "heldout_max_bytes": heldout_max_bytes or ctx.sizes.heal_heldout_bytes}
    cfg = HealConfig(model=str(model), sources=(str(ctx.repo / "data/extend/de_reference_sample.txt"),), steps=steps,
                     checkpoint_every=steps, device=str(dev), **{k: v for k, v in opt.items() if v is not None})
    plan = plan_heal(cfg, ctx.out(name), force=True)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with amp:
        return timed(dev, lambda: run_heal(plan, progress=False))


def _series(history: list[dict], key: str) -> list[float]:
    return [float(h[key]) for h in history if key in h]


def _loop_speed(run: Run, res) -> Run:
    """The loop's own seconds (as the result reports them) in place of the wall time around the call."""
    return Run(res, getattr(res, "seconds", run.seconds), run.peak_gib)


def _compare_history(v: Verdict, ref: list[dict], got: list[dict], keys: tuple[str, ...], limit: float,
                     labels: tuple[str, str] = ("cpu", "device")) -> None:
    for key in keys:
        a, b = _series(ref, key), _series(got, key)
        if a or b:
            v.within(f"{key}_max_rel_diff", series_rel(a, b), limit)
            v.info(f"{key}_last_{labels[0]}", a[-1] if a else float("nan"))
            v.info(f"{key}_last_{labels[1]}", b[-1] if b else float("nan"))


def check_heal(ctx: Ctx) -> dict:
    """`tokkit heal` (alm+lm, new rows) on the SmolLM2-shaped model extended by extend_fvt."""
    model = ctx.need("smol_extended", "extend")
    n = ctx.sizes.heal_steps
    v = Verdict("heal_fp32", f"{n} steps of alm+lm on the built rows, CPU vs device: every step's lm, alm and bits/byte "
                "within 1e-3 relative; held-out bits/byte after within 1e-3")
    a = _heal(ctx, model, ctx.cpu, "heal-cpu", steps=n)
    b = _heal(ctx, model, ctx.dev, "heal-device", steps=n)
    ra, rb = a.value, b.value
    _compare_history(v, ra.history, rb.history, HEAL_KEYS, 1e-3)
    ha, hb = ra.heldout["heldout"]["after"], rb.heldout["heldout"]["after"]
    v.within("heldout_after_rel_diff", rel(ha, hb), 1e-3)
    ctx.shared["heal_fp32_device"] = b
    return v.speed(_loop_speed(a, ra), _loop_speed(b, rb), unit="tokens", count=rb.tokens,
                   cpu_count=ra.tokens).note(f"wall with loading and writing: CPU {a.seconds:.1f} s, device "
                                             f"{b.seconds:.1f} s").done()


def check_heal_bf16(ctx: Ctx) -> dict:
    """The device's heal under bf16 autocast against its own fp32 run (the loop has no precision flag)."""
    fp32 = ctx.shared.get("heal_fp32_device")
    model = ctx.need("smol_extended", "extend")
    n = ctx.sizes.heal_steps
    v = Verdict("heal_bf16_autocast", f"{n} steps under torch.autocast(bfloat16) on the device: every loss finite and "
                "within 5e-2 relative of the device's fp32 run")
    if fp32 is None:
        fp32 = _heal(ctx, model, ctx.dev, "heal-device", steps=n)
    b = _heal(ctx, model, ctx.dev, "heal-bf16", steps=n, bf16=True)
    finite = all(math.isfinite(float(h[k])) for h in b.value.history for k in HEAL_KEYS if k in h)
    v.require("finite", finite, "a bf16 loss is not finite")
    _compare_history(v, fp32.value.history, b.value.history, HEAL_KEYS, 5e-2, labels=("fp32", "bf16"))
    f, s = fp32.value, b.value
    v.info("fp32_tokens_per_s", round(f.tokens / f.seconds, 1)).info("bf16_over_fp32_speed", round(f.seconds / s.seconds, 2))
    return v.speed(None, _loop_speed(b, s), unit="tokens", count=s.tokens).done()


def check_heal_big(ctx: Ctx) -> dict:
    """The Llama-3.2-1B-sized model: the device runs the full steps (speed, memory); the CPU the first step(s)."""
    model = ctx.need("big_extended", "extend_1b")
    n, m = ctx.sizes.big_heal_steps, ctx.sizes.big_heal_cpu_steps
    v = Verdict("heal_fp32_1b", f"1B-sized model, alm+lm: held-out bits/byte before training and step 1's losses, "
                f"CPU ({m} step) vs device ({n} steps), within 1e-3 relative")
    b = _heal(ctx, model, ctx.dev, "heal-1b-device", steps=n, heldout_max_bytes=2048)
    a = _heal(ctx, model, ctx.cpu, "heal-1b-cpu", steps=m, heldout_max_bytes=2048)
    ra, rb = a.value, b.value
    _compare_history(v, ra.history[:1], rb.history[:1], HEAL_KEYS, 1e-3)
    v.within("heldout_before_rel_diff", rel(ra.heldout["heldout"]["before"], rb.heldout["heldout"]["before"]), 1e-3)
    return v.speed(_loop_speed(a, ra), _loop_speed(b, rb), unit="tokens", count=rb.tokens,
                   cpu_count=ra.tokens).done()


def check_hypernet(ctx: Ctx) -> dict:
    from tokkit.transplant.hypernet import HypernetConfig
    from tokkit.transplant.hypernet.checkpoint import load_checkpoint
    from tokkit.transplant.hypernet.train import train_hypernet

    over = ctx.sizes.hypernet
    v = Verdict("hypernet_train", f"{over['steps']} steps ({over['warmup_steps']} auxiliary-only), CPU vs device: "
                "every step's losses within 1e-3 relative")
    corpus = (str(ctx.repo / "data/legal/train.jsonl"), str(ctx.repo / "data/extend/de_reference_sample.txt"))
    runs, hist = {}, {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        cfg = HypernetConfig(base=str(ctx.models["smol"]), corpus=corpus, device=str(dev), **over)
        out = ctx.out(f"hypernet-{side}")
        runs[side] = timed(dev, lambda: train_hypernet(cfg, out, force=True, progress=False))
        hist[side] = load_checkpoint(out).meta["history"]
    keys = tuple(sorted({k for h in hist["cpu"] for k in h if k != "step"}))
    _compare_history(v, hist["cpu"], hist["device"], keys, 1e-3)
    ra, rb = runs["cpu"].value, runs["device"].value
    return v.speed(_loop_speed(runs["cpu"], ra), _loop_speed(runs["device"], rb), unit="tokens",
                   count=rb.tokens, cpu_count=ra.tokens).done()


def _images(ctx: Ctx, size: int) -> torch.Tensor:
    from tokkit.image import load_images
    from tokkit.image.data import image_files

    return load_images(image_files(ctx.repo / "data/image/icons"), size=size)


def check_image(ctx: Ctx) -> list[dict]:
    """Train on both sides; then tokenize / pack / unpack / detokenize / evaluate the device's checkpoint on both."""
    from tokkit.image import load_recipe, train

    n = ctx.sizes.image_steps
    cfg = load_recipe(ctx.sizes.image_recipe, {"steps": n, "log_every": max(1, n // 4), "checkpoint_every": n,
                                               "eval_images": 32})
    v = Verdict("image_train", f"recipe {ctx.sizes.image_recipe}, {n} steps at batch {cfg.batch_size}, CPU vs device: "
                "logged losses within 2e-2 relative, readout PSNR within 0.3 dB")
    runs = {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        out = ctx.out(f"image-{side}")
        runs[side] = timed(dev, lambda: train(cfg, data=ctx.repo / "data/image/icons", out=out, device=str(dev),
                                              force=True, progress=False))
    ra, rb = runs["cpu"].value, runs["device"].value
    v.within("loss_max_rel_diff", series_rel([h["loss"] for h in ra.history], [h["loss"] for h in rb.history]), 2e-2)
    pa, pb = [h["psnr_full"] for h in ra.history], [h["psnr_full"] for h in rb.history]
    v.within("psnr_max_abs_diff_db", max(abs(x - y) for x, y in zip(pa, pb)) if len(pa) == len(pb) else math.inf, 0.3)
    images = n * cfg.batch_size
    ctx.shared["image_ckpt"] = ctx.out("image-device")
    train_v = v.speed(_loop_speed(runs["cpu"], ra), _loop_speed(runs["device"], rb), unit="images",
                      count=images).done()
    return [train_v, _image_roundtrip(ctx, ctx.out("image-device"))]


def _image_roundtrip(ctx: Ctx, ckpt: Path) -> dict:
    from tokkit.image import ImageTokenizer, pack, unpack
    from tokkit.image.evaluate import evaluate

    v = Verdict("image_roundtrip", "one checkpoint on CPU and device: >= 99% of token ids equal; .tok pack/unpack "
                "exact on both; the same ids decode within 4/255 per pixel; eval PSNR per k within 0.05 dB")
    toks = {side: ImageTokenizer.load(ckpt, device=dev) for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev))}
    x = _images(ctx, toks["cpu"].config.image_size)
    x = x.repeat(max(1, 256 // len(x)), 1, 1, 1)  # a batch worth timing
    ids, runs = {}, {}
    for side, tok in toks.items():
        runs[side] = timed(tok.device, lambda: tok.tokenize(x))
        ids[side] = runs[side].value
        c = tok.config
        blob = pack(ids[side], model_id=tok.model_id, codebook_size=c.codebook_size, max_tokens=c.max_tokens,
                    image_size=c.image_size)
        back = unpack(blob, expect_model_id=tok.model_id).ids
        v.require(f"pack_unpack_exact_{side}", all(torch.equal(torch.as_tensor(p), q) for p, q in zip(back, ids[side])),
                  f".tok round trip changed ids on {side}")
    same = torch.stack(ids["cpu"]) == torch.stack(ids["device"])
    v.at_least("ids_equal_share", float(same.double().mean()), 0.99)
    dec = {side: timed(tok.device, lambda: tok.detokenize(ids["cpu"])) for side, tok in toks.items()}
    v.within("decoded_max_abs_diff", float((dec["cpu"].value - dec["device"].value).abs().max()), 4 / 255)
    ev = {side: evaluate(tok, x[:64], codecs=False) for side, tok in toks.items()}
    diffs = [abs(p["psnr"] - q["psnr"]) for p, q in zip(ev["cpu"]["per_k"], ev["device"]["per_k"])]
    v.within("eval_psnr_max_abs_diff_db", max(diffs), 0.05)
    enc = Run(None, runs["cpu"].seconds + dec["cpu"].seconds, None)
    enc_dev = Run(None, runs["device"].seconds + dec["device"].seconds, dec["device"].peak_gib)
    return v.speed(enc, enc_dev, unit="images", count=len(x)).note("speed: tokenize + detokenize").done()


def check_image_prior(ctx: Ctx) -> dict:
    """`tokkit image prior train` on the device's image checkpoint, dropout off so both sides draw the same."""
    from tokkit.image import train_prior
    from tokkit.image.prior import load_prior_recipe

    n = ctx.sizes.image_steps
    cfg = load_prior_recipe("tiny", {"steps": n, "dropout": 0.0, "log_every": max(1, n // 4), "checkpoint_every": n})
    v = Verdict("image_prior_train", f"{n} steps, dropout 0, CPU vs device: train and held-out bits per token within "
                "1e-3 relative")
    runs = {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        runs[side] = timed(dev, lambda: train_prior(cfg, tokenizer=ctx.need("image_ckpt", "image"), data=ctx.repo / "data/image/icons",
                                                    out=ctx.out(f"prior-{side}"), device=str(dev), force=True,
                                                    progress=False))
    ra, rb = runs["cpu"].value, runs["device"].value
    v.within("train_bits_rel_diff", rel(ra.train_bits, rb.train_bits), 1e-3)
    v.within("val_bits_rel_diff", rel(ra.val_bits, rb.val_bits), 1e-3)
    return v.speed(_loop_speed(runs["cpu"], ra), _loop_speed(runs["device"], rb),
                   unit="tokens", count=rb.tokens_seen, cpu_count=ra.tokens_seen).done()
