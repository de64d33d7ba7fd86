"""Devices and ``torchrun``: one place that picks the device, joins the process group and averages gradients.

A training command started under ``torchrun --nproc-per-node N`` sees ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK`` in its environment; :func:`init_distributed` joins the group (NCCL on CUDA, else gloo)
and gives each rank its GPU. Every rank draws its own seeded batches; gradients are averaged
(:func:`average_gradients`, or DDP for a module); rank 0 alone writes checkpoints and outputs.
torch.distributed does the work: no scheduler of our own.
"""

from __future__ import annotations

import os
from typing import Iterable

import torch

__all__ = ["pick_device", "init_distributed", "average_gradients", "sum_over_ranks", "finish_distributed"]


def pick_device(name: str | torch.device | None = "auto", *, option: str = "--device") -> torch.device:
    """``auto`` / None -> CUDA when present, else CPU; anything else as given (``cpu``, ``cuda:1``), checked:
    an unknown name, or a device this torch build or machine does not have (``cuda`` on a CPU-only torch,
    ``cuda:7`` with two GPUs, ``mps`` off macOS), is one :class:`~tokkit.errors.OptionError` naming
    ``option`` and the fix, instead of torch's assertion deep inside the first ``.to()``."""
    from tokkit.errors import OptionError

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(f"{option} {name!r}: expected auto, cpu, cuda or cuda:N; pass one of those") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise OptionError(f"{option} {name}: {why} (torch {torch.__version__}); pass --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OptionError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1}; pass one of those, or auto")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise OptionError(f"{option} {name}: this torch has no usable MPS device; pass --device cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise OptionError(f"{option} {name}: tokkit runs on cpu, cuda or mps, found {dev.type}; pass one of those, or auto")
    return dev


def init_distributed(name: str | None = "auto") -> tuple[int, int, torch.device]:
    """``(world size, rank, device)``: under ``torchrun`` joins the process group (NCCL on CUDA, else
    gloo) and binds this rank's GPU; otherwise ``(1, 0, pick_device(name))``."""
    world, rank, device = int(os.environ.get("WORLD_SIZE", "1")), 0, pick_device(name)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    return world, rank, device


def average_gradients(params: Iterable[torch.nn.Parameter], world: int) -> None:
    """Average each parameter's ``.grad`` over the ranks (a no-op for one process)."""
    if world <= 1:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def sum_over_ranks(values: list[float], world: int) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (counts of tokens, a non-finite flag ...)."""
    if world <= 1:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def finish_distributed(world: int) -> None:
    """Wait for every rank, then leave the process group (a no-op for one process)."""
    if world <= 1:
        return
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
