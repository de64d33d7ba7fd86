"""The device check's CPU twin runs every check end to end, its preflight fails fast, and it fits the device tool.

``bash scripts/gpu_check.sh --device cpu --tiny`` is the script the device machine runs, on tiny
models with the real vocabularies: every check compares the CPU path with itself, so each must pass. The device tool sends at most 64 MiB (tree + carry) and
takes a command of at most 2,000 characters: the README's command and the carried files must fit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need_fixture

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {"reconstruct_fvt", "reconstruct_heuristic", "reconstruct_omp", "transplant_cli", "extend_fvt", "distill",
          "heal_fp32", "heal_bf16_autocast", "hypernet_train", "image_train", "image_roundtrip",
          "image_prior_train", "bytes_next_byte", "eval_lm", "eval_lm_transplanted"}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "TQDM_DISABLE": "1", **extra}


def test_cpu_twin_passes_every_check(tmp_path):
    for alias in ("smollm2", "llama3", "mistral"):
        need_fixture(alias)
    out = tmp_path / "out"
    r = subprocess.run(["bash", "scripts/gpu_check.sh", "--device", "cpu", "--tiny", "--threads", "1", "--work",
                        str(tmp_path / "work")],
                       cwd=ROOT, env=_env(OUT=str(out), TOKKIT_GPU_CARRY=str(tmp_path / "no-carry")),
                       capture_output=True, text=True, timeout=1200)
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else ""
    assert r.returncode == 0, r.stdout + r.stderr + log[-3000:]
    rep = json.loads((out / "gpu_check.json").read_text())
    status = {c["check"]: c["status"] for c in rep["checks"]}
    assert set(status) == CHECKS, set(status) ^ CHECKS
    bad = {n: s for n, s in status.items() if s != "pass"}
    assert not bad, [c for c in rep["checks"] if c["check"] in bad]
    for c in rep["checks"]:  # every passing check states its tolerance, its figures and both sides' time
        if c["status"] == "pass":
            assert c["tolerance"] and c["metrics"] and c["speed"].get("device_s") is not None, c
    assert rep["mode"] == "tiny" and rep["environment"]["device"] == "cpu"
    assert "skipped" in rep["pytest"]["summary"] and not rep["pytest"].get("failed")  # no CUDA here: all skipped
    text = (out / "gpu_check.txt").read_text()
    assert text in r.stdout and "result: " in text and "reconstruct_omp" in text


@pytest.mark.parametrize("args,expect", [
    (["--device", "cpu", "--tiny", "--home", "{empty}"], "error: tokenizer file "),
    (["--device", "cpu", "--tiny", "--only", "heal,nonsense"], "error: unknown check(s) ['nonsense']"),
])
def test_preflight_refuses_in_one_line_before_any_work(tmp_path, args, expect):
    args = [a.replace("{empty}", str(tmp_path)) for a in args]
    r = subprocess.run([sys.executable, "scripts/gpu_check.py", *args, "--out", str(tmp_path / "out")], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(expect) and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_device_cuda_without_one_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = subprocess.run([sys.executable, "scripts/gpu_check.py", "--device", "cuda"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: --device cuda but torch") and r.stderr.count("\n") == 1


def test_the_readme_command_and_the_carry_fit_the_device_tool():
    sys.path.insert(0, str(ROOT / "scripts"))
    from devcheck.env import EXTRA_FILES, TOKENIZERS, tree_bytes

    from tokkit.config import tokkit_home

    section = (ROOT / "README.md").read_text().split("## On a GPU", 1)[1].split("\n## ", 1)[0]
    call = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))
    assert len(call["command"]) <= 2000 and call["carry"] == [".gpu_carry"] and call["timeout_s"] <= 600
    for alias in ("smollm2", "llama3", "mistral"):
        need_fixture(alias)
    carried = sum((tokkit_home() / rel).stat().st_size for rel in (*TOKENIZERS.values(), *EXTRA_FILES))
    wheels = 4 << 20  # pydantic-core 2.1 MB, pydantic 0.5 MB, three small ones (`--prepare` prints the exact sum)
    assert tree_bytes(ROOT) + carried + wheels <= 64 << 20
