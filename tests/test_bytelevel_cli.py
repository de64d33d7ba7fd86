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


@pytest.mark.parametrize("members,weights,needle", [
    (1, "nan", "found nan; pass finite numbers"), (1, "inf", "found inf; pass finite numbers"),
    (2, "1,nan", "found 1,nan; pass finite numbers"), (2, "-inf,1", "found -inf,1; pass finite numbers"),
    (2, "-1,2", "non-negative weights with a positive sum, found -1,2"),
    (2, "0,0", "non-negative weights with a positive sum, found 0,0"), (2, "1,2,3", "found 3 (1,2,3)")])
def test_ensemble_refuses_non_finite_negative_or_all_zero_weights(run, members, weights, needle):
    """`--weights nan` printed "ensemble (mixture): nan bits/byte" and a numpy RuntimeWarning, with exit code 0."""
    invoke, model = run
    r = invoke("ensemble", *[model] * members, "--text", "hi", "--weights", weights)
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: --weights: expected {members} ") and needle in r.output, r.output
    assert "bits/byte" not in r.output and "Warning" not in r.output and "Traceback" not in r.output


def test_ensemble_library_refuses_the_same_weights():
    import numpy as np

    from tokkit.bytelevel import ByteEnsemble
    from tokkit.bytelevel.ensemble import member_weights
    from tokkit.errors import NonFiniteError, TokkitError

    members = [object(), object()]  # the weights are checked before a member is used
    for bad in ([float("nan"), 1], [float("inf"), 1], [1, float("-inf")]):
        with pytest.raises(NonFiniteError, match="finite"):
            ByteEnsemble(members, weights=bad)
    for bad in ([-1, 2], [0, 0], [1]):
        with pytest.raises(TokkitError, match="non-negative weights with a positive sum"):
            ByteEnsemble(members, weights=bad)
    np.testing.assert_allclose(member_weights([1e308, 1e308], 2), [0.5, 0.5])  # no overflow to inf in the sum
    np.testing.assert_allclose(member_weights(None, 4), [0.25] * 4)
    np.testing.assert_allclose(np.exp(ByteEnsemble(members, weights=[1, 3]).log_w), [0.25, 0.75])


def test_score_a_byte_of_probability_0_is_the_context_error(run, tmp_path):
    """A UTF-16 file (BOM ff fe) printed "logprob -inf nats over 1 bytes (inf bits/byte)" with exit code 0; it gets
    the error --context gives for the same byte, from the same check, naming where the byte is."""
    invoke, model = run
    r = invoke("score", model, "hi", "--context", "\\xff\\xfe", "--escapes")
    assert r.exit_code == 2 and "probability 0" in r.output and "remove or replace those bytes" in r.output, r.output
    context_error = r.output.strip().removeprefix("error: ")
    u16 = tmp_path / "u16.txt"
    u16.write_bytes("hi".encode("utf-16"))
    assert u16.read_bytes()[:2] == b"\xff\xfe"
    for args, where in (((model, "--file", str(u16)), f"{u16}, byte 0 (0xff): "),
                        ((model, "\\xff\\xfehi", "--escapes"), "TEXT, byte 0 (0xff): ")):
        r = invoke("score", *args)
        assert r.exit_code == 2, r.output
        assert r.output.strip() == f"error: {where}{context_error}"
        assert "-inf" not in r.output and "bits/byte" not in r.output
    r = CliRunner().invoke(cli, ["bytes", "score", model, "--file", "-", "--json"], input=b"ab\xffcd")
    assert r.exit_code == 2 and r.output.startswith("error: stdin, byte 2 (0xff): expected a prefix the model can "
                                                    "produce, found one of probability 0"), r.output
    assert "prefix ends b'ab\\xff' (3 bytes); remove or replace those bytes" in r.output
    r = invoke("ensemble", model, "--file", str(u16))  # each member's score is checked the same way
    assert r.exit_code == 2 and f"{u16} under {model}, byte 0 (0xff): " in r.output and "bits/byte" not in r.output
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"hi")
    r = invoke("score", model, "--file", str(ok), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["bytes"] == 2, r.output


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
