"""Optimizer state as flat named tensors, so a checkpoint stores it in safetensors (never pickle).

An AdamW state is, per parameter, ``exp_avg``, ``exp_avg_sq`` and ``step``; :func:`optimizer_tensors`
names them ``<state key>.<parameter index>``, the index counting the parameters of every param group
in order (the order ``opt.state_dict()`` numbers them). :func:`load_optimizer_state` puts them back on
each parameter's device; it also reads the older image-checkpoint layout ``<index>.<state key>``.
Together with the model, the step number and the seeded data order this is the whole state of a run,
so a resumed run ends bitwise equal to an uninterrupted one (CPU).
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["optimizer_tensors", "optimizer_problem", "load_optimizer_state", "save_optimizer", "load_optimizer"]

#: File name of the optimizer state inside every tokkit checkpoint folder.
OPTIMIZER_FILE = "optimizer.safetensors"


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in opt.param_groups for p in g["params"]]


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as CPU tensors named ``<state key>.<parameter index>``."""
    out = {}
    for i, p in enumerate(_params(opt)):
        for k, v in opt.state.get(p, {}).items():
            out[f"{k}.{i}"] = (v if torch.is_tensor(v) else torch.tensor(float(v))).detach().cpu().contiguous()
    return out


def _entries(tensors: dict[str, torch.Tensor]) -> list[tuple[str, str, str, torch.Tensor]]:
    out = []
    for name, v in tensors.items():
        head, _, tail = name.partition(".")
        key, idx = (tail, head) if head.isdigit() else (name.rsplit(".", 1)[0], name.rsplit(".", 1)[-1])
        out.append((name, key, idx, v))
    return out


def optimizer_problem(tensors: dict[str, torch.Tensor], params: list[torch.Tensor]) -> str | None:
    """What is wrong with optimizer state for ``params``, or None: an entry that names no parameter, a moment
    whose shape is not its parameter's or that is no float tensor, a ``step`` that is not one number.
    (Without this a tampered moment loads and AdamW fails later with a shape RuntimeError.)"""
    for name, key, idx, v in _entries(tensors):
        if not idx.isdigit() or int(idx) >= len(params):
            return f"optimizer.safetensors: {name!r} names no parameter of this run ({len(params)} parameters)"
        if key == "step":
            if v.numel() != 1:
                return f"optimizer.safetensors: {name} holds {v.numel()} values, expected one step count"
            continue
        want = tuple(params[int(idx)].shape)
        if tuple(v.shape) != want or not v.is_floating_point():
            return f"optimizer.safetensors: {name} is {v.dtype} {tuple(v.shape)}, expected a float tensor of shape {want}"
    return None


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Put the state written by :func:`optimizer_tensors` back (moments on each parameter's device;
    ``step`` stays a CPU tensor, as torch's Adam keeps it), after :func:`optimizer_problem` found nothing
    wrong (else one :class:`~tokkit.errors.FormatError`; nothing is loaded)."""
    from tokkit.errors import FormatError

    params = _params(opt)
    problem = optimizer_problem(tensors, params)
    if problem is not None:
        raise FormatError(f"the checkpoint's optimizer state is damaged or was changed ({problem}); resume from an "
                          "intact checkpoint, or pass --force to start over")
    for _, key, idx, v in _entries(tensors):
        p = params[int(idx)]
        opt.state.setdefault(p, {})[key] = v.clone() if key == "step" else v.to(p.device)


def save_optimizer(opt: torch.optim.Optimizer, folder: Path) -> Path:
    """Write ``folder/optimizer.safetensors`` (the folder is a checkpoint being built atomically)."""
    from safetensors.torch import save_file

    path = Path(folder) / OPTIMIZER_FILE
    save_file(optimizer_tensors(opt), str(path))
    return path


def load_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    """Read ``folder/optimizer.safetensors`` into ``opt``."""
    from safetensors.torch import load_file

    load_optimizer_state(opt, load_file(str(Path(folder) / OPTIMIZER_FILE)))
