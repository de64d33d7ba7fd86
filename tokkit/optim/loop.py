"""The step loop of every tokkit training command: progress bar, an up-front time estimate, a
wall-clock budget that stops at a checkpoint, and a stop on a non-finite loss.

Used as::

    loop = StepLoop("heal", start=start, steps=cfg.steps, checkpoint_every=cfg.checkpoint_every,
                    max_minutes=max_minutes, fix="lower --lr")
    for step in loop:
        loss = ...
        loop.check(loss)                    # nan/inf: DivergedError before anything is applied
        loss.backward(); opt.step()
        loop.show(loss=...)                 # the bar's postfix
        if loop.checkpoint_due(step):       # every N steps, at the end, and where the budget stops
            save(...)
    loop.close()                            # loop.stopped: True when the budget ended the run early

**Estimate.** Once the first steps are timed (3 steps, or 2 when they took over 10 s: the first step
carries one-off costs and is left out when there are others) one line goes to stderr with the
progress bar: ``heal: 200 steps x ~23 s/step ≈ 1 h 17 min on this machine (2 threads)``, plus, with a
budget, the step it will stop near. **Budget** (``max_minutes``): counted from ``clock_start`` (the
start of the run, so model loading counts); after each step the loop stops when one more step and a
checkpoint would not fit, and :meth:`checkpoint_due` says so that step is checkpointed; ``--resume``
continues from it. Under ``torchrun`` the ranks agree (one tiny ``all_reduce``) on both the budget stop
and a non-finite loss, so no rank waits for another that has left.
"""

from __future__ import annotations

import logging
import math
import statistics
import sys
import time
from typing import Any, Iterator

import torch

from tokkit.errors import TokkitError
from tokkit.optim.distributed import sum_over_ranks

__all__ = ["StepLoop", "DivergedError", "format_duration"]

log = logging.getLogger(__name__)

#: Steps timed before the estimate is printed (fewer when the first ones are slow).
PROBE_STEPS = 3
PROBE_SECONDS = 10.0
#: Work estimated to take less than this is not announced (it is over before the line would help).
ESTIMATE_MIN_SECONDS = 30.0


#: Steps at least this long hand the memory they freed back to the OS (glibc ``malloc_trim``): a step's
#: activations are freed into the heap, and without it later steps grow the resident size with holes.
TRIM_AFTER_SECONDS = 1.0


