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

__all__ = ["optimizer_tensors", "load_optimizer_state", "save_optimizer", "load_optimizer"]

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


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Put the state written by :func:`optimizer_tensors` back (moments on each parameter's device;
    ``step`` stays a CPU tensor, as torch's Adam keeps it)."""
    params = _params(opt)
    for name, v in tensors.items():
        head, _, tail = name.partition(".")
        key, i = (tail, int(head)) if head.isdigit() else (name.rsplit(".", 1)[0], int(name.rsplit(".", 1)[1]))
        p = params[i]
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
