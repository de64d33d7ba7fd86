"""Heal checkpoints: one folder beside the output, written atomically, tied to one run.

Layout of ``OUT.heal-checkpoint/``::

    state.json             format tag, run key (what makes it the same run), step, history
    trainable.safetensors  the trainable tensors (rows, norms) by name
    optimizer.safetensors  AdamW moments (:mod:`tokkit.optim.state`, as every tokkit checkpoint stores them)

Each save rebuilds the folder beside it and renames it into place (:func:`tokkit.atomic.atomic_dir`),
so a run killed at any moment (SIGKILL included) leaves the previous checkpoint whole. The folder is
removed once the healed model folder is written. The data of step ``s`` depends only on
``(seed, s, rank)``, so trainable tensors + optimizer + step are the whole state of a run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokkit.atomic import atomic_dir
from tokkit.errors import FormatError, OutputExistsError
from tokkit.optim.state import load_optimizer_state, save_optimizer

__all__ = ["FORMAT", "checkpoint_dir", "run_key", "HealCheckpoint", "save_state", "load_state", "check_progress",
           "check_optimizer_shapes"]

FORMAT = "tokkit-heal-checkpoint/1"


def checkpoint_dir(out_dir: str | Path) -> Path:
    """Where the checkpoints of a run writing ``out_dir`` live."""
    p = Path(out_dir)
    return p.with_name(p.name + ".heal-checkpoint")


def run_key(settings: dict[str, Any], weights: torch.Tensor) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint: its settings and the model's starting rows.

    ``weights`` is the student's ``(R, D)`` input matrix before training; a sample of its rows is hashed.
    """
    rows = weights[:: max(1, weights.shape[0] // 1024)].detach().float().cpu().contiguous()
    return {"settings": settings, "rows": list(weights.shape),
            "rows_sha256": hashlib.sha256(rows.numpy().tobytes()).hexdigest()}


@dataclass
class HealCheckpoint:
    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def save_state(path: Path, *, tensors: dict[str, torch.Tensor], opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """Replace the checkpoint at ``path`` atomically."""
    from safetensors.torch import save_file

    with atomic_dir(path, force=True) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "trainable.safetensors"))
        save_optimizer(opt, tmp)
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=1) + "\n", encoding="utf-8")


def load_state(path: Path, key: dict[str, Any]) -> HealCheckpoint:
    """Read the checkpoint at ``path`` and check it belongs to the run ``key`` (:func:`run_key`)."""
    from safetensors.torch import load_file

    try:
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(meta.get("format"))
        tensors = load_file(str(path / "trainable.safetensors"))
        opt = load_file(str(path / "optimizer.safetensors"))
    except (OSError, ValueError) as e:
        raise FormatError(f"{path} is not a readable tokkit heal checkpoint ({e}); pass --force to start over") from None
    if meta.get("key") != key:
        want, have = meta.get("key", {}), key
        diff = sorted(k for k in set(want.get("settings", {})) | set(have["settings"])
                      if want.get("settings", {}).get(k) != have["settings"].get(k))
        if want.get("rows_sha256") != have["rows_sha256"] or want.get("rows") != have["rows"]:
            diff.append("model weights")
        raise OutputExistsError(f"the checkpoint {path} is from another run (differs in {diff}); pass --force to "
                                f"start over, or resume with the same settings")
    return HealCheckpoint(path, meta, tensors, opt)


def _damaged(path: Path, what: str) -> FormatError:
    return FormatError(f"the checkpoint in {path} is damaged or was changed ({what}); resume from an intact "
                       "checkpoint, or pass --force to start over")


def check_progress(ck: HealCheckpoint, *, steps: int) -> None:
    """Refuse a ``state.json`` whose ``step`` is not an integer in ``0..steps`` (``--steps`` of this run) or
    whose ``history`` / ``evals`` are not lists: a tampered step would train 100005 steps or none."""
    step = ck.meta.get("step")
    if type(step) is not int or step < 0:
        raise _damaged(ck.path, f"state.json: step is {step!r}, expected a non-negative integer")
    if step > steps:
        raise _damaged(ck.path, f"state.json: step {step} is past --steps {steps}; resume with --steps {step} or more "
                                "if the run really got that far")
    for k in ("history", "evals"):
        if not isinstance(ck.meta.get(k), list):
            raise _damaged(ck.path, f"state.json: {k} is {type(ck.meta.get(k)).__name__}, expected a list")


def check_optimizer_shapes(tensors: dict[str, torch.Tensor], params: list[torch.Tensor], path: Path) -> None:
    """Refuse optimizer moments that fit no parameter of this run (:func:`tokkit.optim.state.optimizer_problem`)."""
    from tokkit.optim.state import optimizer_problem

    problem = optimizer_problem(tensors, params)
    if problem is not None:
        raise _damaged(path, problem)


def restore(ck: HealCheckpoint, params: dict[str, torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    """Copy the checkpoint's tensors into ``params`` and its moments into ``opt`` (shapes checked first)."""
    for name, p in params.items():
        t = ck.tensors.get(name)
        if t is None or tuple(t.shape) != tuple(p.shape):
            raise _damaged(ck.path, f"trainable.safetensors: {name} is "
                                    f"{'missing' if t is None else tuple(t.shape)}, expected shape {tuple(p.shape)}")
    check_optimizer_shapes(ck.optimizer, [q for g in opt.param_groups for q in g["params"]], ck.path)
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(ck.tensors[name].to(p.device))
    load_optimizer_state(opt, ck.optimizer)
