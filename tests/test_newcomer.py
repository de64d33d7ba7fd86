"""A new user's session, end to end: the documented flows run as ``tokkit`` commands in a shell would.

Each flow is the one the README / docs describe, on the committed data, with small budgets; the
commands run as subprocesses of the installed ``tokkit`` (what a user types), so start-up, stderr and
exit codes are the real ones. The model flows use a one-layer model with SmolLM2's real tokenizer
(random weights: the flows are checked, not quality, which the docs' benchmarks measure); ``bytes
generate`` runs on SmolLM2-135M itself.

1. train -> compare on the written held-out split;
2. extend -> encode -> eval-lm --max-bytes;
3. transplant -> heal --max-minutes -> (heal --resume) -> eval-lm, and eval-lm stopped by a real SIGINT;
4. bytes generate.

The image flow (train -> encode -> decode -k) belongs to issue 29's tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKKIT = str(Path(sys.executable).parent / "tokkit")
DE_TEXT = ROOT / "data" / "extend" / "de_reference_sample.txt"
DE_HELDOUT = ROOT / "data" / "heldout" / "gnome_help_de_net.txt"
EN_HELDOUT = ROOT / "data" / "heldout" / "moby_dick_ch1.txt"

pytestmark = pytest.mark.slow


def _env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1", TOKKIT_THREADS="1")


def tokkit(*args, cwd: Path, expect: int = 0, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([TOKKIT, *map(str, args)], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == expect, f"tokkit {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def _no_library_noise(stderr: str) -> None:
    """What reaches the user on stderr is tokkit's own: no deprecation warnings, no tracebacks."""
    for bad in ("Warning:", "deprecated", "Traceback"):
        assert bad not in stderr, stderr[-2000:]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, smollm2_dir):
    from conftest import tiny_llama

    from tokkit import load_tokenizer

    return tiny_llama(tmp_path_factory.mktemp("newcomer") / "tiny", load_tokenizer(smollm2_dir), hidden=32)


def test_train_then_compare_on_the_written_held_out_split(tmp_path):
    r = tokkit("train-bpe", ROOT / "data/legal/train.jsonl", "--vocab-size", 1024, "--held-out", 0.2, "-o", "out/legal-1k",
               "--quiet", cwd=tmp_path)
    summary = re.search(r"held-out +(\d+) documents, .*: ([\d.]+) bytes/token, all round-trip; saved as (\S+)", r.stdout)
    assert summary, r.stdout
    held = tmp_path / summary.group(3)
    assert held == tmp_path / "out/legal-1k/heldout.jsonl" and len(held.read_text().splitlines()) == int(summary.group(1))
    r = tokkit("compare", "out/legal-1k", "gpt2", "--text", held, cwd=tmp_path)
    row = next(line for line in r.stdout.splitlines() if line.startswith("legal-1k "))
    assert row.split()[3] == summary.group(2)  # bytes/token: the summary's figure, on the same documents
    assert "tokens per domain term" not in r.stdout  # a recipe without terms: no legal/financial table
    _no_library_noise(r.stderr)


def test_extend_then_encode_then_eval_lm_on_a_prefix(tmp_path, tiny):
    r = tokkit("extend", "--model", tiny, DE_TEXT, "--add", 200, "-o", "out/tiny-de", "--quiet", cwd=tmp_path)
    _no_library_noise(r.stderr)
    r = tokkit("encode", DE_TEXT, "--tokenizer", "out/tiny-de", "-o", "out/de-tokens", "--quiet", cwd=tmp_path)
    manifest = json.loads((tmp_path / "out/de-tokens/manifest.json").read_text())
    assert manifest and (tmp_path / "out/de-tokens").is_dir()
    r = tokkit("eval-lm", tiny, "out/tiny-de", "--text", DE_HELDOUT, "--max-bytes", 3000, "--json", cwd=tmp_path)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["domain"] for d in rows] == ["gnome_help_de_net"] * 2
    assert all(2997 <= d["bytes"] <= 3000 for d in rows) and rows[0]["bytes"] == rows[1]["bytes"]
    assert rows[1]["tokens"] < rows[0]["tokens"]  # the 200 German merges spend fewer tokens on German
    assert "new_targets" in rows[1]  # an extended model: new tokens and leak reported
    _no_library_noise(r.stderr)


def test_transplant_heal_within_a_budget_resume_and_eval_lm(tmp_path, tiny):
    tokkit("transplant", "--src", tiny, "--dst", "mistral", "--method", "fvt", "--heldout", 0, "-o", "out/tiny-mistral",
           cwd=tmp_path)
    heal = ["heal", "out/tiny-mistral", ROOT / "data/legal/train.jsonl", "-o", "out/healed", "--loss", "lm",
            "--steps", 100000, "--seq-bytes", 128, "--batch-size", 2, "--checkpoint-every", 50, "--heldout", 0.02]
    r = tokkit(*heal, "--max-minutes", 0.5, cwd=tmp_path)
    stopped = re.search(r"stopped by --max-minutes at step (\d+) of 100000", r.stdout)
    assert stopped, r.stdout
    assert re.search(r"heal: 100000 steps x ~\S+ s/step ≈ .+ on this machine \(1 thread\); --max-minutes 0.5 stops "
                     r"(near|it at) step \d+", r.stderr), r.stderr
    h = json.loads((tmp_path / "out/healed/transplant_report.json").read_text())["heals"][-1]
    assert h["stopped_by_budget"] and h["steps"] == int(stopped.group(1))
    assert (tmp_path / "out/healed.heal-checkpoint").is_dir()
    r = tokkit(*heal, "--max-minutes", 0.1, "--resume", cwd=tmp_path)
    assert f"resumed from step {stopped.group(1)}" in r.stdout
    r = tokkit("eval-lm", "out/tiny-mistral", "out/healed", "--text", EN_HELDOUT, "--max-bytes", 2000, cwd=tmp_path)
    table = [line for line in r.stdout.splitlines() if line.startswith(("out/tiny-mistral", "out/healed"))]
    assert len(table) == 2 and all(line.split()[2] == table[0].split()[2] for line in table)  # same bytes scored
    _no_library_noise(r.stderr)


def test_eval_lm_stopped_by_ctrl_c_keeps_the_finished_rows(tmp_path, tiny):
    """A real SIGINT while the second text is scored: the first row stands, one error line, exit 130."""
    big = tmp_path / "long.txt"
    big.write_text(EN_HELDOUT.read_text(encoding="utf-8") * 40, encoding="utf-8")
    p = subprocess.Popen([TOKKIT, "eval-lm", str(tiny), "--text", str(DE_HELDOUT), "--text", str(big), "--json",
                          "--segment-bytes", "256"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the first text's row arrives while the second is still being scored
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert json.loads(first)["domain"] == "gnome_help_de_net" and rest.strip() == ""
    assert err.strip().splitlines()[-1] == ("error: interrupted by SIGINT: 1 of 2 texts scored; the rows above are "
                                            "complete"), err[-2000:]


def test_bytes_generate_prints_the_continuation(tmp_path, smollm2_dir):
    r = tokkit("bytes", "generate", "smollm2", "The capital of France is", "--max-bytes", 16, "--threads", 1, cwd=tmp_path)
    assert r.stdout.startswith("The capital of France is Paris")
    assert len(r.stdout.rstrip("\n").encode()) == len("The capital of France is".encode()) + 16
    assert re.fullmatch(r"cost: 16 bytes generated, \d+ LM calls in [\d.]+ s; peak memory \d+ MB", r.stderr.strip()), r.stderr
