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
    for c in ("score", "next", "complete", "generate", "ensemble"):
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


def test_generate_streams_the_bytes_generate_returns_without_deprecation_warnings(run, capfd):
    """`bytes generate` prints what ``ByteLM.generate`` returns for the same settings (greedy, and sampled at
    T=1 a token at a time), runs to --max-bytes (`complete` stops at the word's end), takes --threads after
    the subcommand, and neither path emits a library deprecation warning (the KV cache is passed as the
    installed transformers names it)."""
    import warnings

    from tokkit_cli.bytes import _load

    invoke, model = run
    prompt = "The capital of France is"
    r = invoke("generate", model, prompt, "--max-bytes", "24", "--json", "--threads", "1")
    assert r.exit_code == 0, r.output
    greedy = json.loads(r.stdout)
    r = invoke("generate", model, prompt, "--max-bytes", "24")
    assert r.exit_code == 0, r.output
    assert r.stdout == prompt + greedy["generated"] + "\n" and greedy["bytes"] == 24
    r = invoke("generate", model, prompt, "--max-bytes", "30", "--temperature", "1", "--seed", "3", "--json")
    assert r.exit_code == 0, r.output
    sampled = json.loads(r.stdout)
    capfd.readouterr()
    blm = _load(model, "canonical", None, "auto")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert blm.generate(prompt, max_bytes=24, temperature=0.0).decode() == greedy["generated"]
        assert blm.generate(prompt, max_bytes=30, temperature=1.0, seed=3).decode() == sampled["generated"]
        assert bytes(blm.stream(prompt, max_bytes=30, temperature=1.0, seed=3)).decode() == sampled["generated"]
    assert not [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))], \
        [str(w.message) for w in caught]
    assert "deprecated" not in capfd.readouterr().err
