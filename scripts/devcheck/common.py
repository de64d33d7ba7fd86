"""What every check shares: the run context, sizes per mode, timing with peak device memory, verdicts.

A check is a function ``check(ctx) -> dict | list[dict]`` that runs one path on the CPU (the
reference) and on ``ctx.dev`` (the device under test) and returns :meth:`Verdict.done` dicts:
``status`` (``pass``/``fail``), the stated ``tolerance``, the measured ``metrics`` and the ``speed``
of both sides. :func:`run_checks` adds ``error`` (an exception: one line here, the traceback in
the log), ``missing`` (the feature is not in this checkout) and ``skipped`` (the time budget is spent).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

log = logging.getLogger("gpu_check")

__all__ = ["Sizes", "REAL", "TINY", "Ctx", "Run", "timed", "Verdict", "MissingFeature", "run_checks", "row_errors",
           "rel", "series_rel"]


@dataclass(frozen=True)
class Sizes:
    """Knobs per mode: the real shapes on a device, tiny ones for the CPU twin in CI."""

    rows_compared: int  # new ids rebuilt on both sides per reconstruction method (all of them on the device too)
    extend_add: int  # merges learnt by the extend check
    extend_bytes: int | None  # German text they are learnt on (None: all of data/extend/de_reference_sample.txt)
    heal_steps: int
    heal_batch: int | None  # None: HealConfig's default (the speed figure is at the default batch)
    heal_seq_bytes: int | None
    big_heal_steps: int  # 1B-sized model: steps on the device (speed, memory) ...
    big_heal_cpu_steps: int  # ... and the leading steps repeated on the CPU
    hypernet: dict[str, Any]  # HypernetConfig overrides
    image_recipe: str
    image_steps: int
    eval_bytes: int  # held-out bytes scored by eval-lm (per text)
    big_eval_bytes: int
    bytes_prefixes: tuple[bytes, ...]
    generate_bytes: int
    heal_heldout_bytes: int | None  # cap on the heal runs' held-out text (None: HealConfig's default)
    transplant_method: str  # `tokkit transplant --method` of the end-to-end check
    transplant_heldout: int  # its --heldout
    full_rows_on_device: bool  # also rebuild every new id on the device (rows/s at full size)
    distill: dict[str, Any]  # TransplantConfig overrides of the distill check (the defaults on a device)


REAL = Sizes(rows_compared=4096, extend_add=500, extend_bytes=None, heal_steps=20, heal_batch=None, heal_seq_bytes=None, big_heal_steps=20,
             big_heal_cpu_steps=1, hypernet={"steps": 20, "warmup_steps": 5, "checkpoint_every": 20},
             image_recipe="small", image_steps=20, eval_bytes=12000, big_eval_bytes=3000,
             bytes_prefixes=(b"The capital of Fr", b"Call me Ish", b"caf\xc3", "日本の首都は東".encode(), b"def f(x):\n    retu"),
             generate_bytes=24, heal_heldout_bytes=None, transplant_method="heuristic", transplant_heldout=500,
             full_rows_on_device=True, distill={"fit_bytes": 50_000})
TINY = Sizes(rows_compared=128, extend_add=50, extend_bytes=16000, heal_steps=2, heal_batch=2, heal_seq_bytes=96, big_heal_steps=1,
             big_heal_cpu_steps=1, hypernet={"steps": 3, "warmup_steps": 1, "checkpoint_every": 3, "batch_size": 2,
                                             "seq_len": 32, "vocab_size": 300, "negatives": 32, "aux_tokens": 16,
                                             "hidden": 32, "heads": 2, "layers": 1},
             image_recipe="tiny", image_steps=3, eval_bytes=800, big_eval_bytes=400,
             bytes_prefixes=(b"caf\xc3",), generate_bytes=4, heal_heldout_bytes=256, transplant_method="fvt",
             transplant_heldout=20, full_rows_on_device=False,
             distill={"snippets": 2, "distill_epochs": 1, "snippet_tokens": 16, "fit_bytes": 4000})


@dataclass
class Ctx:
    """One run: the device under test, the mode, where things are, the deadline, what checks hand on."""

    dev: torch.device
    tiny: bool
    repo: Path
    home: Path  # TOKKIT_HOME holding the tokenizer files
    work: Path  # scratch: model folders, outputs
    deadline: float  # time.monotonic() past which the remaining checks are skipped
    models: dict[str, Path] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # outputs a later check reuses (extended folders ...)

    @property
    def sizes(self) -> Sizes:
        return TINY if self.tiny else REAL

    @property
    def cpu(self) -> torch.device:
        return torch.device("cpu")

    def need(self, key: str, producer: str) -> Any:
        """What an earlier check handed on, or an error naming that check (it failed, broke or was left out)."""
        if key not in self.shared:
            raise RuntimeError(f"needs the output of check {producer!r}, which did not finish")
        return self.shared[key]

    def out(self, name: str) -> Path:
        return self.work / "out" / name

    def text(self, rel_path: str, limit: int | None = None) -> str:
        t = (self.repo / rel_path).read_text(encoding="utf-8")
        if limit is not None and len(t.encode()) > limit:
            t = t.encode()[:limit].decode("utf-8", errors="ignore")
            t = t[: t.rfind("\n") + 1] or t
        return t


@dataclass(frozen=True)
class Run:
    """One timed call: its value, wall seconds and peak device memory (GiB; None on the CPU)."""

    value: Any
    seconds: float
    peak_gib: float | None


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(dev: torch.device, fn: Callable[[], Any]) -> Run:
    """Run ``fn`` with the device synchronised at both ends; the peak memory of ``dev`` during it."""
    if dev.type == "cuda":
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    value = fn()
    _sync(dev)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return Run(value, seconds, peak)


def rel(a: float, b: float) -> float:
    """``|a - b| / |a|`` (0 when both are 0; inf when either is not finite)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / abs(a) if a else abs(b)


