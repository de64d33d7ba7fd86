"""Prompt bytes reach the byte-level CLI exactly: non-UTF-8 argv (PEP 383 surrogates) and the --escapes form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    from click.testing import CliRunner
    from conftest import tiny_llama

    from tokkit import load_tokenizer
    from tokkit_cli.main import cli

    d = tmp_path_factory.mktemp("argv")
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(d / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    return tiny_llama(d / "lm", load_tokenizer(d / "tok"))


def _tokkit(*args: str | bytes) -> dict:
    r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], capture_output=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return json.loads(r.stdout)


def _cli(*args: str) -> dict:
    from click.testing import CliRunner

    from tokkit_cli.main import cli

    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, (r.output, r.exception)
    return json.loads(r.stdout)


def test_non_utf8_argv_bytes_pass_through_exactly(lm):
    """A real process given the argv bytes ``caf\\xc3`` scores exactly those 4 bytes."""
    from tokkit.bytelevel import ByteLM

    raw = _tokkit(b"bytes", b"score", str(lm).encode(), b"caf\xc3", b"--device", b"cpu", b"--json")
    want = ByteLM.from_pretrained(lm, device="cpu").score(b"caf\xc3")
    assert raw["bytes"] == 4 and raw["logprob"] == pytest.approx(want.logprob, abs=1e-9)


def test_surrogate_argv_and_escapes_are_the_same_bytes(lm):
    """Python hands non-UTF-8 argv bytes over as surrogates (PEP 383); they and --escapes give the same bytes."""
    from tokkit.bytelevel import ByteLM

    sur = _cli("bytes", "score", str(lm), "caf\udcc3", "--device", "cpu", "--json")
    esc = _cli("bytes", "score", str(lm), "caf\\xc3", "--escapes", "--device", "cpu", "--json")
    utf8 = _cli("bytes", "score", str(lm), "café", "--device", "cpu", "--json")
    assert sur == {**esc, "seconds": sur["seconds"], "lm_calls": sur["lm_calls"]} and sur["bytes"] == 4
    assert utf8["bytes"] == 5 and utf8["logprob"] != sur["logprob"]  # "é" is two bytes, not the one cut byte
    blm = ByteLM.from_pretrained(lm, device="cpu")
    c_sur = _cli("bytes", "complete", str(lm), "caf\udcc3", "--device", "cpu", "--json", "--max-bytes", "4")
    c_esc = _cli("bytes", "complete", str(lm), "caf\\xc3", "--escapes", "--device", "cpu", "--json", "--max-bytes", "4")
    want = blm.complete(b"caf\xc3", max_bytes=4).decode("utf-8", errors="backslashreplace")  # complete returns bytes
    assert c_sur["completion"] == c_esc["completion"] == want
    assert c_sur["prefix"] == c_esc["prefix"] == "caf\\xc3"  # shown with the cut byte escaped
