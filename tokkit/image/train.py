"""Train a 1D image tokenizer: AdamW + warm-up + cosine, seeded, resumable, with collapse alarms.

MSE (+ optional L1) on pixels in [0, 1] plus the quantizer's loss; the length sampler of the recipe
decides which leading tokens the decoder sees (:mod:`tokkit.image.samplers`). A checkpoint folder holds
``model.safetensors`` + ``model_config.json`` (what :class:`~tokkit.image.api.ImageTokenizer` loads),
``optimizer.safetensors``, ``rng.safetensors`` and ``train_state.json`` (step, recipe, history) and is
replaced atomically, so an interrupted run resumes from its last checkpoint with ``resume=True``.
Diagnostics every ``log_every`` steps: codes in use, mean per-position index entropy, encoder gradient
norm and the mean-image MSE; collapse logs a warning (TiTok issues #27 / #76, reference §6-7).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from tokkit.errors import checkpoint_errors
from tokkit.atomic import atomic_dir, check_resumable, mark_ours, reading_own_output
from tokkit.config import check_memory, check_threads, peak_rss_mb
from tokkit.image.api import ImageTokenizer, psnr_per_image
from tokkit.image.config import ModelConfig, TiTokConfig, TrainConfig
from tokkit.image.data import CropSampler
from tokkit.image.model import Tokenizer1D
from tokkit.image.samplers import sample_lengths, sampler_at
from tokkit.optim import StepLoop, load_optimizer_state, optimizer_tensors, pick_device, warmup_cosine

if TYPE_CHECKING:
    from tokkit.image.titok import TiTok

__all__ = ["train", "TrainResult", "resolve_device", "code_stats", "build_model"]

log = logging.getLogger(__name__)
STATE = "train_state.json"


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished run (``history``: one dict per log step)."""

    steps: int
    seconds: float  # all calls of this run (setup and steps), resumed ones included
    peak_rss_mb: float
    images_seen: int
    final_loss: float
    final_psnr: float
    codes_used: int
    codebook_size: int
    position_entropy_bits: float
    history: tuple[dict, ...]
    earlier_seconds: float = 0.0  # of ``seconds``, the part spent by earlier calls (before a resume)
    stopped: bool = False  # ``max_minutes`` ended this call before the recipe's steps (resume continues)
    mean_colour_psnr: float = float("nan")  # readout images vs a flat image of their own mean colour (trivial code)


def resolve_device(device: str | None) -> torch.device:
    return pick_device(device)


def code_stats(ids: torch.Tensor, codebook_size: int) -> tuple[int, float]:
    """``ids (M, N)`` -> (distinct codes used, mean over positions of the index entropy in bits)."""
    used = int(torch.unique(ids).numel())
    ent = []
    for j in range(ids.shape[1]):
        c = torch.bincount(ids[:, j], minlength=codebook_size).float()
        p = c[c > 0] / c.sum()
        ent.append(float(-(p * p.log2()).sum()))
    return used, sum(ent) / len(ent)


def _lr(step: int, cfg: TrainConfig) -> float:
    return warmup_cosine(step, steps=cfg.steps, peak=cfg.lr, warmup=cfg.warmup, floor=cfg.min_lr_ratio)


