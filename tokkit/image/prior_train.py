"""Train the AR token prior on the tokens of a tokenizer's *training* images: seeded, resumable, tqdm.

Data: the tokenizer encodes every training image once resized to S (exactly what the held-out images look
like) plus ``augment_passes`` passes of random S-crops with random horizontal flips; every ``val_every``-th
image is kept out as a readout set (its plain pass only). The token tables are computed once and stored in
the prior folder, so a resumed run does not re-tokenize. Loss: next-token cross-entropy; AdamW, linear
warm-up then cosine decay. The folder is replaced atomically at each checkpoint (``prior.safetensors`` +
``prior_config.json`` for :class:`~tokkit.image.ar_coding.ARCoder`; optimizer, RNG states, tokens and
``train_state.json`` for ``resume=True``, which continues bit-identically).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from tokkit.errors import checkpoint_errors
from tokkit.atomic import atomic_dir, check_resumable, mark_ours
from tokkit.config import check_threads, peak_rss_mb
from tokkit.image.api import ImageTokenizer
from tokkit.image.ar_coding import PRIOR_CONFIG, PRIOR_WEIGHTS, prior_id_of
from tokkit.image.data import CropSampler, image_files, load_images
from tokkit.image.prior import ARPrior, PriorConfig
from tokkit.image.train import resolve_device
from tokkit.optim import StepLoop, load_optimizer_state, optimizer_tensors, warmup_cosine

__all__ = ["train_prior", "PriorTrainResult", "collect_tokens"]

log = logging.getLogger(__name__)
STATE, TOKENS = "train_state.json", "tokens.safetensors"


@dataclass(frozen=True)
class PriorTrainResult:
    """Summary of a finished (or paused) run; bits are per token, base 2."""

    steps: int
    seconds: float
    peak_rss_mb: float
    train_sequences: int
    tokens_seen: int
    train_bits: float
    val_bits: float
    prior_id: str
    params: int
    stopped: bool = False  # ``max_minutes`` ended this call before the recipe's steps (resume continues)


def collect_tokens(tok: ImageTokenizer, data: Path, *, passes: int, val_every: int, seed: int, batch_size: int = 256,
                   progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_ids (M, N), val_ids (V, N))``: plain resized pass + ``passes`` random crop/flip passes."""
    from tqdm.auto import tqdm

    S = tok.config.image_size
    files = image_files(data)
    is_val = torch.tensor([i % val_every == 0 for i in range(len(files))])
    plain = load_images(files, size=S)
    crops = CropSampler(data, size=S) if passes else None
    gen = torch.Generator().manual_seed(seed)
    chunks = [plain]
    for _ in range(passes):
        imgs = crops.images[~is_val[: len(crops)]]
        T = imgs.shape[-1]
        off = torch.randint(0, T - S + 1, (imgs.shape[0], 2), generator=gen)
        flip = torch.rand(imgs.shape[0], generator=gen) < 0.5
        out = torch.stack([imgs[i, :, y:y + S, x:x + S] for i, (y, x) in enumerate(off.tolist())])
        out[flip] = out[flip].flip(-1)
        chunks.append(out.float() / 255)
    allx = torch.cat(chunks)
    ids = []
    for i in tqdm(range(0, allx.shape[0], batch_size), disable=not progress, desc="tokenize", unit="batch"):
        ids.append(torch.stack(tok.tokenize(allx[i:i + batch_size])))
    ids = torch.cat(ids)
    n_plain = plain.shape[0]
    val = ids[:n_plain][is_val]
    train = torch.cat([ids[:n_plain][~is_val], ids[n_plain:]])
    return train, val


def _lr(step: int, cfg: PriorConfig) -> float:
    return warmup_cosine(step, steps=cfg.steps, peak=cfg.lr, warmup=cfg.warmup, floor=cfg.min_lr_ratio)


@torch.no_grad()
def _bits(model: ARPrior, ids: torch.Tensor, batch: int = 512) -> float:
    """Mean cross-entropy in bits per token of ``ids (M, N)`` (float model, eval mode)."""
    was = model.training
    model.eval()
    tot = 0.0
    for i in range(0, ids.shape[0], batch):
        x = ids[i:i + batch]
        tot += float(F.cross_entropy(model(x).flatten(0, 1), x.flatten(), reduction="sum"))
    model.train(was)
    return tot / ids.numel() / math.log(2)


