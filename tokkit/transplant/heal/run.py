"""Plan and run a heal: check every input first, then train, then write the healed HF model folder.

``plan_heal`` does the cheap checks (output free, a model folder, which rows are trainable, the
teacher and its tokenizer, enough text, no stray checkpoint) so bad input stops before any model is
loaded and nothing is written. ``run_heal`` loads the models, trains
(:func:`tokkit.transplant.heal.trainer.train_rows`) and writes the folder atomically with
``write_model_folder``: only the trained tensors change, the heal record is added to
``transplant_report.json``, and the checkpoint folder is removed.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokkit.atomic import check_output, check_replaceable, is_ours, recover
from tokkit.config import check_memory
from tokkit.errors import FormatError, OutputExistsError, TokkitError, VocabMismatchError
from tokkit.names import resolve_model
from tokkit.text import read_text
from tokkit.tokenizer import Tokenizer, load_tokenizer
from tokkit.transplant.heal.checkpoint import checkpoint_dir
from tokkit.transplant.heal.config import HealConfig, Loss, Train
from tokkit.transplant.heal.data import HealText, load_text
from tokkit.transplant.report import REPORT_FILE, built_ids

__all__ = ["HealPlan", "plan_heal", "run_heal"]

log = logging.getLogger(__name__)


@dataclass
class HealPlan:
    """A heal run whose inputs have been checked."""

    cfg: HealConfig
    out_dir: Path
    model: Path
    tok: Tokenizer
    report: dict[str, Any] | None
    ids: list[int] | None  # rows to train; None = every row
    teacher: Path | None
    teacher_tok: Tokenizer | None
    text: HealText
    resume: bool
    force: bool


def _model_folder(name: str) -> Path:
    folder = resolve_model(name)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise FormatError(f"{name} is not a model folder: expected an HF causal-LM folder with config.json, safetensors "
                          f"weights and tokenizer files (what `tokkit transplant -o` writes)")
    from tokkit.embedding.io import checkpoint_layout

    checkpoint_layout(folder)  # safetensors weights with an input embedding, else a clear error
    return folder


def plan_heal(cfg: HealConfig, out_dir: str | Path, *, force: bool = False, resume: bool = False) -> HealPlan:
    """Check the inputs of a heal run (raises a :class:`TokkitError` before anything is loaded or written).

    With ``resume`` and a checkpoint beside ``out_dir``, an existing ``out_dir`` is that run's output so far
    (written when ``--max-minutes`` stopped it) and is replaced.
    """
    ck0 = checkpoint_dir(Path(out_dir))
    recover(ck0)  # finish or drop a checkpoint save that was killed (tokkit.atomic's temporaries only)
    check_replaceable(ck0, "dir")  # a file or a folder tokkit did not write there is never resumed from or removed
    partial = resume and ck0.exists()
    out = check_output(out_dir, force=force or partial)
    folder = _model_folder(cfg.model)
    try:
        tok = load_tokenizer(folder)
    except TokkitError as e:
        raise FormatError(f"{folder} is not a model folder with a tokenizer ({e})") from None
    rp = folder / REPORT_FILE
    report = json.loads(rp.read_text(encoding="utf-8")) if rp.is_file() else None
    ids: list[int] | None = None
    if cfg.train is Train.NEW_ROWS:
        built = built_ids(folder)
        if built is None:
            raise VocabMismatchError(f"{folder} has no {REPORT_FILE}, so which rows were built is unknown; heal a folder "
                                     f"written by `tokkit transplant` or `tokkit extend`, or pass --train embeddings")
        if not built:
            raise VocabMismatchError(f"{folder}/{REPORT_FILE} lists no built rows (no token has kind 'new'): nothing was "
                                     f"built, so there is nothing to heal with --train new-rows; use --train embeddings "
                                     f"to train every row")
        ids = sorted(set(built))
    teacher = teacher_tok = None
    if cfg.loss is not Loss.LM:
        name = cfg.teacher or (report or {}).get("config", {}).get("src")
        if not name:
            raise VocabMismatchError(f"--loss {cfg.loss.value} needs a teacher: {folder} has no {REPORT_FILE} naming its "
                                     f"source model; pass --teacher MODEL")
        try:
            teacher = _model_folder(name)
            teacher_tok = load_tokenizer(teacher)
        except TokkitError as e:
            raise FormatError(f"the teacher {name!r} cannot be loaded with its tokenizer ({e}); pass --teacher with "
                              f"an HF model folder that has its tokenizer files") from None
    text = load_text(cfg.sources, heldout=cfg.heldout, heldout_max_bytes=cfg.heldout_max_bytes, seq_bytes=cfg.seq_bytes)
    for p in cfg.eval_texts:  # read now: a missing, non-UTF-8, empty file or a FIFO fails before the training
        read_text(p, what="evaluation text")
    ck = checkpoint_dir(out)
    check_output(ck, force=force, exists_ok=True)  # a side output: never an input, its parent writable
    if ck.exists() and not resume and not force:
        raise OutputExistsError(f"an interrupted run left a checkpoint at {ck}; pass --resume to continue it or "
                                f"--force to start over")
    return HealPlan(cfg, out, folder, tok, report, ids, teacher, teacher_tok, text, resume, force)


def _record(plan: HealPlan, res, trained_rows: int, *, tied: bool) -> dict[str, Any]:  # noqa: D103
    cfg = plan.cfg.model_dump(mode="json")
    cfg["model"], cfg["teacher"] = str(plan.model), None if plan.teacher is None else str(plan.teacher)
    return {"config": cfg, "trained_rows": trained_rows, "head": "tied" if tied else "untied", "steps": res.steps, "stopped_by_budget": res.stopped,
            "resumed_from": res.resumed_from,
            "processes": res.world, "tokens": res.tokens, "chunks": res.chunks, "seconds": round(res.seconds, 1),
            "peak_rss_gb": round(res.peak_rss_gb, 2), "heldout_bits_per_byte": res.heldout, "evals": res.evals,
            "last_step": res.history[-1] if res.history else {}, "history": res.history}


def step_memory(lm, batch_size: int, seq_bytes: int, *, grads: bool) -> float:
    """Rough peak bytes of one forward (+ backward) pass of ``lm`` over ``batch_size`` sequences of ``seq_bytes``
    bytes (at most one token per byte): fp32 logits and softmax, per-layer activations and attention scores."""
    c = lm.config
    n = batch_size * (seq_bytes + 1)
    hidden = int(getattr(c, "hidden_size", 0) or 0)
    layers = int(getattr(c, "num_hidden_layers", 0) or 0)
    inter = int(getattr(c, "intermediate_size", 0) or 4 * hidden)
    heads = int(getattr(c, "num_attention_heads", 0) or 1)
    vocab = int(getattr(c, "vocab_size", 0) or lm.get_input_embeddings().weight.shape[0])
    if not grads:  # no graph kept: the logits and one layer's temporaries
        return 4.0 * (2 * n * vocab + n * (8 * hidden + 3 * inter) + batch_size * heads * (seq_bytes + 1) ** 2)
    acts = n * layers * (8 * hidden + 3 * inter) + batch_size * heads * layers * (seq_bytes + 1) ** 2
    return 4.0 * (3 * n * vocab + acts)


def run_heal(plan: HealPlan, *, progress: bool = True, max_minutes: float | None = None):
    """Train and write ``plan.out_dir``. Returns the :class:`HealResult` (and writes only on rank 0).

    ``max_minutes``: a wall-clock budget from this call's start; the steps stop at a checkpoint once the
    next would not fit, the rows trained so far are written to ``plan.out_dir`` (the record says
    ``stopped_by_budget``) and the checkpoint is kept, so ``plan_heal(..., resume=True)`` continues.
    """
    import time

    import torch

    from tokkit.embedding import EmbeddingTable, ModelEmbeddings, write_model_folder
    from tokkit.transplant.heal.data import Side
    from tokkit.transplant.heal.rows import Student, load_lm
    from tokkit.transplant.heal.trainer import train_rows
    from tokkit.optim import finish_distributed, init_distributed

    t_call = time.perf_counter()
    cfg = plan.cfg
    world, rank, device = init_distributed(cfg.device)
    ck = checkpoint_dir(plan.out_dir)
    if plan.force and not plan.resume and rank == 0 and is_ours(ck):
        shutil.rmtree(ck, ignore_errors=True)
    lm = load_lm(plan.model, device)
    if device.type == "cpu":  # refuse a step that cannot fit before drawing it (--batch-size 100000000 grew forever)
        check_memory(step_memory(lm, cfg.batch_size, cfg.seq_bytes, grads=True), what=f"a heal step with --batch-size "
                     f"{cfg.batch_size} and --seq-bytes {cfg.seq_bytes}", fix="lower --batch-size or --seq-bytes")
    rows = lm.get_input_embeddings().weight.shape[0]
    if len(plan.tok.vocab) > rows:
        raise VocabMismatchError(f"{plan.model}: the tokenizer has {len(plan.tok.vocab)} ids but the model {rows} rows")
    ids = torch.arange(rows) if plan.ids is None else torch.tensor([i for i in plan.ids if i < rows])
    student = Student(lm, ids, norms=cfg.train is Train.EMBEDDINGS_NORMS, body=cfg.train is Train.ALL)
    teacher = teacher_side = None
    if plan.teacher is not None:
        teacher = load_lm(plan.teacher, device)
        if device.type == "cpu":
            check_memory(step_memory(lm, cfg.batch_size, cfg.seq_bytes, grads=True)
                         + step_memory(teacher, cfg.batch_size, cfg.seq_bytes, grads=False),
                         what=f"a heal step (student + teacher) with --batch-size {cfg.batch_size} and --seq-bytes "
                         f"{cfg.seq_bytes}", fix="lower --batch-size or --seq-bytes")
        teacher_side = Side.of(plan.teacher_tok)  # type: ignore[arg-type]
    heldout = {"heldout": plan.text.heldout} | {Path(p).stem: read_text(p, what="evaluation text") for p in cfg.eval_texts}
    res = train_rows(cfg, student, Side.of(plan.tok), teacher=teacher, teacher_side=teacher_side,
                     train_text=plan.text.train, heldout=heldout, out_dir=plan.out_dir, resume=plan.resume,
                     progress=progress, device=device, rank=rank, world=world, max_minutes=max_minutes,
                     clock_start=t_call)
    if rank == 0:
        e_in, e_out = student.merged()
        v = plan.tok.vocab
        emb = ModelEmbeddings(EmbeddingTable(v, e_in), None if e_out is None else EmbeddingTable(v, e_out))
        report = dict(plan.report or {})
        report["heals"] = list(report.get("heals", [])) + [_record(plan, res, len(ids), tied=student.tied)]
        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
        write_model_folder(plan.model, plan.out_dir, emb, hf_tokenizer=plan.tok.to_hf(), vocab=v, force=plan.force or plan.resume,
                           chat_template=plan.tok.chat_template, extra_files={REPORT_FILE: text}, tensors=student.trained_lm_tensors())
        if not res.stopped and is_ours(ck):  # a budget stop keeps it: --resume continues from there
            shutil.rmtree(ck, ignore_errors=True)
    finish_distributed(world)
    return res