def _save(out: Path, model: Tokenizer1D, opt: torch.optim.Optimizer, gen: torch.Generator, state: dict) -> None:
    with atomic_dir(out, force=True) as tmp:
        ImageTokenizer.save_model(model, tmp)
        save_file(optimizer_tensors(opt), str(tmp / "optimizer.safetensors"))
        save_file({"data": gen.get_state(), "torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        (tmp / STATE).write_text(json.dumps(state, indent=1))


def _load(out: Path, model: Tokenizer1D, opt: torch.optim.Optimizer, gen: torch.Generator) -> dict:
    state = json.loads((out / STATE).read_text())
    model.load_state_dict(load_file(str(out / "model.safetensors")), strict=False)
    load_optimizer_state(opt, load_file(str(out / "optimizer.safetensors")))
    rng = load_file(str(out / "rng.safetensors"))
    gen.set_state(rng["data"])
    torch.set_rng_state(rng["torch"])
    return state


def train_memory_bytes(cfg: TrainConfig, m: "ModelConfig | TiTokConfig | None" = None) -> float:
    """Rough peak bytes of one training step: per sample and layer, attention scores ``(heads, L, L)`` and
    ~10 activations ``(L, width)`` in fp32, kept for backward (x2), plus the images; ``L`` = patches + latents.
    ``m`` is the model's config (default: the recipe's)."""
    m = cfg.model if m is None else m
    if isinstance(m, TiTokConfig):
        heads, width, depth = max(m.enc_heads, m.dec_heads), max(m.enc_width, m.dec_width), m.enc_depth + m.dec_depth
    else:
        heads, width, depth = m.heads, m.width, m.enc_depth + m.dec_depth
    L = (m.image_size // m.patch) ** 2 + m.max_tokens
    per_layer = (heads * L * L + 10 * L * width) * 4
    images = 3 * (m.image_size + m.image_size // 8) ** 2 * 4
    return 2.0 * cfg.batch_size * (depth * per_layer + images)


def build_model(cfg: TrainConfig, *, out: Path, resuming: bool) -> "Tokenizer1D | TiTok":
    """The network to train: fresh from the recipe, or the ``init`` checkpoint's (on resume: the run's own
    architecture, whose weights are then replaced by the checkpoint's), with ``trainable`` applied."""
    if cfg.init is None:
        model = Tokenizer1D(cfg.model)
    elif resuming:
        with reading_own_output():  # the run's own checkpoint, which this run replaces
            model = ImageTokenizer.load(out).model
    else:
        model = ImageTokenizer.load(cfg.init).model
    if cfg.trainable == "decoder":
        frozen = ENCODER_SIDE[type(model).__name__]
        for name, prm in model.named_parameters():
            if name.startswith(frozen):
                prm.requires_grad_(False)
    return model.train()


# names of the encoder side (encoder, latent tokens, codebook) of each network, frozen by trainable="decoder"
ENCODER_SIDE = {"Tokenizer1D": ("stem", "enc_pos", "latents", "enc_latent_pos", "encoder", "enc_ln", "to_token", "quantizer"),
                "TiTok": ("encoder", "latent_tokens", "quantize")}


#: Recipe fields a resumed run may change without becoming another run (how long, how often it reports/saves).
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "threads", "eval_images", "init"})


def _check_same_run(out: Path, old: dict, new: dict) -> None:
    """Refuse to continue the checkpoint in ``out`` with another recipe (a different model, optimiser, sampler,
    batch or seed would silently make a run that neither recipe describes)."""
    diff = sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if diff:
        from tokkit.errors import OutputExistsError

        raise OutputExistsError(f"the checkpoint in {out} was started with another recipe ({', '.join(diff)} differ); "
                                f"resume with the same recipe (only {', '.join(sorted(RESUMABLE_CHANGES))} may change), "
                                "or pass --force to start over")
    if old.get("steps") != new.get("steps"):
        log.warning("resuming %s with steps %s (started with %s): the learning-rate schedule follows the new count",
                    out, new.get("steps"), old.get("steps"))


def train(cfg: TrainConfig, *, data: Path, out: Path, device: str | None = "auto", resume: bool = False,
          force: bool = False, progress: bool = True, stop_after: int | None = None,
          max_minutes: float | None = None) -> TrainResult:
    """Train on the images under ``data`` (random crops + flips) into checkpoint folder ``out``.

    ``stop_after`` ends this call after that many steps, ``max_minutes`` once the next step would not fit
    in that many minutes from the call's start (both checkpoint first, :class:`tokkit.optim.StepLoop`);
    ``resume=True`` continues.
    """
    t_call = time.time()
    clock = time.perf_counter()
    resuming = check_resumable(out, state=STATE, resume=resume, force=force)
    if cfg.threads:
        torch.set_num_threads(check_threads(cfg.threads, name="threads"))
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, out=out, resuming=resuming).to(dev)
    mcfg = model.cfg
    if dev.type == "cpu":
        check_memory(train_memory_bytes(cfg, mcfg), what=f"image training with batch size {cfg.batch_size}",
                     fix="lower --batch-size (or the recipe's model size)")
    sampler = CropSampler(data, size=mcfg.image_size)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.99),
                            weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"step": 0, "history": [], "recipe": cfg.model_dump(mode="json"), "data": str(data), "seconds": 0.0}
    if resuming:
        with checkpoint_errors(out):
            state = _load(out, model, opt, gen)
            state["step"] = int(state["step"])
        if not out.is_symlink():
            mark_ours(out)  # a checkpoint that loaded (perhaps written before folders were marked): later saves replace it
        _check_same_run(out, state.get("recipe", {}), cfg.model_dump(mode="json"))
        log.info("resuming %s at step %d", out, state["step"])
    readout = sampler.fixed(min(cfg.eval_images, len(sampler))).to(dev)
    N, K = mcfg.max_tokens, mcfg.codebook_size
    earlier = float(state.get("seconds", 0.0))  # seconds of the calls before this one (a resumed run)
    t0, window_ids, loss_v = t_call, [], float("nan")
    loop = StepLoop("image train", start=state["step"], steps=cfg.steps, checkpoint_every=cfg.checkpoint_every,
                    max_minutes=max_minutes, clock_start=clock, fix="start again (--force) with a lower --lr",
                    progress=progress, stop_at=None if stop_after is None else state["step"] + stop_after)
    model.train()
    for step in loop:
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        x = sampler.batch(cfg.batch_size, gen).to(dev)
        kind = sampler_at(step, kind=cfg.sampler, steps=cfg.steps, full_final=cfg.full_final)
        k, lengths = sample_lengths(kind, batch=x.shape[0], n=N, p_full=cfg.p_full, generator=gen)
        codes, ids, aux = model.encode(x)
        if lengths is not None and lengths.numel() != x.shape[0]:  # nested_dual: each sample at N and at a prefix
            codes, x = codes.repeat(2, 1, 1), x.repeat(2, 1, 1, 1)
        rec = model.decode_codes(codes[:, :k], None if lengths is None else lengths.to(dev))
        loss = F.mse_loss(rec, x) + aux
        if cfg.l1_weight:
            loss = loss + cfg.l1_weight * (rec - x).abs().mean()
        loss_v = loop.check(loss, lr=_lr(step, cfg))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad.norm() for n, p in model.named_parameters() if p.grad is not None and n.startswith(("stem", "encoder"))]
        enc_grad = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else None  # None: encoder frozen
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        window_ids.append(ids.detach().cpu())
        state["step"] = step + 1
        if state["step"] % cfg.log_every == 0 or state["step"] == cfg.steps:
            state["history"].append(_diagnose(model, readout, torch.cat(window_ids), state["step"], loss_v, enc_grad, x, K))
            window_ids = []
            h = state["history"][-1]
            loop.show(loss=f"{loss_v:.4f}", psnr=f"{h['psnr_full']:.2f}", codes=h["codes_used"])
            model.train()
        if loop.checkpoint_due(step):
            state["seconds"] = state.get("seconds", 0.0) + time.time() - t0
            t0 = time.time()
            _save(out, model, opt, gen, state)
    loop.close()
    h = state["history"][-1] if state["history"] else {}
    return TrainResult(steps=state["step"], stopped=loop.stopped, seconds=round(state.get("seconds", 0.0), 1), earlier_seconds=round(earlier, 1),
                       peak_rss_mb=peak_rss_mb(),
                       images_seen=state["step"] * cfg.batch_size, final_loss=loss_v, final_psnr=h.get("psnr_full", float("nan")),
                       codes_used=h.get("codes_used", 0), codebook_size=K,
                       position_entropy_bits=h.get("position_entropy_bits", 0.0), history=tuple(state["history"]),
                       mean_colour_psnr=h.get("psnr_mean_colour", float("nan")))


