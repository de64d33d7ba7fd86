"""Checks of the embedding paths: reconstruction (FVT, heuristic, OMP), transplant end to end, extend, distill.

Each builds the same rows on the CPU and on the device under test through the public API
(``plan_transplant`` + the method's ``initialize``; the ``tokkit transplant`` command; ``run_extend``)
and compares them row by row (relative L2 error). Tolerances: FVT is a mean of rows, so only the
summation order differs (≤ 1e-5 for every row); the heuristic ranks neighbours and OMP picks atoms
greedily, where a near-tie may resolve the other way on another device, so a small share of rows
may differ (heuristic: ≥ 99.9% of rows ≤ 1e-4; OMP: ≥ 99% ≤ 1e-3, mean residual ≤ 1e-3 relative).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import torch

from .common import Ctx, Verdict, row_errors, timed

__all__ = ["check_fvt", "check_heuristic", "check_omp", "check_transplant", "check_extend", "check_extend_big",
           "check_distill"]

#: method -> (row error limit, share of rows that must be within it)
ROW_LIMITS = {"fvt": (1e-5, 1.0), "heuristic": (1e-4, 0.999), "omp": (1e-3, 0.99), "distill": (1e-2, 0.99)}


def _plan(ctx: Ctx, dev: torch.device, *, src: Path, dst: Path, method: str, donor: Path | None = None):
    """``plan_transplant`` for ``method`` on ``dev``; a plan of the same models and device is reused with the method
    swapped (loading and aligning is the same for every method; kept in ``ctx.shared["plans"]``)."""
    from tokkit.transplant import TransplantConfig, plan_transplant
    from tokkit.transplant.methods import build_method

    cfg = TransplantConfig(src=str(src), dst=str(dst), donor=None if donor is None else str(donor), method=method,
                           device=str(dev), heldout=0)
    plans = ctx.shared.setdefault("plans", {})
    key = (cfg.src, cfg.dst, cfg.donor, cfg.device)
    if key not in plans:
        plan = plan_transplant(cfg)
        plan.ctx = replace(plan.ctx, progress=False)
        plans[key] = plan
    return replace(plans[key], cfg=cfg, method=build_method(cfg))


def _rows_verdict(v: Verdict, method: str, ref: torch.Tensor, got: torch.Tensor, what: str) -> torch.Tensor:
    limit, share = ROW_LIMITS[method]
    err = row_errors(ref, got)
    finite = bool(torch.isfinite(err).all())
    v.require(f"{what}_finite", finite, f"{what}: {int((~torch.isfinite(err)).sum())} rows not finite")
    v.at_least(f"{what}_share_within_{limit:g}", float((err <= limit).double().mean()), share)
    v.info(f"{what}_max_row_error", float(err[torch.isfinite(err)].max()) if finite and len(err) else float("nan"))
    v.info(f"{what}_median_row_error", float(err.median()) if len(err) else float("nan"))
    return err


def _reconstruct(ctx: Ctx, method: str, *, src: Path, dst: Path, donor: Path | None = None) -> dict:
    limit, share = ROW_LIMITS[method]
    v = Verdict(f"reconstruct_{method}", f"rows of new ids, CPU vs device: >= {share:.1%} of rows with relative L2 "
                f"error <= {limit:g}, all finite" + ("; mean OMP residual within 1e-3 relative" if method == "omp" else ""))
    p_cpu = _plan(ctx, ctx.cpu, src=src, dst=dst, method=method, donor=donor)
    p_dev = _plan(ctx, ctx.dev, src=src, dst=dst, method=method, donor=donor)
    new = list(p_cpu.alignment.new_ids)
    ids = sorted(random.Random(0).sample(new, min(ctx.sizes.rows_compared, len(new))))
    a = timed(ctx.cpu, lambda: p_cpu.method.initialize(p_cpu.ctx, ids))
    b = timed(ctx.dev, lambda: p_dev.method.initialize(p_dev.ctx, ids))
    v.info("new_ids", len(new)).info("rows_compared", len(ids)).info("base_dim", int(p_cpu.ctx.base.dim))
    _rows_verdict(v, method, a.value.input, b.value.input, "input")
    if a.value.output is not None:
        _rows_verdict(v, method, a.value.output, b.value.output, "output")
    if method == "omp":
        ra, rb = (sum(r.value.details["residual"]) / len(ids) for r in (a, b))
        v.within("residual_mean_rel_diff", abs(ra - rb) / max(abs(ra), 1e-12), 1e-3)
    full, n_full = b, len(ids)
    if len(new) > len(ids) and ctx.sizes.full_rows_on_device:  # the device also rebuilds every new id: rows/s at full size
        full, n_full = timed(ctx.dev, lambda: p_dev.method.initialize(p_dev.ctx, new)), len(new)
    v.speed(a, full, unit="rows", count=n_full, cpu_count=len(ids))
    return v.done()


def check_fvt(ctx: Ctx) -> dict:
    return _reconstruct(ctx, "fvt", src=ctx.models["smol"], dst=ctx.home / "tokenizers/mistral/tokenizer.model")


def check_heuristic(ctx: Ctx) -> dict:
    try:
        return _reconstruct(ctx, "heuristic", src=ctx.models["smol"], dst=ctx.home / "tokenizers/mistral/tokenizer.model")
    finally:
        ctx.shared.pop("plans", None)  # FVT's plans, reused here: their tensors are not needed any more


def check_omp(ctx: Ctx) -> dict:
    """Llama-3.2-1B-shaped base onto the SmolLM2 tokenizer, SmolLM2-shaped donor (the README's OMP setting)."""
    try:
        return _reconstruct(ctx, "omp", src=ctx.models["big"], dst=ctx.models["smol"], donor=ctx.models["smol"])
    finally:
        ctx.shared.pop("plans", None)


def _embeddings(folder: Path):
    from tokkit.embedding import load_model_embeddings

    return load_model_embeddings(folder)


def check_transplant(ctx: Ctx) -> dict:
    """``tokkit transplant --method heuristic`` (held-out check, report, folder) on both sides; the folders agree."""
    from click.testing import CliRunner

    from tokkit_cli.main import cli

    method = ctx.sizes.transplant_method
    v = Verdict("transplant_cli", f"`tokkit transplant` SmolLM2-shaped -> Mistral v1 tokenizer, {method}, on CPU and "
                f"device: both exit 0; written rows as reconstruct_{method}; held-out anchor cosine within 1e-4")
    runs, outs = {}, {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        out = ctx.out(f"transplant-{side}")
        args = ["transplant", "--src", str(ctx.models["smol"]), "--dst", str(ctx.home / "tokenizers/mistral/tokenizer.model"),
                "--method", method, "--heldout", str(ctx.sizes.transplant_heldout), "--device", str(dev), "-o", str(out),
                "--force"]
        runs[side] = timed(dev, lambda: CliRunner().invoke(cli, args, catch_exceptions=True))
        r = runs[side].value
        if r.exit_code != 0:
            tail = (str(r.exception) if r.exception else r.output.strip().splitlines()[-1:] or [""])
            raise RuntimeError(f"tokkit transplant on {side} exited {r.exit_code}: {tail}")
        outs[side] = out
    ref, got = _embeddings(outs["cpu"]), _embeddings(outs["device"])
    _rows_verdict(v, method, ref.input.weight, got.input.weight, "input")
    import json

    reps = [json.loads((outs[s] / "transplant_report.json").read_text()) for s in ("cpu", "device")]
    held = [r.get("heldout_anchor_check", {}).get("cosine_input_mean") for r in reps]
    v.info("heldout_cosine_cpu", held[0]).info("heldout_cosine_device", held[1])
    v.require("heldout_cosine_close", held[0] is not None and held[1] is not None and abs(held[0] - held[1]) <= 1e-4,
              f"held-out anchor cosine {held[0]} (CPU) vs {held[1]} (device)")
    ctx.shared["transplanted"] = outs["device"]
    return v.speed(runs["cpu"], runs["device"]).done()


def _extend(ctx: Ctx, key: str, name: str, *, method: str = "fvt", **run_kw) -> dict:
    """``run_extend`` with ``method`` on both sides (``run_kw`` passed on); old rows bit-exact, new rows per ROW_LIMITS."""
    from tokkit.tokenizer import load_tokenizer
    from tokkit.train.extend_tokenizer import extend_tokenizer, twin_files
    from tokkit.transplant.config import Method
    from tokkit.transplant.extend import run_extend

    model = ctx.models[key]
    text = ctx.text("data/extend/de_reference_sample.txt", ctx.sizes.extend_bytes)
    ext = extend_tokenizer(load_tokenizer(model), docs=[text], add=ctx.sizes.extend_add)
    limit, share = ROW_LIMITS[method]
    v = Verdict(name, f"`run_extend` {method} (the `tokkit extend --model` path) on CPU and device: old rows bit-exact "
                f"on both, >= {share:.1%} of new rows within {limit:g} relative L2 error")
    runs, outs = {}, {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        out = ctx.out(f"{name}-{side}")
        runs[side] = timed(dev, lambda: run_extend(model, ext, out, method=Method(method), device=str(dev), force=True,
                                                   extra_files=twin_files(ext), **run_kw))
        outs[side] = out
    base, ref, got = _embeddings(model), _embeddings(outs["cpu"]), _embeddings(outs["device"])
    old = base.input.weight.shape[0]
    v.info("new_rows", len(ext.new_ids))
    for side, e in (("cpu", ref), ("device", got)):
        v.require(f"old_rows_exact_{side}", torch.equal(e.input.weight[:old], base.input.weight),
                  f"old rows changed on {side}")
    new = torch.tensor(ext.new_ids)
    _rows_verdict(v, method, ref.input.weight[new], got.input.weight[new], "new_rows")
    ctx.shared[f"{key}_extended" if method == "fvt" else f"{key}_{method}"] = outs["device"]
    return v.speed(runs["cpu"], runs["device"]).done()


def check_extend(ctx: Ctx) -> dict:
    return _extend(ctx, "smol", "extend_fvt")


def check_extend_big(ctx: Ctx) -> dict:
    return _extend(ctx, "big", "extend_fvt_1b")


def check_distill(ctx: Ctx) -> dict:
    """Token Distillation (`tokkit extend --method distill`, output rows fitted): ``run_extend`` on CPU and device.

    The rows are the end of an optimisation (Adam over ``distill_epochs`` passes, then the output fit), so
    summation order differs from step one and compounds: the limit is ROW_LIMITS["distill"] for the input
    rows; the fitted output rows are reported (median / max row error), not required, because the fit
    keeps its best epoch and a near-tie between two epochs' validation losses may pick the other epoch.
    """
    from tokkit.transplant.config import TransplantConfig

    text = ctx.text("data/extend/de_reference_sample.txt", ctx.sizes.extend_bytes)
    keep = ctx.text("data/moby_dick_excerpt.txt", ctx.sizes.extend_bytes)
    cfg = TransplantConfig.model_validate({"src": "-", "dst": "-", "output_rows": "fit", **ctx.sizes.distill})
    return _extend(ctx, "smol", "distill", method="distill", config=cfg, texts=[text], keep_texts=[keep])


