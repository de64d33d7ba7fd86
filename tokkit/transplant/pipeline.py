"""Plan and run a transplant: load, align, estimate the cost, reconstruct, check, write.

``plan_transplant`` does everything cheap (reads the two embedding tensors, aligns the vocabularies,
builds the method, estimates FLOPs and memory) so the CLI can print the cost before any heavy
work; ``transplant_embeddings`` computes the new matrices and the provenance report without
touching the disk; ``run_transplant`` also writes the HF model folder (atomically) and the report
``transplant_report.json`` inside it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from tokkit.atomic import check_output, check_replaceable, is_ours
from tokkit.embedding import EmbeddingTable, ModelEmbeddings, load_model_embeddings, write_model_folder
from tokkit.embedding.write import check_side_files
from tokkit.errors import OptionError, VocabMismatchError
from tokkit.names import resolve_model
from tokkit.optim.distributed import pick_device
from tokkit.tokenizer import Tokenizer, load_tokenizer
from tokkit.transplant.align import Alignment, Match, align_vocabs
from tokkit.transplant.base import Cost, EmbeddingInit, InitContext
from tokkit.transplant.config import TransplantConfig
from tokkit.transplant.methods import build_method
from tokkit.transplant.output_rows import check_output_rows, output_rows_for
from tokkit.transplant.report import REPORT_FILE, build_report, resolve_chat_template

__all__ = ["Plan", "TransplantResult", "plan_transplant", "transplant_embeddings", "run_transplant", "pick_device",
           "distill_checkpoint", "use_checkpoint"]

log = logging.getLogger(__name__)


def _batch_budget(device: torch.device, memory_gb: float | None) -> int:
    if memory_gb is not None:
        return int(memory_gb * (1 << 30))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    import os

    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        avail = 4 << 30
    return int(min(avail / 8, 1 << 30))


@dataclass
class Plan:
    """A transplant ready to run, with its cost known."""

    cfg: TransplantConfig
    src_folder: Path
    src_tok: Tokenizer
    dst_tok: Tokenizer
    method: EmbeddingInit
    ctx: InitContext
    cost: Cost
    rows: int

    @property
    def alignment(self) -> Alignment:
        return self.ctx.alignment

    def summary(self) -> dict[str, Any]:
        a_dst, _ = self.alignment.anchors()
        return {
            "method": self.method.name, "device": str(self.ctx.device), "new_tokens": len(self.alignment.new_ids),
            "anchors": len(a_dst), "counts": self.alignment.counts(), "flops": self.cost.flops,
            "memory_bytes": self.cost.memory_bytes, "rows": self.rows, "tied": self.ctx.base.tied,
            "treated_as_new": len(self.ctx.banned_source_ids),
        }


def plan_transplant(cfg: TransplantConfig, *, texts: Sequence[str] = (), keep_texts: Sequence[str] = ()) -> Plan:
    """Load tokenizers and embedding tensors, align, build the method and estimate its cost.

    ``texts`` (text in which the new tokens occur) and ``keep_texts`` (text of the language the model
    keeps) feed the methods that learn from the model (``distill``) and the output-row fit.
    """
    unused = cfg.unused_knobs()
    if unused:
        flags = ", ".join("--" + f.replace("_", "-") for f in unused)
        rows = cfg.output_rows.value if cfg.output_rows else "the method's own"
        raise OptionError(f"{flags} would be ignored: the method is {cfg.resolved_method().value} and the output rows "
                          f"{rows}; distill's options need --method distill, --fit-bytes and --fit-keep-weight need "
                          f"--output-rows fit (or --method distill): drop {flags} or change the method")
    src_folder = resolve_model(cfg.src)
    src_tok = load_tokenizer(src_folder)
    dst_tok = load_tokenizer(cfg.dst)
    device = pick_device(cfg.device)
    base = load_model_embeddings(src_folder, vocab=src_tok.vocab)
    donor = None
    if cfg.donor is not None:
        donor_folder = resolve_model(cfg.donor)
        donor_vocab = load_tokenizer(donor_folder).vocab
        if donor_vocab.tokens != dst_tok.vocab.tokens:
            raise VocabMismatchError(
                f"the donor {cfg.donor} uses a different tokenizer ({len(donor_vocab)} ids) than --dst {cfg.dst} "
                f"({len(dst_tok.vocab)} ids); OMP needs a donor trained with the destination tokenizer")
        donor = load_model_embeddings(donor_folder, vocab=dst_tok.vocab)
    alignment = align_vocabs(src_tok.vocab, dst_tok.vocab)
    banned: frozenset[int] = frozenset()
    if cfg.treat_as_new:
        alignment, banned = _treat_as_new(alignment, cfg.treat_as_new, cfg.seed)
    method = build_method(cfg)
    ctx = InitContext(base=base, alignment=alignment, src_hf=src_tok.to_hf(), donor=donor, device=device,
                      batch_bytes=_batch_budget(device, cfg.memory_gb), progress=True, seed=cfg.seed,
                      banned_source_ids=banned, model_folder=src_folder, src_tok=src_tok, dst_tok=dst_tok,
                      texts=tuple(texts), keep_texts=tuple(keep_texts))
    check_output_rows(cfg, base.tied, ctx)
    n_new = len(alignment.new_ids)
    cost = method.cost(ctx, n_new)
    if cfg.heldout:
        extra = method.cost(ctx, heldout_size(cfg.heldout, len(alignment.anchors()[0])))
        cost = Cost(cost.flops + extra.flops, max(cost.memory_bytes, extra.memory_bytes))
    rows = math.ceil(len(dst_tok.vocab) / cfg.pad_to) * cfg.pad_to
    return Plan(cfg, src_folder, src_tok, dst_tok, method, ctx, cost, rows)


def _treat_as_new(al: Alignment, share: float, seed: int) -> tuple[Alignment, frozenset[int]]:
    """Mark a seeded ``share`` of the shared multi-byte anchors new; their source rows become banned.

    An evaluation device: with byte-level alignment nearly every token of English prose is copied, so
    bits per byte cannot tell methods apart; rebuilding half of the shared tokens can. Single bytes stay
    (every decomposition needs them).
    """
    a_dst, a_src = al.anchors()
    pool = [(d, s) for d, s in zip(a_dst, a_src) if len(al.dst.tokens[d]) >= 2]
    pick = sorted(random.Random(f"treat-as-new:{seed}").sample(range(len(pool)), int(round(share * len(pool)))))
    dst = [pool[i][0] for i in pick]
    return al.holding_out(dst), frozenset(pool[i][1] for i in pick)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=1)


def heldout_size(asked: int, shared: int) -> int:
    """Shared tokens the fidelity check rebuilds: ``asked``, but at most half of them -- the other half stay
    anchors for the method to build from (holding out every shared token left none: an IndexError)."""
    return min(asked, shared // 2)


def heldout_check(plan: Plan) -> dict[str, Any]:
    """Reconstruct a seeded sample of shared tokens as if new; cosine to their true base rows."""
    a_dst, a_src = plan.alignment.anchors()
    n = heldout_size(plan.cfg.heldout, len(a_dst))
    if n == 0:
        return {}
    pick = sorted(random.Random(plan.cfg.seed).sample(range(len(a_dst)), n))
    held_dst, held_src = [a_dst[i] for i in pick], [a_src[i] for i in pick]
    ctx = replace(plan.ctx, alignment=plan.alignment.holding_out(held_dst),
                  banned_source_ids=plan.ctx.banned_source_ids | frozenset(held_src))
    method = getattr(plan.method, "start", plan.method)  # distill: its start rows (distilling these too costs as much again)
    res = method.initialize(ctx, held_dst)
    idx = torch.tensor(held_src, device=res.input.device)
    out: dict[str, Any] = {"tokens": n, "method": method.name}
    c = _cos(res.input, plan.ctx.base_input()[idx])
    out["cosine_input_mean"], out["cosine_input_median"] = round(float(c.mean()), 4), round(float(c.median()), 4)
    base_out = plan.ctx.base_output()
    if res.output is not None and base_out is not None:
        c = _cos(res.output, base_out[idx])
        out["cosine_output_mean"], out["cosine_output_median"] = round(float(c.mean()), 4), round(float(c.median()), 4)
    return out


def transplant_embeddings(plan: Plan) -> tuple[ModelEmbeddings, dict[str, Any]]:
    """The new input/output rows ``(rows, D)`` for the destination vocab, and the provenance report."""
    al, ctx = plan.alignment, plan.ctx
    e_in, e_out = ctx.base_input(), ctx.base_output()
    D = e_in.shape[1]
    new_in = torch.zeros(plan.rows, D, device=ctx.device)
    new_out = None if e_out is None else torch.zeros(plan.rows, D, device=ctx.device)
    matched = [i for i, s in enumerate(al.source_id) if s >= 0]
    if matched:
        d_idx = torch.tensor(matched, device=ctx.device)
        s_idx = torch.tensor([al.source_id[i] for i in matched], device=ctx.device)
        new_in[d_idx] = e_in[s_idx]
        if new_out is not None:
            new_out[d_idx] = e_out[s_idx]  # type: ignore[index]
    unmatched = al.ids(Match.SPECIAL_UNMATCHED)
    if unmatched:  # no counterpart: the mean ordinary row (never a mixture of '<', '|', 'im' pieces)
        ords = torch.tensor(ctx.ordinary_source_ids(), device=ctx.device)
        new_in[torch.tensor(unmatched, device=ctx.device)] = e_in[ords].mean(0)
        if new_out is not None:
            new_out[torch.tensor(unmatched, device=ctx.device)] = e_out[ords].mean(0)  # type: ignore[index]
    new_ids = al.new_ids
    t0 = time.perf_counter()
    details: dict[str, list[Any]] = {}
    out_note: dict[str, Any] = {"mode": "tie" if new_out is None else "init", "untied": False}
    if new_ids:
        res = plan.method.initialize(ctx, new_ids)
        idx = torch.tensor(new_ids, device=ctx.device)
        new_in[idx] = res.input.to(ctx.device)
        rows, out_note = output_rows_for(plan.cfg, ctx, new_in, new_out, new_ids, res)
        if rows is not None:
            if new_out is None:  # a tied base gets its own output matrix: the old rows bit-for-bit, then the new ones
                new_out = new_in.clone()
            new_out[idx] = rows.to(ctx.device)
        details = res.details
    seconds = time.perf_counter() - t0
    held = heldout_check(plan) if plan.cfg.heldout else {}
    dst = al.dst
    emb = ModelEmbeddings(EmbeddingTable(dst, new_in), None if new_out is None else EmbeddingTable(dst, new_out))
    report = build_report(plan, details, heldout=held, seconds=seconds)
    report["output_rows"] = out_note
    if ctx.notes:
        report["method_notes"] = dict(ctx.notes)
    return emb, report


@dataclass(frozen=True)
class TransplantResult:
    out_dir: Path
    report: dict[str, Any]


def distill_checkpoint(out_dir: str | Path) -> Path:
    """Where a distilling run writing ``out_dir`` keeps its resumable state."""
    p = Path(out_dir)
    return p.with_name(p.name + ".distill-checkpoint")


def use_checkpoint(plan: Plan, out_dir: str | Path, *, force: bool, resume: bool) -> Path | None:
    """Point a resumable method (distill) at its checkpoint beside ``out_dir``; refuse a stray one.

    Without ``resume`` an existing checkpoint is an interrupted run: refused (``force``: discarded), never
    silently deleted. Returns the folder to remove once the output is written (None: the method keeps none).
    """
    import shutil

    from tokkit.errors import OutputExistsError

    if not hasattr(plan.method, "start"):
        return None
    ck = distill_checkpoint(out_dir)
    check_replaceable(ck, "dir")  # a file or a folder tokkit did not write there is never resumed from or removed
    if ck.exists() and not resume:
        if not force:
            raise OutputExistsError(f"an interrupted run left a checkpoint at {ck}; pass --resume to continue it "
                                    "or --force to start over")
        shutil.rmtree(ck)
    plan.ctx = replace(plan.ctx, checkpoint=ck, resume=resume)
    return ck


def drop_checkpoint(ck: Path | None) -> None:
    """Remove the checkpoint a finished run wrote (only tokkit's own: never what appeared there meanwhile)."""
    import shutil

    if ck is not None and is_ours(ck) and not ck.is_symlink():
        shutil.rmtree(ck)


def run_transplant(plan: Plan, out_dir: str | Path, *, force: bool = False, resume: bool = False) -> TransplantResult:
    """Compute the new embeddings and write the HF model folder plus ``transplant_report.json``.

    ``resume`` continues an interrupted distillation from its checkpoint beside ``out_dir``.
    """
    import json

    check_output(out_dir, force=force)
    check_side_files(plan.src_folder)  # a device or FIFO side file: refused before the embedding work
    ck = use_checkpoint(plan, out_dir, force=force, resume=resume)
    emb, report = transplant_embeddings(plan)
    template, note = resolve_chat_template(plan)
    report["chat_template"] = note
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    out = write_model_folder(plan.src_folder, out_dir, emb, hf_tokenizer=plan.dst_tok.to_hf(), vocab=plan.alignment.dst,
                             force=force, chat_template=template, extra_files={REPORT_FILE: text})
    drop_checkpoint(ck)
    return TransplantResult(out, report)