def _save(out: Path, model: ARPrior, opt, gen: torch.Generator, state: dict, meta: dict,
          tokens: dict[str, torch.Tensor]) -> None:
    with atomic_dir(out, force=True) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / PRIOR_WEIGHTS))
        (tmp / PRIOR_CONFIG).write_text(json.dumps(meta, indent=1))
        save_file(optimizer_tensors(opt), str(tmp / "optimizer.safetensors"))
        save_file({"data": gen.get_state(), "torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        save_file(tokens, str(tmp / TOKENS))
        state["prior_id"] = prior_id_of(tmp)
        (tmp / STATE).write_text(json.dumps(state, indent=1))


def train_prior(cfg: PriorConfig, *, tokenizer: Path, data: Path, out: Path, device: str | None = "auto",
                resume: bool = False, force: bool = False, progress: bool = True,
                stop_after: int | None = None, max_minutes: float | None = None) -> PriorTrainResult:
    """Train an :class:`ARPrior` for the tokenizer checkpoint ``tokenizer`` on the images under ``data``.

    ``stop_after`` ends this call after that many steps, ``max_minutes`` once the next step would not fit
    in that many minutes from the call's start (both checkpoint first, :class:`tokkit.optim.StepLoop`);
    ``resume=True`` continues.
    """
    clock = time.perf_counter()
    resuming = check_resumable(out, state=STATE, resume=resume, force=force)
    if cfg.threads:
        torch.set_num_threads(check_threads(cfg.threads, name="threads"))
    dev = resolve_device(device)
    tok = ImageTokenizer.load(tokenizer)
    N, K = tok.config.max_tokens, tok.config.codebook_size
    meta = {"recipe": cfg.model_dump(mode="json"), "codebook_size": K, "max_tokens": N, "tokenizer_id": tok.model_id,
            "tokenizer": str(Path(tokenizer).resolve()), "data": str(data)}
    torch.manual_seed(cfg.seed)
    model = ARPrior(cfg, codebook_size=K, max_tokens=N).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos_emb" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "pos_emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"step": 0, "history": [], "seconds": 0.0}
    t0 = time.time()
    if resuming:
        with checkpoint_errors(out):
            state = json.loads((out / STATE).read_text())
            old = json.loads((out / PRIOR_CONFIG).read_text())
            if old["tokenizer_id"] != tok.model_id:
                from tokkit.image.errors import ModelMismatchError

                raise ModelMismatchError(f"{out} was trained on tokens of tokenizer {old['tokenizer_id']}, not of {tokenizer} "
                                         f"({tok.model_id}); resume with the same tokenizer or start a new -o folder")
            if old["recipe"] != meta["recipe"]:
                log.warning("resuming %s with a recipe that differs from the one it was started with", out)
            model.load_state_dict(load_file(str(out / PRIOR_WEIGHTS)))
            load_optimizer_state(opt, load_file(str(out / "optimizer.safetensors")))
            rng = load_file(str(out / "rng.safetensors"))
            gen.set_state(rng["data"])
            torch.set_rng_state(rng["torch"])
            tokens = load_file(str(out / TOKENS))
            state["step"] = int(state["step"])
        if not out.is_symlink():
            mark_ours(out)  # a checkpoint that loaded (perhaps written before folders were marked): later saves replace it
        log.info("resuming %s at step %d", out, state["step"])
    else:
        train_ids, val_ids = collect_tokens(tok, data, passes=cfg.augment_passes, val_every=cfg.val_every, seed=cfg.seed,
                                            progress=progress)
        tokens = {"train": train_ids.contiguous(), "val": val_ids.contiguous()}
        state["tokenize_seconds"] = round(time.time() - t0, 1)
    train_ids, val_ids = tokens["train"].to(dev), tokens["val"].to(dev)
    loop = StepLoop("prior train", start=state["step"], steps=cfg.steps, checkpoint_every=cfg.checkpoint_every,
                    max_minutes=max_minutes, clock_start=clock, fix="start again (--force) with a lower --lr",
                    progress=progress, stop_at=None if stop_after is None else state["step"] + stop_after)
    loss_v = float("nan")
    model.train()
    for step in loop:
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        idx = torch.randint(0, train_ids.shape[0], (cfg.batch_size,), generator=gen).to(dev)
        x = train_ids[idx]
        loss = F.cross_entropy(model(x).flatten(0, 1), x.flatten())
        loss_v = loop.check(loss, lr=_lr(step, cfg)) / math.log(2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["step"] = step + 1
        if state["step"] % cfg.log_every == 0 or state["step"] == cfg.steps:
            h = {"step": state["step"], "train_bits": round(loss_v, 4), "val_bits": round(_bits(model, val_ids), 4)}
            state["history"].append(h)
            loop.show(bits=f"{loss_v:.3f}", val=f"{h['val_bits']:.3f}")
            log.info("prior step %d %s", state["step"], h)
        if loop.checkpoint_due(step):
            state["seconds"] = round(state.get("seconds", 0.0) + time.time() - t0, 1)
            t0 = time.time()
            _save(out, model, opt, gen, state, meta, tokens)
    loop.close()
    return PriorTrainResult(steps=state["step"], stopped=loop.stopped, seconds=state.get("seconds", 0.0), peak_rss_mb=peak_rss_mb(),
                            train_sequences=int(train_ids.shape[0]), tokens_seen=state["step"] * cfg.batch_size * N,
                            train_bits=loss_v, val_bits=_bits(model, val_ids), prior_id=state.get("prior_id", ""),
                            params=sum(p.numel() for p in model.parameters()))
