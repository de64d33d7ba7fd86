"""No code runs from data: every transformers load goes through tokkit.hf_models, which refuses a folder that
names its own code (auto_map) or holds only pickled weights, never prompts, and reads safetensors only."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"
TXT = ROOT / "data" / "heldout" / "moby_dick_ch1.txt"

pytest.importorskip("transformers")

_EVIL = '''
import pathlib
pathlib.Path({sentinel!r}).write_text("the folder's code ran")
from transformers import LlamaConfig, LlamaForCausalLM


class EvilConfig(LlamaConfig):
    model_type = "llama"


class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
'''


def test_every_from_pretrained_in_the_library_is_the_safe_loader():
    """Source check: only tokkit/hf_models.py calls transformers' ``from_pretrained``."""
    offenders = []
    for f in list((ROOT / "tokkit").rglob("*.py")) + list((ROOT / "cli").rglob("*.py")):
        if f.name == "hf_models.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if name.startswith("Auto") or name.endswith(("Model", "Tokenizer", "Config", "ForCausalLM")):
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno} {name}.from_pretrained")
    assert not offenders, offenders


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from click.testing import CliRunner
    from conftest import code_and_pickle_copies, tiny_llama

    from tokkit import load_tokenizer
    from tokkit_cli.main import cli

    d = tmp_path_factory.mktemp("safe")
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(d / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    good = tiny_llama(d / "good", load_tokenizer(d / "tok"))
    sentinel = d / "SENTINEL"
    evil, pickled = code_and_pickle_copies(good, d, _EVIL.format(sentinel=str(sentinel)))
    return {"tok": d / "tok", "good": good, "evil": evil, "sentinel": sentinel, "pickled": pickled, "dir": d}


def test_the_evil_folder_really_runs_code_when_trusted(models, tmp_path):
    """The fixture is live: transformers with trust_remote_code=True imports evil.py (so the refusals below matter)."""
    code = ("import sys\nfrom transformers import AutoConfig\n"
            f"AutoConfig.from_pretrained({str(models['evil'])!r}, trust_remote_code=True)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert models["sentinel"].exists()
    models["sentinel"].unlink()


def _cmds(m, kind):
    """Three commands as real processes (the matrix runs every model command in-process on the same folders)."""
    f = str(m[kind])
    cmds = [["bytes", "score", f, "hello"], ["eval-lm", f, "--text", str(TXT)],
            ["transplant", "--src", f, "--dst", str(m["tok"]), "-o", "out"]]
    return cmds if kind == "evil" else cmds[:1]


@pytest.mark.parametrize("kind, needle", [("evil", "auto_map"), ("pickled", "pickle")])
def test_a_folder_with_code_or_pickles_is_refused_by_every_model_command(models, tmp_path, kind, needle):
    """Real processes, stdin answering ``y`` to any prompt: exit 2, one line, no sentinel, nothing written."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HF_MODULES_CACHE": str(tmp_path / "mods")}
    for args in _cmds(models, kind):
        work = tmp_path / args[0]
        work.mkdir()
        r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], cwd=work, env=env, input="y\ny\n",
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, (args, r.stderr[-2000:])
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, r.stderr)
        assert not models["sentinel"].exists(), args
        assert list(work.iterdir()) == [], args


def test_the_loader_refuses_directly_and_loads_a_good_folder(models):
    from tokkit.errors import FormatError
    from tokkit.hf_models import load_causal_lm, load_hf_tokenizer

    with pytest.raises(FormatError, match="auto_map"):
        load_causal_lm(models["evil"])
    with pytest.raises(FormatError, match="auto_map"):
        load_hf_tokenizer(models["evil"])
    with pytest.raises(FormatError, match="pickle"):
        load_causal_lm(models["pickled"])
    assert not models["sentinel"].exists()
    lm = load_causal_lm(models["good"])
    assert lm.get_input_embeddings().weight.shape[0] == 300 and not lm.training


def test_nan_weights_are_found_before_the_work(models, tmp_path):
    import torch
    from click.testing import CliRunner
    from safetensors.torch import load_file, save_file

    from tokkit_cli.main import cli

    bad = tmp_path / "nan"
    shutil.copytree(models["good"], bad)
    w = load_file(bad / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    w[name][1, 2] = float("nan")
    w[name][0, 0] = float("inf")
    save_file(w, bad / "model.safetensors", metadata={"format": "pt"})
    for args in (["bytes", "score", str(bad), "hi"], ["embeddings", str(bad)], ["eval-lm", str(bad), "--text", str(TXT)]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and name in r.stderr and "2 NaN or infinite" in r.stderr, (args, r.output)
