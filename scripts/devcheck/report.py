"""The two reports a run leaves under ``--out``: ``gpu_check.json`` (everything) and ``gpu_check.txt`` (a table)."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["environment", "pytest_summary", "write_reports", "text_report", "exit_code"]

OK = ("pass", "missing", "skipped")


def environment(dev: torch.device) -> dict[str, Any]:
    """Versions, the device, and the precision switches that decide how close CUDA float32 comes to the CPU."""
    import transformers

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "transformers": transformers.__version__, "cpu_threads": torch.get_num_threads(),
                           "device": str(dev)}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env |= {"gpu": p.name, "capability": f"{p.major}.{p.minor}", "gpu_memory_gib": round(p.total_memory / 2**30, 1),
                "cuda": torch.version.cuda, "matmul_fp32_precision": _read(torch.get_float32_matmul_precision),
                "cuda_matmul_allow_tf32": _read(lambda: torch.backends.cuda.matmul.allow_tf32),
                "cudnn_allow_tf32": _read(lambda: torch.backends.cudnn.allow_tf32)}
    return env


def _read(get) -> str:
    """A precision switch as text (newer torch deprecates some of the old names: never let that stop a report)."""
    try:
        return str(get())
    except Exception as e:  # noqa: BLE001
        return f"unreadable ({type(e).__name__})"


def pytest_summary(path: Path | None) -> dict[str, Any] | None:
    """The last summary line of a pytest log (``3 passed, 1 skipped in 4.2s``) and its counts."""
    if path is None or not path.is_file():
        return None
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if re.search(r"\b(passed|failed|error|skipped|deselected|no tests ran)\b", ln)]
    if not lines:
        return {"summary": "no pytest summary line found", "failed": 1}
    last = lines[-1].strip("= ")
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", last)}
    return {"summary": last, **counts}


def exit_code(results: list[dict[str, Any]], pytest: dict[str, Any] | None) -> int:
    bad = [r for r in results if r["status"] not in OK]
    if pytest is not None and (pytest.get("failed") or pytest.get("error") or pytest.get("errors")):
        bad.append({"check": "pytest -m cuda"})
    return 1 if bad else 0


def _cell(x: Any, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x) if isinstance(x, (int, float)) else str(x)


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def text_report(report: dict[str, Any]) -> str:
    env = report["environment"]
    head = (f"tokkit device check on {env.get('gpu', env['device'])} ({report['mode']}): torch {env['torch']}, "
            f"transformers {env['transformers']}, {env['cpu_threads']} CPU threads; {report['seconds']:.0f} s")
    lines = [head, ""]
    lines.append(f"{'check':<22} {'status':<8} {'cpu s':>8} {'dev s':>8} {'speedup':>8} {'dev unit/s':>14} "
                 f"{'peak GiB':>8}  tolerance / why")
    for r in report["checks"]:
        s = r.get("speed") or {}
        unit = s.get("unit")
        rate = f"{_rate(s.get(f'device_{unit}_per_s'))} {unit}" if unit else "-"
        lines.append(f"{r['check']:<22} {r['status']:<8} {_cell(s.get('cpu_s')):>8} {_cell(s.get('device_s')):>8} "
                     f"{_cell(s.get('speedup'), '{:.1f}x'):>8} {rate:>14} {_cell(s.get('peak_device_gib')):>8}  "
                     f"{r.get('why') or r.get('tolerance', '')}")
    if report.get("pytest") is not None:
        lines += ["", f"pytest -m cuda: {report['pytest']['summary']}"]
    lines += ["", f"setup: models built in {report['setup_s']:.1f} s; full metrics in gpu_check.json"]
    n = {k: sum(r["status"] == k for r in report["checks"]) for k in ("pass", "fail", "error", "missing", "skipped")}
    lines.append("result: " + ", ".join(f"{v} {k}" for k, v in n.items() if v))
    return "\n".join(lines) + "\n"


def write_reports(out: Path, report: dict[str, Any]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    text = text_report(report)
    (out / "gpu_check.txt").write_text(text)
    return text
