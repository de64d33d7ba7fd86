"""Every CUDA path of tokkit against its CPU path, timed: one run, one JSON and one text report.

On the device machine (README "On a GPU"; ``bash scripts/gpu_check.sh`` sets the environment)::

    python scripts/gpu_check.py --device cuda --out $OUT

The CPU twin (CI, under a minute; tests/test_gpu_check.py)::

    python scripts/gpu_check.py --device cpu --tiny --out out/gpu_check

Preparing the carry folder here (tokenizer files + pydantic wheels; prints what travels)::

    python scripts/gpu_check.py --prepare

Checks (``--only`` takes a comma list of these names): fvt, heuristic, omp, transplant, extend,
extend_1b, distill, heal, heal_bf16, heal_1b, hypernet, image, image_prior, bytes, eval_lm, eval_lm_1b.
Exit code 0 when every check passed (or is missing from this checkout, or skipped for time), 1 when
one failed or broke, 2 when a package or file is missing (one ``error:`` line, before any work).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the devcheck package beside this file

log = logging.getLogger("gpu_check")


def _checks():
    from devcheck import embed_checks as e
    from devcheck import infer_checks as i
    from devcheck import train_checks as t

    return [("fvt", e.check_fvt), ("heuristic", e.check_heuristic), ("omp", e.check_omp),
            ("transplant", e.check_transplant), ("extend", e.check_extend), ("extend_1b", e.check_extend_big),
            ("distill", e.check_distill), ("heal", t.check_heal), ("heal_bf16", t.check_heal_bf16),
            ("heal_1b", t.check_heal_big), ("hypernet", t.check_hypernet), ("image", t.check_image),
            ("image_prior", t.check_image_prior), ("bytes", i.check_bytes), ("eval_lm", i.check_eval_lm),
            ("eval_lm_1b", i.check_eval_lm_big)]


#: checks that need another check's output first
NEEDS = {"heal": "extend", "heal_bf16": "extend", "heal_1b": "extend_1b", "image_prior": "image"}
#: checks that use the Llama-3.2-1B-sized model (built only when one of them runs)
USE_BIG = ("omp", "extend_1b", "heal_1b", "eval_lm_1b")
#: left out of the CPU twin unless --only names them: `extend` / `heal` / `eval_lm` again, on the other vocabulary
TINY_SKIPS = ("extend_1b", "heal_1b", "eval_lm_1b")


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="device under test (cuda, cuda:1, cpu) [cuda]")
    ap.add_argument("--tiny", action="store_true", help="tiny models (same vocabularies): the CPU twin for CI")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "out/gpu_check"),
                    help="report folder [$OUT, else out/gpu_check]")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder for models and outputs, kept [a temporary one, removed at the end]")
    ap.add_argument("--home", type=Path, default=None, help="TOKKIT_HOME with the tokenizer files [$TOKKIT_HOME]")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip the remaining checks after this many seconds [420]")
    ap.add_argument("--only", default=None, help="comma list of checks to run (and what they need)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads for the CPU side [all cores]")
    ap.add_argument("--pytest-log", type=Path, default=None, help="log of `pytest -m cuda` to fold into the report")
    ap.add_argument("--prepare", action="store_true", help="fill .gpu_carry here (no device needed) and print its size")
    return ap.parse_args(argv)


def _selected(only: str | None, *, tiny: bool) -> list:
    checks = _checks()
    want = {n for n, _ in checks} - (set(TINY_SKIPS) if tiny else set())
    if only:
        want = {w.strip() for w in only.split(",") if w.strip()}
        unknown = want - {n for n, _ in checks}
        if unknown:
            from devcheck.env import PreflightError

            raise PreflightError(f"unknown check(s) {sorted(unknown)}; known: {', '.join(n for n, _ in checks)}")
        want |= {NEEDS[w] for w in want if w in NEEDS}
    return [(n, f) for n, f in checks if n in want]


def _prepare(home: Path) -> int:
    from devcheck.env import CARRY, prepare

    carry, total = prepare(REPO, home)
    files = sorted(p for p in carry.rglob("*") if p.is_file())
    for p in files:
        print(f"{p.stat().st_size / 2**20:8.2f} MiB  {p.relative_to(REPO)}")
    print(f"carry [\"{CARRY}\"]: {sum(p.stat().st_size for p in files) / 2**20:.1f} MiB; with the working tree "
          f"{total / 2**20:.1f} MiB of the device tool's 64 MiB")
    return 0 if total <= 64 * 2**20 else 2


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from devcheck.env import PreflightError, check_packages, preflight

    try:
        if not args.prepare:
            check_packages()
        from tokkit.config import tokkit_home

        home = (args.home or tokkit_home()).resolve()
        if args.prepare:
            return _prepare(home)
        os.environ.update(TOKKIT_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                          TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        preflight(REPO, home)
        checks = _selected(args.only, tiny=args.tiny)
        import torch

        dev = torch.device(args.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise PreflightError(f"--device {args.device} but torch {torch.__version__} sees no CUDA device; run on "
                                 f"the device machine, or pass --device cpu --tiny for the CPU twin")
    except PreflightError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="tokkit-gpu-check-"))
    try:
        return _run(args, dev, checks, home, work)
    finally:
        if args.work is None:  # model folders and outputs: gigabytes with the real shapes
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, dev, checks: list, home: Path, work: Path) -> int:
    import torch

    from devcheck.common import Ctx, run_checks, timed
    from devcheck.models import build
    from devcheck.report import environment, exit_code, pytest_summary, write_reports

    t0 = time.monotonic()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    os.environ["TOKKIT_THREADS"] = str(torch.get_num_threads())  # the CLI paths use the same threads
    if dev.type == "cuda":  # context, cuBLAS handles: outside every timing
        (torch.randn(256, 256, device=dev) @ torch.randn(256, 256, device=dev)).sum().item()
    ctx = Ctx(dev=dev, tiny=args.tiny, repo=REPO, home=home, work=work, deadline=t0 + args.budget_s)
    shapes = {"smol": ("smollm2-135m", "models/smollm2/tokenizer.json"),
              "big": ("llama-3.2-1b", "tokenizers/llama3/tokenizer.json")}
    need = ["smol"] + (["big"] if any(n in USE_BIG for n, _ in checks) else [])
    setup = timed(dev, lambda: ctx.models.update({m: build(shapes[m][0], home / shapes[m][1], work / "models" / m,
                                                           tiny=args.tiny, device=dev) for m in need}))
    log.info("models built in %.1f s under %s", setup.seconds, work)
    pytest = pytest_summary(args.pytest_log)
    env = environment(dev)

    def report(results: list) -> dict:
        return {"mode": ("tiny" if args.tiny else "real shapes"), "environment": env,
                "seconds": round(time.monotonic() - t0, 1), "setup_s": round(setup.seconds, 1),
                "models": {k: str(v) for k, v in ctx.models.items()}, "checks": results, "pytest": pytest}

    results = run_checks(ctx, checks, after_each=lambda rs: write_reports(args.out, report(rs)))
    print(write_reports(args.out, report(results)), end="")
    return exit_code(results, pytest)


if __name__ == "__main__":
    sys.exit(main())
