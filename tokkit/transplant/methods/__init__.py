"""Reconstruction methods behind :class:`tokkit.transplant.base.EmbeddingInit`; ``build_method`` maps the config."""

from __future__ import annotations

from tokkit.errors import MissingFileError, TokkitError
from tokkit.transplant.base import EmbeddingInit
from tokkit.transplant.config import Method, TransplantConfig
from tokkit.transplant.methods.heuristic import HeuristicInit
from tokkit.transplant.methods.omp import OMPInit
from tokkit.transplant.methods.simple import FVTInit, MeanInit, ZeroInit

__all__ = ["build_method", "OMPInit", "HeuristicInit", "FVTInit", "MeanInit", "ZeroInit"]


def build_method(cfg: TransplantConfig) -> EmbeddingInit:
    """The method object for ``cfg``."""
    m = cfg.resolved_method()
    if m is Method.DISTILL:
        from tokkit.transplant.methods.distill import DistillInit, DistillSettings

        start = cfg.distill_from or Method.HEURISTIC
        if start is Method.DISTILL:
            raise TokkitError("--distill-from distill: give the method distillation starts from (fvt, heuristic, omp, ...)")
        settings = DistillSettings(per_token=cfg.snippets, window_tokens=cfg.snippet_tokens, layer=cfg.distill_layer,
                                   epochs=cfg.distill_epochs, lr=cfg.distill_lr,
                                   checkpoint_every=cfg.checkpoint_every)
        return DistillInit(start=build_method(cfg.model_copy(update={"method": start})), settings=settings)
    if m is Method.OMP:
        return OMPInit(k=cfg.k, per_step=cfg.per_step, candidates=cfg.candidates)
    if m is Method.HEURISTIC:
        return HeuristicInit(global_weight=cfg.global_weight, temperature=cfg.temperature, top_k=cfg.top_k,
                             threshold=cfg.threshold, aux_model=cfg.aux_model)
    if m is Method.FVT:
        return FVTInit()
    if m is Method.MEAN:
        return MeanInit()
    if m is Method.ZERO:
        return ZeroInit()
    if cfg.hypernet is None:
        raise MissingFileError("--method hypernet needs --hypernet CKPT, a checkpoint folder written by "
                               "`tokkit hypernet train --base MODEL --corpus TEXT -o CKPT`")
    from tokkit.transplant.methods.hypernet import HypernetInit

    return HypernetInit(checkpoint=cfg.hypernet)
