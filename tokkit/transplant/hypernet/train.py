"""Train a hypernetwork for one base model (ZeTT, arXiv:2405.07883 §3.2, at CPU scale).

One step: draw ``batch_size`` text chunks, sample a fresh UnigramLM tokenizer from them (plus a few
more chunks), encode the chunks with it, build the rows of every token in the batch plus random
negatives of the sampled vocabulary (shared tokens copied from the base, new ones predicted), run
the **frozen** base model on the predicted input rows and score the next tokens against the
predicted output rows (the softmax runs over this step's rows, each negative weighted so that it
estimates a softmax over a ``softmax_rows`` vocabulary), and add the auxiliary MSE of
base tokens rebuilt from their sub-pieces. The first ``warmup_steps`` use the auxiliary loss alone
(ZeTT's identity warm-up; with our residual initialisation the identity is exact from the start, so
the warm-up teaches the composition of sub-pieces instead).

All randomness of step ``s`` comes from ``random.Random(f"{seed}:{s}:{rank}")`` and the network is
initialised from ``seed``; a checkpoint (network + AdamW moments + step) is the whole state, so an
interrupted run resumed from its last checkpoint ends bitwise equal to an uninterrupted one (CPU).
Multi-GPU: start under ``torchrun``; ranks draw different batches and DDP averages the gradients.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tokkit.atomic import mark_ours, recover
from tokkit.config import check_memory, peak_rss_mb
from tokkit.errors import MissingFileError, OutputExistsError, VocabMismatchError, checkpoint_errors
from tokkit.names import resolve_model
from tokkit.tokenizer import load_tokenizer
from tokkit.optim import StepLoop, finish_distributed, init_distributed, load_optimizer_state, warmup_cosine
from tokkit.transplant.hypernet.checkpoint import base_fingerprint, is_checkpoint, load_checkpoint, save_checkpoint
from tokkit.transplant.hypernet.config import ARCH_KEYS, HypernetConfig
from tokkit.transplant.hypernet.data import PieceCache, TextSampler, read_corpus
from tokkit.transplant.hypernet.model import HyperNet, pad_pieces
from tokkit.transplant.hypernet.sampler import sample_tokenizer

__all__ = ["TrainResult", "train_hypernet", "lr_at", "sampled_softmax_nll"]

log = logging.getLogger(__name__)
_RESUMABLE_CHANGES = {"steps", "checkpoint_every", "device"}  # settings a resumed run may change
_BEFORE_FIELD = {"softmax_rows": 0}  # what a checkpoint written before a setting existed was trained with


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    steps: int
    resumed_from: int
    seconds: float
    tokens: int
    last_loss: dict[str, float]
    peak_rss_gb: float
    rank: int = 0  # under torchrun: this process's rank (only rank 0 writes checkpoints)
    stopped: bool = False  # the --max-minutes budget ended this call before cfg.steps (resume continues)


def lr_at(step: int, cfg: HypernetConfig) -> float:
    """Linear warm-up over 10% of the steps (at most 100), then cosine decay to 10% of the peak."""
    return warmup_cosine(step, steps=cfg.steps, peak=cfg.lr, floor=0.1)


class _Base:
    """The frozen base: its backbone, rows ``table (R, W)``, width ``D``, the start row."""

    def __init__(self, folder: Path, device: torch.device) -> None:
        from tokkit.hf_models import load_causal_lm

        self.tok = load_tokenizer(folder)
        self.lm = load_causal_lm(folder, device=device)
        self.lm.requires_grad_(False)
        e_in = self.lm.get_input_embeddings().weight.detach().float()
        out = self.lm.get_output_embeddings()
        tied = out is None or out.weight.data_ptr() == self.lm.get_input_embeddings().weight.data_ptr()
        self.tied, self.dim = tied, e_in.shape[1]
        self.table = e_in if tied else torch.cat([e_in, out.weight.detach().float()], dim=1)
        self.scale = float(getattr(self.lm.get_input_embeddings(), "embed_scale", 1.0))  # Gemma scales inside
        v = self.tok.vocab
        start = v.role_id("bos") if v.role_id("bos") is not None else v.role_id("eos")
        if start is None:
            raise VocabMismatchError(f"{folder}: the base tokenizer has no bos/eos token to start sequences with")
        self.start = start
        self.backbone = self.lm.base_model


def _aux_loss(net, base: _Base, cache: PieceCache, ids: list[int]) -> torch.Tensor:
    pieces = [cache.held_out(i) for i in ids]
    keep = [(i, p) for i, p in zip(ids, pieces) if p]
    if not keep:
        return base.table.new_zeros(())
    pid, mask = pad_pieces([p for _, p in keep], device=base.table.device)
    pred = net(base.table, pid, mask)
    true = base.table[torch.tensor([i for i, _ in keep], device=base.table.device)]
    return ((pred - true) ** 2).mean() / base.table.var()


def _lm_step(net, base: _Base, cache: PieceCache, texts: list[str], tk, cfg: HypernetConfig,
             rng: random.Random) -> tuple[torch.Tensor, list[int], dict[str, float]]:
    dev = base.table.device
    seqs = [tk.encode(t)[: cfg.seq_len] for t in texts]
    used = sorted({i for s in seqs for i in s})
    used_set = set(used)
    rest = [i for i in range(len(tk)) if i not in used_set]
    vocab_ids = used + sorted(rng.sample(rest, min(cfg.negatives, len(rest))))
    local = {v: j for j, v in enumerate(vocab_ids)}
    base_ids = [cache.base_id(tk.tokens[v]) for v in vocab_ids]
    shared = [j for j, b in enumerate(base_ids) if b is not None]
    new = [j for j, b in enumerate(base_ids) if b is None]
    rows = base.table.new_zeros(len(vocab_ids), base.table.shape[1])
    if shared:
        rows = rows.index_copy(0, torch.tensor(shared, device=dev),
                               base.table[torch.tensor([base_ids[j] for j in shared], device=dev)])
    if new:
        pid, mask = pad_pieces([cache.pieces(tk.tokens[vocab_ids[j]]) for j in new], device=dev)
        rows = rows.index_copy(0, torch.tensor(new, device=dev), net(base.table, pid, mask))
    e_in = rows[:, : base.dim]
    e_out = e_in if base.tied else rows[:, base.dim:]
    T = max(len(s) for s in seqs)
    B = len(seqs)
    idx = torch.zeros(B, T, dtype=torch.long, device=dev)
    labels = torch.full((B, T), -100, dtype=torch.long, device=dev)
    attn = torch.zeros(B, T + 1, dtype=torch.long, device=dev)
    for r, s in enumerate(seqs):
        loc = torch.tensor([local[i] for i in s], device=dev)
        idx[r, : len(s)], labels[r, : len(s)], attn[r, : len(s) + 1] = loc, loc, 1
    start = base.table[base.start, : base.dim].expand(B, 1, -1)
    x = torch.cat([start, e_in[idx]], dim=1) * base.scale
    h = base.backbone(inputs_embeds=x, attention_mask=attn).last_hidden_state[:, :-1]
    logits = (h @ e_out.T).reshape(-1, len(vocab_ids))  # (B*T, V_step): the softmax runs over this step's rows
    flat = labels.reshape(-1)
    nll = sampled_softmax_nll(logits, flat, n_batch=len(used), softmax_rows=cfg.softmax_rows)
    with torch.no_grad():  # reported: the plain step softmax, comparable across settings
        total = F.cross_entropy(logits, flat, ignore_index=-100, reduction="sum").item()
    n_tok = int((labels >= 0).sum())
    n_bytes = sum(len(tk.tokens[i]) for s in seqs for i in s)
    stats = {"lm": total / max(n_tok, 1), "bpb": total / (math.log(2) * max(n_bytes, 1)),
             "new": len(new) / max(len(vocab_ids), 1), "lmw": nll.item() / max(n_tok, 1)}
    aux_ids = [base_ids[j] for j in shared if len(tk.tokens[vocab_ids[j]]) >= 2]
    return nll / max(n_tok, 1), aux_ids, stats | {"tokens": n_tok}


def sampled_softmax_nll(logits: torch.Tensor, labels: torch.Tensor, *, n_batch: int, softmax_rows: int) -> torch.Tensor:
    """Summed NLL of ``labels (N,)`` under ``logits (N, V)`` whose columns ``n_batch:`` are sampled negatives.

    Each negative stands for ``w = max(1, (softmax_rows - n_batch) / (V - n_batch))`` rows (``log w`` added
    to its logit), so the partition function estimates one over a ``softmax_rows`` vocabulary: the
    sampled-softmax correction of Jean et al. (ACL 2015). Labels must point at batch columns; -100 is
    ignored. ``softmax_rows = 0`` (or no negatives) is the plain softmax over the ``V`` columns. Without
    the correction a network trained against ~1k competitors puts too much probability on the thousands
    of rows it builds at transplant time (measured as the leak by ``tokkit eval-lm``).
    """
    n_neg = logits.shape[-1] - n_batch
    if softmax_rows and n_neg > 0:
        w = max(1.0, (softmax_rows - n_batch) / n_neg)
        shift = torch.zeros(logits.shape[-1], device=logits.device, dtype=logits.dtype)
        shift[n_batch:] = math.log(w)
        logits = logits + shift
    return F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")


def _resume_or_start(out_dir: Path, cfg: HypernetConfig, fp: dict[str, Any], force: bool):
    recover(out_dir)  # a run killed mid-save: drop its temporaries, finish an interrupted swap
    if not out_dir.exists():
        return None
    if force:
        return None
    if not is_checkpoint(out_dir):  # not a checkpoint: refuse to overwrite it
        raise OutputExistsError(f"{out_dir} exists and is not a hypernetwork checkpoint; pass --force to replace it")
    try:
        ck = load_checkpoint(out_dir, with_optimizer=True)  # a damaged one: "damaged or was changed"
    except MissingFileError:  # config.json without weights (a run killed before its first save)
        raise OutputExistsError(f"{out_dir} exists and is not a complete hypernetwork checkpoint; pass --force to "
                                "replace it") from None
    old = ck.meta.get("config", {})
    diff = sorted(k for k in cfg.model_dump() if k not in _RESUMABLE_CHANGES
                  and old.get(k, _BEFORE_FIELD.get(k)) != cfg.model_dump()[k]
                  and not (k == "corpus" and list(old.get(k, [])) == list(cfg.corpus)))
    if diff or ck.meta.get("base_fingerprint") != fp:
        raise OutputExistsError(f"{out_dir} holds a checkpoint of another run (differs in {diff or ['base model']}); "
                                f"pass --force to start over or choose another -o")
    mark_ours(out_dir)  # our checkpoint (perhaps from before folders were marked): its next save replaces it
    return ck


def train_hypernet(cfg: HypernetConfig, out_dir: str | Path, *, force: bool = False, progress: bool = True,
                   max_minutes: float | None = None) -> TrainResult:
    """Train (or resume from the checkpoint in ``out_dir``) and checkpoint into ``out_dir``.

    ``max_minutes``: stop at a checkpoint once the next step would not fit in this many minutes from the
    call's start (:class:`tokkit.optim.StepLoop`); calling again resumes.
    """
    t_call = time.perf_counter()
    out_dir = Path(out_dir)
    world, rank, device = init_distributed(cfg.device)
    folder = resolve_model(cfg.base)
    if device.type == "cpu":  # logits over the step's rows dominate: (batch x seq_len) x (rows), fp32, with grads
        rows = cfg.negatives + cfg.batch_size * cfg.seq_len
        check_memory(3.0 * 4 * cfg.batch_size * cfg.seq_len * rows, what=f"a hypernetwork step with --batch-size "
                     f"{cfg.batch_size}, --seq-len {cfg.seq_len} and --negatives {cfg.negatives}",
                     fix="lower --batch-size, --seq-len or --negatives")
    docs = read_corpus(cfg.corpus)
    base = _Base(folder, device)
    fp = base_fingerprint(base.tok.vocab, base.table)
    ck = _resume_or_start(out_dir, cfg, fp, force)
    torch.manual_seed(cfg.seed)
    net = HyperNet(dim=base.dim, tied=base.tied, table=base.table, **cfg.arch()).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    start = 0
    if ck is not None:
        with checkpoint_errors(out_dir):
            net.load_state_dict(ck.model)
            if ck.optimizer is not None:
                load_optimizer_state(opt, ck.optimizer)
            start = int(ck.step)
        log.info("resuming %s from step %d", out_dir, start)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    cache = PieceCache(base.tok.vocab, base.tok.to_hf())
    texts = TextSampler(docs, chunk_chars=cfg.seq_len * 6)
    t0, n_tokens, stats = time.perf_counter(), 0, {}
    history = list(ck.meta.get("history", [])) if ck is not None else []
    loop = StepLoop("hypernet", start=start, steps=cfg.steps, checkpoint_every=cfg.checkpoint_every,
                    max_minutes=max_minutes, clock_start=t_call, fix="lower --lr (or raise --warmup-steps)",
                    progress=progress, rank=rank, world=world)
    for step in loop:
        rng = random.Random(f"{cfg.seed}:{step}:{rank}")
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        if step < cfg.warmup_steps:
            loss = _aux_loss(model, base, cache, rng.sample(cache.multi, min(4 * cfg.aux_tokens or 256, len(cache.multi))))
            stats = {"aux": loop.check(loss, lr=lr_at(step, cfg))}
        else:
            batch = texts.draw(rng, cfg.batch_size)
            tk = sample_tokenizer(batch + texts.draw(rng, 16), rng=rng, vocab_size=cfg.vocab_size,
                                  noise_log_sigma=cfg.noise_log_sigma, max_words=cfg.max_words,
                                  multiword_prob=cfg.multiword_prob)
            lm, aux_ids, stats = _lm_step(model, base, cache, batch, tk, cfg, rng)
            n_tokens += stats.pop("tokens")
            aux_ids = rng.sample(aux_ids, min(cfg.aux_tokens, len(aux_ids)))
            aux = _aux_loss(model, base, cache, aux_ids) if cfg.aux_weight and aux_ids else lm.new_zeros(())
            loss = lm + cfg.aux_weight * aux
            loop.check(loss, lr=lr_at(step, cfg))
            stats["aux"] = aux.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        stats = {k: round(v, 4) for k, v in stats.items()}
        loop.show(**stats)
        history.append({"step": step + 1, **stats})
        if loop.checkpoint_due(step) and rank == 0:
            meta = {"base": cfg.base, "base_fingerprint": fp, "dim": base.dim, "tied": base.tied,
                    "arch": {k: getattr(cfg, k) for k in ARCH_KEYS}, "config": cfg.model_dump(mode="json"),
                    "step": step + 1, "history": history}
            save_checkpoint(out_dir, model=net, opt=opt, meta=meta)
    finish_distributed(world)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb() / 1024  # GiB
    return TrainResult(out_dir, loop.end, start, seconds, n_tokens, stats, peak, rank, loop.stopped)