def series_rel(ref: list[float], got: list[float]) -> float:
    """Largest :func:`rel` over two aligned series (inf when their lengths differ)."""
    if len(ref) != len(got) or not ref:
        return math.inf
    return max(rel(a, b) for a, b in zip(ref, got))


def row_errors(ref: torch.Tensor, got: torch.Tensor) -> torch.Tensor:
    """Per-row relative L2 error ``(M,)`` float64 of ``got`` against ``ref`` (both ``(M, D)``); inf for non-finite rows."""
    a, b = ref.detach().double().cpu(), got.detach().double().cpu()
    if a.shape != b.shape:
        raise ValueError(f"row shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    err = (a - b).norm(dim=1) / a.norm(dim=1).clamp_min(1e-30)
    err[~torch.isfinite(b).all(dim=1)] = math.inf
    return err


class MissingFeature(Exception):
    """The path to check is not in this checkout (reported as ``missing``, not as a failure)."""


class Verdict:
    """Collects one check's measurements against its stated tolerance."""

    def __init__(self, name: str, tolerance: str) -> None:
        self.name, self.tolerance = name, tolerance
        self.metrics: dict[str, Any] = {}
        self.fails: list[str] = []
        self.speed_: dict[str, Any] = {}
        self.notes: list[str] = []

    def within(self, key: str, value: float, limit: float) -> "Verdict":
        """Record ``value`` and fail unless it is ≤ ``limit`` (NaN fails)."""
        self.metrics[key] = _round(value)
        if not value <= limit:
            self.fails.append(f"{key} {value:.3g} > {limit:g}")
        return self

    def at_least(self, key: str, value: float, limit: float) -> "Verdict":
        self.metrics[key] = _round(value)
        if not value >= limit:
            self.fails.append(f"{key} {value:.4g} < {limit:g}")
        return self

    def require(self, key: str, ok: bool, why: str) -> "Verdict":
        self.metrics[key] = bool(ok)
        if not ok:
            self.fails.append(why)
        return self

    def info(self, key: str, value: Any) -> "Verdict":
        self.metrics[key] = _round(value) if isinstance(value, float) else value
        return self

    def speed(self, cpu: Run | None, dev: Run | None, *, unit: str | None = None, count: float | None = None,
              cpu_count: float | None = None) -> "Verdict":
        """Seconds on both sides, ``unit``/s for each (``cpu_count`` when the CPU did less work), peak device memory."""
        s: dict[str, Any] = {}
        for side, run, n in (("cpu", cpu, cpu_count if cpu_count is not None else count), ("device", dev, count)):
            if run is None:
                continue
            s[f"{side}_s"] = round(run.seconds, 3)
            if unit and n:
                s[f"{side}_{unit}_per_s"] = round(n / run.seconds, 1) if run.seconds > 0 else None
        if dev is not None and dev.peak_gib is not None:
            s["peak_device_gib"] = round(dev.peak_gib, 3)
        if unit and s.get(f"cpu_{unit}_per_s") and s.get(f"device_{unit}_per_s"):
            s["speedup"] = round(s[f"device_{unit}_per_s"] / s[f"cpu_{unit}_per_s"], 2)
        elif cpu is not None and dev is not None and dev.seconds > 0 and cpu_count is None:
            s["speedup"] = round(cpu.seconds / dev.seconds, 2)
        if unit:
            s["unit"] = unit
        self.speed_ = s
        return self

    def note(self, text: str) -> "Verdict":
        self.notes.append(text)
        return self

    def done(self) -> dict[str, Any]:
        return {"check": self.name, "status": "fail" if self.fails else "pass", "tolerance": self.tolerance,
                "metrics": self.metrics, "speed": self.speed_, "why": "; ".join(self.fails),
                "note": "; ".join(self.notes)}


def _round(x: Any) -> Any:
    if isinstance(x, float) and math.isfinite(x) and x != 0:
        return float(f"{x:.6g}")
    return x if not (isinstance(x, float) and not math.isfinite(x)) else str(x)


def run_checks(ctx: Ctx, checks: list[tuple[str, Callable[[Ctx], Any]]],
               after_each: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Run each check in order; an exception becomes an ``error`` result and the next check runs.

    ``after_each(results so far)`` runs after every check (the driver rewrites its reports there).
    """
    out: list[dict[str, Any]] = []
    for name, fn in checks:
        if time.monotonic() > ctx.deadline:
            out.append({"check": name, "status": "skipped", "why": "the time budget (--budget-s) was spent"})
            log.warning("%s: skipped (time budget spent)", name)
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        log.info("%s ...", name)
        try:
            got = fn(ctx)
            rows = got if isinstance(got, list) else [got]
        except MissingFeature as e:
            rows = [{"check": name, "status": "missing", "why": str(e)}]
        except Exception as e:  # noqa: BLE001 - one broken path must not hide the others
            log.error("%s failed:\n%s", name, traceback.format_exc())
            line = f"{type(e).__name__}: {e}".splitlines()[0][:400]
            rows = [{"check": name, "status": "error", "why": line}]
        wall, cpu = round(time.perf_counter() - t0, 1), round(time.process_time() - c0, 1)
        for r in rows:
            r.setdefault("wall_s", wall)
            r.setdefault("process_cpu_s", cpu)
            log.info("%-22s %-7s %s", r["check"], r["status"], r.get("why") or "")
        out += rows
        if ctx.dev.type == "cuda":
            torch.cuda.empty_cache()
        if after_each is not None:
            after_each(out)
    return out
