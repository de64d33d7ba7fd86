"""Options shared by ``tokkit extend --model`` and ``tokkit transplant``: how new rows are learnt.

Every option defaults to None and is overlaid on :class:`tokkit.transplant.config.TransplantConfig`,
so the defaults (and their help text) live only there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import click

__all__ = ["row_options", "ROW_FIELDS", "row_flags", "read_capped"]

#: TransplantConfig fields set by :func:`row_options` (flag = ``--`` + the field with dashes).
ROW_FIELDS = ("distill_from", "snippets", "snippet_tokens", "distill_layer", "distill_epochs", "distill_lr",
              "checkpoint_every", "output_rows", "fit_bytes", "fit_keep_weight")

_CHOICES = {"distill_from": ["fvt", "heuristic", "omp", "hypernet", "mean"], "output_rows": ["fit", "tie", "init", "mean"]}
_TYPES: dict[str, Any] = {"snippets": int, "snippet_tokens": int, "distill_layer": int, "distill_epochs": int,
                          "distill_lr": float, "checkpoint_every": int, "fit_bytes": int,
                          "fit_keep_weight": float}


#: Help text of each option. ``tokkit --help`` must not import torch, and TransplantConfig's package does,
#: so the defaults are written here; tests/test_distill.py checks them against TransplantConfig.
HELP = {
    "distill_from": "distill: the method whose rows distillation starts from [default: fvt for extend, heuristic for transplant].",
    "snippets": "distill: snippets (occurrences) wanted per new token [default: 8].",
    "snippet_tokens": "distill: tokens per snippet, about [default: 32].",
    "distill_layer": "distill: match the hidden states after this many layers; -1: all, the paper's choice and the "
                     "best on a GPU [default: a quarter of the layers, for a CPU budget].",
    "distill_epochs": "distill: passes over the snippets [default: 2].",
    "distill_lr": "distill: Adam step size, as a fraction of the RMS of the embedding's rows [default: 0.05].",
    "checkpoint_every": "distill: steps between checkpoints beside OUT, for --resume [default: 50].",
    "output_rows": "Output rows of new tokens: fit (on the frozen model's hidden states; unties a tied head), tie, "
                   "init (the method's own), mean [default: fit with distill, else the method's own].",
    "fit_bytes": "--output-rows fit: text read per language, in bytes [default: 200000].",
    "fit_keep_weight": "--output-rows fit: weight of a position of the --keep-text in the fit, relative to one of "
                       "SOURCE; higher keeps the new tokens quieter on protected text [default: 4.0].",
}


def row_options(fn: Callable) -> Callable:
    """Add the distill / output-row options (each ``default=None``) to a click command."""
    for field in reversed(ROW_FIELDS):
        flag = "--" + field.replace("_", "-")
        if field in _CHOICES:
            kind: Any = click.Choice(_CHOICES[field], case_sensitive=False)
        else:
            kind = _TYPES[field]
        fn = click.option(flag, field, type=kind, default=None, help=HELP[field])(fn)
    return fn


def row_flags(values: dict[str, Any]) -> dict[str, Any]:
    """The row options the user gave (None dropped), lower-cased choices."""
    return {k: (v.lower() if isinstance(v, str) else v) for k, v in values.items() if k in ROW_FIELDS and v is not None}


def read_capped(sources: Iterable[str | Path], max_bytes: int, *, what: str = "corpus source") -> list[str]:
    """Documents of ``sources`` (files, folders, globs, ``hf:NAME``) until ``max_bytes`` UTF-8 bytes are read;
    ``what`` names them in errors (the option they came from)."""
    from tokkit.train.corpus import parse_sources, source_documents

    out, size = [], 0
    for s in parse_sources(list(sources), what=what):
        for doc in source_documents(s):
            n = len(doc.encode("utf-8"))
            if size + n > max_bytes:
                cut = doc.encode("utf-8")[: max_bytes - size].decode("utf-8", errors="ignore")
                if cut.strip():
                    out.append(cut)
                return out
            out.append(doc)
            size += n
    return out


def rows_summary(report: dict[str, Any]) -> list[str]:
    """Lines for the distillation and output-row facts of a transplant/extend report."""
    out = []
    d = report.get("method_notes", {}).get("distill")
    if d:
        out.append(f"distill: {d['tokens_with_snippets']:,} tokens from {d['snippets']:,} snippets "
                   f"({d['tokens_without']:,} without any keep their start rows), layer {d['layer']}, "
                   f"{d['steps']:,} steps, {d['student_tokens']:,} + {d['teacher_tokens']:,} tokens read, "
                   f"{d['seconds']:.0f} s; loss by epoch {', '.join(f'{x:.4f}' for x in d['epoch_loss'])}")
    o = report.get("output_rows")
    if o and (o.get("fit") or o.get("untied") or o["mode"] == "mean"):  # the method's own / tied rows: nothing to say
        line = f"output rows: {o['mode']}" + (" (head untied: old output rows copied bit-exactly)" if o.get("untied") else "")
        f = o.get("fit")
        if f:
            line += (f"; fitted on {f['positions']:,} positions ({f['new_positions']:,} of new tokens), "
                     f"held-out loss {f['val_before']:.4f} -> {f['val_after']:.4f}, {f['seconds']:.0f} s")
        out.append(line)
    return out
