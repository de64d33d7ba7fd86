"""`tokkit bytes score|next|complete|ensemble` through click's CliRunner (SmolLM2 loaded once, cached)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tokkit_cli.main import cli


@pytest.fixture(scope="module")
def run(smollm2_dir):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runner = CliRunner()

    def invoke(*args):
        r = runner.invoke(cli, ["bytes", *args])
        return r

    yield invoke, str(smollm2_dir)
    torch.set_num_threads(threads)


def test_bytes_help_loads_no_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom tokkit_cli.main import cli\n"
            "r = CliRunner().invoke(cli, ['bytes', '--help'])\nassert r.exit_code == 0, r.output\n"
            "assert 'torch' not in sys.modules\nprint(r.output)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for c in ("score", "next", "complete", "ensemble"):
        assert f"  {c} " in out


def test_unknown_model_exits_2():
    r = CliRunner().invoke(cli, ["bytes", "score", "no-such-model", "hello"])
    assert r.exit_code == 2
    assert "error:" in r.output and "smollm2" in r.output


def test_complete_json(run):
    invoke, model = run
    r = invoke("complete", model, "The capital of Fr", "--json", "--baseline")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["completion"] == "ance"
    assert not out["naive"].startswith("ance")


def test_next_and_score(run):
    invoke, model = run
    r = invoke("next", model, "The capital of Fr", "--json", "--top", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["top"][0]["text"] == "a" and out["top"][0]["prob"] > 0.9
    assert len(out["top"]) == 3 and out["log_z"] <= 1e-9
    r = invoke("score", model, "ance", "--context", "The capital of Fr", "--json")
    assert r.exit_code == 0, r.output
    sc = json.loads(r.stdout)
    assert sc["bytes"] == 4 and -1.0 < sc["logprob"] < 0.0


def test_ensemble_degenerate_weights_equal_single_model(run):
    invoke, model = run
    single = json.loads(invoke("score", model, "Call me Ish", "--json").stdout)
    r = invoke("ensemble", model, model, "--text", "Call me Ish", "--weights", "1,0", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ensemble"] == pytest.approx(single["bits_per_byte"], abs=1e-9)
    r = invoke("ensemble", model, model, "--text", "x", "--weights", "1,zero")
    assert r.exit_code == 2 and "--weights" in r.output
