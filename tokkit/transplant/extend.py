"""Give a model the rows of its extended tokenizer: old rows copied by id, new rows from a transplant method.

``tokkit extend --model`` learns merges on new text (:func:`tokkit.train.extend_tokenizer.extend_tokenizer`)
and then calls :func:`run_extend`. The extended tokenizer keeps every old id, so unlike a transplant
there is nothing to align: row ``i < old size`` of the input and output matrices is the model's row
``i`` (copied bit-exactly, in the stored dtype), and only the appended ids are built, through the same
:class:`~tokkit.transplant.base.EmbeddingInit` interface as ``tokkit transplant`` (default FVT: the
mean of the rows of the token's old segmentation, Gee et al. 2022). The output folder holds the model,
the extended tokenizer (and its ``.tiktoken`` twin for byte-level families) and
``transplant_report.json`` with an ``extension`` section, so ``tokkit eval-lm`` splits the leak of the
new output rows and ``tokkit heal`` knows the rows to train and the teacher (the original model).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, Sequence

from tokkit.atomic import check_output
from tokkit.config import peak_rss_mb
from tokkit.embedding import write_model_folder
from tokkit.embedding.write import check_side_files
from tokkit.errors import VocabMismatchError
from tokkit.names import resolve_model
from tokkit.tokenizer import load_tokenizer
from tokkit.transplant.align import Alignment, Match
from tokkit.transplant.config import Method, TransplantConfig
from tokkit.transplant.pipeline import (Plan, TransplantResult, drop_checkpoint, plan_transplant, transplant_embeddings,
                                        use_checkpoint)
from tokkit.transplant.report import REPORT_FILE

__all__ = ["run_extend", "identity_alignment", "ExtendedTokenizer"]

log = logging.getLogger(__name__)


class ExtendedTokenizer(Protocol):
    """What the model part needs of :class:`tokkit.train.extend_tokenizer.Extension` (no sideways import)."""

    vocab: Any  # TextVocab: old tokens and specials, then the new tokens
    old: Any  # the tokenizer that was extended (``vocab``, ``name``, ``chat_template``)
    report: dict[str, Any]

    @property
    def new_ids(self) -> list[int]: ...

    def hf(self) -> Any: ...


def identity_alignment(al: Alignment, old_size: int) -> Alignment:
    """``al`` with every id below ``old_size`` copied from the same source id (specials too); the rest new."""
    special = al.dst.special_ids
    n = len(al.dst)
    sid = tuple(i if i < old_size else -1 for i in range(n))
    kind = tuple((Match.SPECIAL_TEXT if i in special else Match.COPIED) if i < old_size else Match.NEW for i in range(n))
    return Alignment(al.src, al.dst, sid, kind)


def run_extend(model: str | Path, ext: ExtendedTokenizer, out_dir: str | Path, *, method: Method | None = None,
               donor: str | None = None, hypernet: str | None = None, device: str | None = None, heldout: int = 0,
               pad_to: int = 1, seed: int | None = None, force: bool = False,
               extra_files: dict[str, str] | None = None, config: TransplantConfig | None = None,
               texts: Sequence[str] = (), keep_texts: Sequence[str] = (), resume: bool = False) -> TransplantResult:
    """Write ``out_dir``: the model at ``model`` with the extended tokenizer ``ext`` and rows for its new ids.

    ``config`` carries every row option (``--method``, the distill knobs, ``--output-rows``); the other
    keywords override it. ``texts`` is the text the merges were learnt on (where the new tokens occur:
    distillation's snippets and the output-row fit read it) and ``keep_texts`` the protected text of the
    old language (the output-row fit learns from it where the new tokens must stay quiet).
    ``extra_files`` (name -> text) go into the folder too, e.g. the tiktoken twin of the tokenizer
    (:func:`tokkit.train.extend_tokenizer.tiktoken_files`).

    Raises:
        VocabMismatchError: ``ext`` was not learnt from this model's own tokenizer, or the model's
            embedding has fewer rows than its tokenizer has ids.
        OutputExistsError: ``out_dir`` exists and not ``force``.
    """
    t0 = time.perf_counter()
    check_output(out_dir, force=force)
    src_folder = resolve_model(model)
    check_side_files(src_folder)  # a device or FIFO side file: refused before the row work
    own = load_tokenizer(src_folder).vocab
    if own.tokens != ext.old.vocab.tokens:
        raise VocabMismatchError(f"the extension was learnt from {ext.old.name} ({len(ext.old.vocab)} ids), but {model} uses "
                                 f"another tokenizer ({len(own)} ids); extend the model's own tokenizer (--model alone)")
    with tempfile.TemporaryDirectory(prefix=".tokkit-extend-") as tmp:
        tok_path = Path(tmp) / "tokenizer.json"
        ext.hf().save(str(tok_path))
        given = {"method": method, "donor": donor, "hypernet": hypernet, "device": device, "seed": seed}
        fields = {**(config.model_dump(exclude_unset=True) if config is not None else {}),
                  **{k: v for k, v in given.items() if v is not None}}
        fields |= {"src": str(src_folder), "dst": str(tok_path), "heldout": heldout, "pad_to": pad_to}
        fields.setdefault("method", Method.FVT)
        if fields["method"] in (Method.DISTILL, Method.DISTILL.value) and fields.get("distill_from") is None:
            fields["distill_from"] = Method.FVT  # an extension starts from its pieces' mean (the paper's baseline)
        cfg = TransplantConfig.model_validate(fields)
        plan: Plan = plan_transplant(cfg, texts=texts, keep_texts=keep_texts)
        ck = use_checkpoint(plan, out_dir, force=force, resume=resume)
        plan.ctx = replace(plan.ctx, alignment=identity_alignment(plan.alignment, len(ext.old.vocab)))
        emb, report = transplant_embeddings(plan)
        files = dict(extra_files or {})
        report["config"]["dst"] = f"extended:{ext.old.name}"
        report["extension"] = {**ext.report, "method": plan.method.name,
                               "seconds_total": round(time.perf_counter() - t0, 2), "peak_memory_mb": round(peak_rss_mb())}
        files[REPORT_FILE] = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
        out = write_model_folder(src_folder, out_dir, emb, hf_tokenizer=plan.dst_tok.to_hf(), vocab=ext.vocab,
                                 force=force, chat_template=ext.old.chat_template or load_tokenizer(src_folder).chat_template,
                                 extra_files=files)
    drop_checkpoint(ck)
    return TransplantResult(out, report)
