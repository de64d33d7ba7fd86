"""What every tokkit training loop shares: schedule, optimizer-state checkpoints, devices and ``torchrun``,
and the step loop (estimate, ``--max-minutes`` budget, stop on a non-finite loss).

Used by ``tokkit heal`` (:mod:`tokkit.transplant.heal`), ``tokkit hypernet train``, ``tokkit image
train`` / ``image prior train`` and Token Distillation. A core package: it imports only torch and
tokkit's core modules, so the domain packages (which may not import each other) can all use it.
``import tokkit`` does not load it (it loads torch).
"""

from tokkit.optim.distributed import average_gradients as average_gradients
from tokkit.optim.distributed import finish_distributed as finish_distributed
from tokkit.optim.distributed import init_distributed as init_distributed
from tokkit.optim.distributed import pick_device as pick_device
from tokkit.optim.distributed import sum_over_ranks as sum_over_ranks
from tokkit.optim.loop import DivergedError as DivergedError
from tokkit.optim.loop import StepLoop as StepLoop
from tokkit.optim.loop import format_duration as format_duration
from tokkit.optim.schedule import default_warmup as default_warmup
from tokkit.optim.schedule import warmup_cosine as warmup_cosine
from tokkit.optim.state import load_optimizer as load_optimizer
from tokkit.optim.state import load_optimizer_state as load_optimizer_state
from tokkit.optim.state import optimizer_tensors as optimizer_tensors
from tokkit.optim.state import save_optimizer as save_optimizer

__all__ = ["warmup_cosine", "default_warmup", "optimizer_tensors", "load_optimizer_state", "save_optimizer",
           "load_optimizer", "pick_device", "init_distributed", "average_gradients", "sum_over_ranks",
           "finish_distributed", "StepLoop", "DivergedError", "format_duration"]