@torch.no_grad()
def _diagnose(model: Tokenizer1D, readout: torch.Tensor, ids: torch.Tensor, step: int, loss: float, enc_grad: float | None,
              batch: torch.Tensor, K: int) -> dict:
    model.eval()
    codes, _, _ = model.encode(readout)
    N = codes.shape[1]
    rec_full = model.decode_codes(codes)
    rec_quarter = model.decode_codes(codes[:, : max(1, N // 4)])
    used, ent = code_stats(ids, K)
    mean_mse = float(((batch - batch.mean(0, keepdim=True)) ** 2).mean())
    h = {"step": step, "loss": round(loss, 5), "psnr_full": round(float(psnr_per_image(rec_full, readout).mean()), 3),
         "psnr_quarter": round(float(psnr_per_image(rec_quarter, readout).mean()), 3), "codes_used": used,
         "psnr_mean_colour": round(float(psnr_per_image(readout.mean((2, 3), keepdim=True).expand_as(readout),
                                                        readout).mean()), 3),
         "position_entropy_bits": round(ent, 3), "encoder_grad_norm": enc_grad, "mean_image_mse": round(mean_mse, 5)}
    slots = ids.numel()
    if K and (used < 0.02 * min(K, slots) or ent < 1.0):  # K = 0: continuous (VAE) tokens, no codebook
        log.warning("codebook collapse at step %d: %d of %d codes in use, %.2f bits per position", step, used, K, ent)
    if enc_grad is not None and enc_grad < 1e-6:
        log.warning("encoder gradient norm %.1e at step %d: the decoder may be ignoring the tokens", enc_grad, step)
    if step > 100 and loss > 0.9 * mean_mse:
        log.warning("loss %.4f at step %d is still near the mean-image MSE %.4f: the model predicts the mean", loss, step,
                    mean_mse)
    log.info("step %d %s", step, h)
    return h