def _trim_heap() -> None:
    """``malloc_trim(0)`` where glibc provides it (a few ms); a no-op elsewhere."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


class DivergedError(TokkitError, ArithmeticError):
    """The training loss became nan or inf (the step was not applied)."""


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``1 h 17 min``, ``2 d 3 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    h, m = divmod(int(round(minutes)), 60)
    if h < 48:
        return f"{h} h {m} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


class StepLoop:
    """Iterates the 0-based steps ``start .. steps-1`` of a run (see the module docstring).

    Args:
        desc: the progress bar's label and the estimate line's prefix (``"heal"``).
        start: first step (a resumed run's checkpoint step).
        steps: steps of the whole run (the schedule's length).
        checkpoint_every: steps between checkpoints.
        max_minutes: wall-clock budget in minutes from ``clock_start`` (None: no budget).
        clock_start: ``time.perf_counter()`` at the start of the run (default: now).
        fix: what to tell the user when the loss diverges (``"lower --lr"``).
        progress: show the bar (and print the estimate with it; else the estimate is logged).
        rank, world: this process under ``torchrun`` (only rank 0 shows anything).
        unit: the bar's unit.
        stop_at: end this call after this step number (checkpointed), as a budget stop does; a test hook.
    """

    def __init__(self, desc: str, *, start: int, steps: int, checkpoint_every: int, max_minutes: float | None = None,
                 clock_start: float | None = None, fix: str = "lower the learning rate", progress: bool = True,
                 rank: int = 0, world: int = 1, unit: str = "step", stop_at: int | None = None) -> None:
        from tqdm.auto import tqdm

        if max_minutes is not None and not max_minutes > 0:
            raise TokkitError(f"--max-minutes must be > 0, found {max_minutes}; pass the budget in minutes (e.g. 10)")
        self.desc, self.start, self.steps, self.every = desc, start, steps, checkpoint_every
        self.budget = None if max_minutes is None else 60.0 * max_minutes
        self.max_minutes, self.fix, self.rank, self.world = max_minutes, fix, rank, world
        self.t0 = time.perf_counter() if clock_start is None else clock_start
        self.progress = progress and rank == 0
        # disable=None: a bar only on a terminal (in a log or a pipe it is noise; the estimate line still comes)
        self.bar = tqdm(total=steps, initial=start, desc=desc, disable=None if self.progress else True, unit=unit)
        self.durations: list[float] = []  # seconds of each step of this call, checkpoints and evals included
        self.save_seconds = 0.0  # longest checkpoint write seen
        self.stopped = False  # True when the budget ended the run before `steps`
        self.end = start  # steps done (the next step to run)
        self.last_checkpoint = start
        self.estimate: str | None = None
        self.stop_at = steps if stop_at is None else min(steps, stop_at)
        self._step_t: float | None = None
        self._save_t: float | None = None

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[int]:
        step = self.start
        while step < self.stop_at and not self.stopped:
            now = time.perf_counter()
            if self._save_t is not None:
                self.save_seconds = max(self.save_seconds, now - self._save_t)
                self._save_t = None
            self._step_t = now
            yield step
            if self._step_t is not None:  # the body did not call checkpoint_due
                self._finish_step(step)
            step += 1
        self.close()

    def _finish_step(self, step: int) -> None:
        self.durations.append(time.perf_counter() - self._step_t)  # type: ignore[operator]
        self._step_t = None
        if self.durations[-1] >= TRIM_AFTER_SECONDS:
            _trim_heap()
        self.end = step + 1
        self.bar.update(1)
        if self.estimate is None:
            self._maybe_estimate()

    # ------------------------------------------------------------------ checks
    def check(self, loss: torch.Tensor | float, *, lr: float | None = None) -> float:
        """The loss as a float; raises :class:`DivergedError` when it is nan or inf (on any rank)."""
        value = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
        bad = not math.isfinite(value)
        if self.world > 1:
            bad = sum_over_ranks([1.0 if bad else 0.0], self.world)[0] > 0
        if bad:
            self.bar.close()
            step = self.start + len(self.durations) + 1
            at = f" at learning rate {lr:.3g}" if lr is not None else ""
            kept = (f"the last checkpoint (step {self.last_checkpoint}) is kept" if self.last_checkpoint > 0
                    else "no checkpoint was written")
            raise DivergedError(f"{self.desc}: the training loss became {value if not math.isfinite(value) else 'nan on another rank'} "
                                f"at step {step}{at}; that step was not applied and {kept}; {self.fix}")
        return value

    def show(self, **stats: Any) -> None:
        """Figures for the progress bar (the latest step's)."""
        if self.progress:
            self.bar.set_postfix(stats, refresh=False)

    def checkpoint_due(self, step: int) -> bool:
        """Call at the end of step ``step``: True when a checkpoint is due (every ``checkpoint_every``, the
        last step, or the step where the budget stops the run)."""
        self._finish_step(step)
        done = step + 1
        due = done % self.every == 0 or done == self.stop_at
        if self.budget is not None and done < self.stop_at:
            per_step = max(statistics.median(self.durations[-5:]), self.durations[-1])
            over = (time.perf_counter() - self.t0) + per_step + self.save_seconds > self.budget
            if self.world > 1:
                over = sum_over_ranks([1.0 if over else 0.0], self.world)[0] > 0
            if over:
                self.stopped = True
                due = True
                if self.estimate is None:  # stopped before the probe finished: say what the whole run would take
                    self._maybe_estimate(force=True)
        if due:
            self.last_checkpoint = done
            self._save_t = time.perf_counter()
        return due

    def close(self) -> None:
        if self._save_t is not None:
            self.save_seconds = max(self.save_seconds, time.perf_counter() - self._save_t)
            self._save_t = None
        self.bar.close()

    # ------------------------------------------------------------------ estimate
    def seconds_per_step(self) -> float | None:
        """Median seconds per step so far (the first step left out when there are others)."""
        d = self.durations[1:] if len(self.durations) > 1 else self.durations
        return statistics.median(d) if d else None

    def _maybe_estimate(self, force: bool = False) -> None:
        n = len(self.durations)
        if not force and (n < 2 or (n < PROBE_STEPS and sum(self.durations) < PROBE_SECONDS) or self.end >= self.stop_at):
            return
        if not n:
            return
        per = self.seconds_per_step() or 0.0
        todo = self.steps - self.start
        if not force and todo * per < ESTIMATE_MIN_SECONDS:
            return
        span = f"{todo} steps" if self.start == 0 else f"{todo} steps ({self.start + 1}-{self.steps})"
        line = (f"{self.desc}: {span} x ~{per:.3g} s/step ≈ {format_duration(todo * per)} on this machine "
                f"({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})")
        if self.stopped:
            line += f"; --max-minutes {self.max_minutes:g} stops it at step {self.end} (resume with --resume)"
        elif self.budget is not None:
            left = self.budget - (time.perf_counter() - self.t0)
            fits = self.end + max(0, int(left // per)) if per > 0 else self.steps
            if fits < self.steps:
                line += f"; --max-minutes {self.max_minutes:g} stops near step {fits} (resume with --resume)"
        self.estimate = line
        if self.rank != 0:
            return
        if self.progress:
            self.bar.write(line, file=sys.stderr)
        else:
            log.info(line)
