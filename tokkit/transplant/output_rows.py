"""Output rows for new tokens: which rows the head gets, and when a tied model is untied.

A new token's **output** row decides how much probability it takes at every position, including the
positions of text where it never occurs: on an extended model whose old text keeps its ids, the whole
change in that text's loss is this *leak* (``log Z_all / Z_old`` per position, docs/extend.md). The
choices (``--output-rows``):

* ``tie`` — one matrix, the output row is the new input row (what a tied model always had);
* ``init`` — the start method's output rows (FVT: the mean of the pieces' output rows);
* ``mean`` — the mean ordinary output row: no leak, but the new token is hardly ever predicted;
* ``fit`` — rows fitted on the frozen model's final hidden states (:mod:`tokkit.transplant.output_fit`).

Any choice other than ``tie`` on a tied model writes an untied head: the output matrix starts as a copy
of the input matrix (every old row bit-for-bit) and only the new rows differ; ``config.json`` gets
``tie_word_embeddings: false``. The default is ``fit`` for ``--method distill`` (the distilled input
rows are made for reading, not for predicting) and the method's own rows otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from tokkit.errors import TokkitError
from tokkit.transplant.config import Method, OutputRows, TransplantConfig

if TYPE_CHECKING:
    from tokkit.transplant.base import InitContext, InitResult

__all__ = ["resolve_output_rows", "check_output_rows", "output_rows_for"]


def resolve_output_rows(cfg: TransplantConfig, tied: bool) -> OutputRows:
    """The output-row choice for ``cfg`` (its default depends on the method and on the base's head)."""
    if cfg.output_rows is not None:
        return cfg.output_rows
    if cfg.resolved_method() is Method.DISTILL:
        return OutputRows.FIT
    return OutputRows.TIE if tied else OutputRows.INIT


def check_output_rows(cfg: TransplantConfig, tied: bool, ctx: "InitContext") -> None:
    """Refuse, before any work, a choice the base model or the inputs cannot serve."""
    mode = resolve_output_rows(cfg, tied)
    if mode is OutputRows.TIE and not tied:
        raise TokkitError("--output-rows tie needs a model with tied embeddings; this model has its own output "
                          "matrix: use --output-rows init, mean or fit")
    if mode is OutputRows.FIT and not (ctx.texts or ctx.keep_texts):
        raise TokkitError("--output-rows fit needs text to fit on: the SOURCE files of `tokkit extend` (and "
                          "--keep-text), or --corpus for `tokkit transplant`")


def _mean_output(ctx: "InitContext") -> torch.Tensor:
    table = ctx.base_output() if ctx.base_output() is not None else ctx.base_input()
    ids = torch.tensor(ctx.ordinary_source_ids(), device=table.device)
    return table[ids].mean(0)


def output_rows_for(cfg: TransplantConfig, ctx: "InitContext", new_in: torch.Tensor, new_out: torch.Tensor | None,
                    new_ids: Sequence[int], res: "InitResult") -> tuple[torch.Tensor | None, dict[str, Any]]:
    """The output rows ``(K, D)`` of ``new_ids`` (None: keep the head tied) and the report's note.

    ``new_in (R, D)`` is the finished input matrix; ``new_out (R, D)`` the output matrix with old rows
    in place (None for a tied base).
    """
    tied = new_out is None
    mode = resolve_output_rows(cfg, tied)
    start = res.output if res.output is not None else res.input  # the method's own output rows
    note: dict[str, Any] = {"mode": mode.value, "untied": False}
    if mode is OutputRows.TIE:
        if not tied:
            raise TokkitError("--output-rows tie needs a model with tied embeddings")
        return None, note
    if tied and mode is OutputRows.INIT and torch.equal(start, res.input):
        return None, note  # the method's output rows are its input rows: nothing to untie
    note["untied"] = tied
    if mode is OutputRows.INIT:
        return start, note
    if mode is OutputRows.MEAN:
        return _mean_output(ctx).expand(len(new_ids), -1).clone(), note
    from tokkit.transplant.output_fit import FitSettings, fit_output_rows

    old_out = new_in if tied else new_out
    rows, stats = fit_output_rows(ctx, input_matrix=new_in, output_matrix=old_out, new_ids=new_ids, start=start,
                                  settings=FitSettings(fit_bytes=cfg.fit_bytes, keep_weight=cfg.fit_keep_weight))
    note["fit"] = stats
    return rows, note
