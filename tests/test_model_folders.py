"""Damaged or changed model folders, found by an audit of the model commands: each was exit 0 with wrong
numbers (transformers filling a missing tensor with random values, an integer table read as weights, a
shard with NaN outside the checked files) or a traceback; now one FormatError before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokkit.errors import FormatError
from tokkit.hf_models import load_causal_lm
from tokkit_cli.main import cli

LEGAL = Path(__file__).resolve().parents[1] / "data" / "legal" / "train.jsonl"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    from conftest import tiny_llama

    from tokkit import load_tokenizer

    d = tmp_path_factory.mktemp("folders")
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(d / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    return tiny_llama(d / "good", load_tokenizer(d / "tok"), tied=False)


def _copy(good: Path, tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    shutil.copytree(good, d)
    return d


def _config(d: Path, **change) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(change)
    (d / "config.json").write_text(json.dumps(cfg))


def _drop(d: Path, name: str) -> None:
    from safetensors.torch import load_file, save_file

    t = load_file(d / "model.safetensors")
    del t[name]
    save_file(t, d / "model.safetensors", metadata={"format": "pt"})


def _refused(d: Path, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        load_causal_lm(d)
    text = d.parent / "t.txt"
    text.write_text("hello world, a held-out sentence\n")
    r = CliRunner().invoke(cli, ["eval-lm", str(d), "--text", str(text), "--threads", "1"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output


def test_the_good_folder_loads(good):
    assert load_causal_lm(good).get_input_embeddings().weight.shape[0] > 256


def test_a_tensor_the_model_needs_but_the_weights_lack(good, tmp_path):
    head = _copy(good, tmp_path, "no_head")
    _drop(head, "lm_head.weight")  # untied config, no head: transformers drew a random one (2.5x the bits/byte)
    _refused(head, "lm_head.weight.*tie_word_embeddings")
    layer = _copy(good, tmp_path, "no_layer")
    _drop(layer, "model.layers.0.mlp.up_proj.weight")
    _refused(layer, "up_proj")


def test_config_checked_before_transformers_reads_it(good, tmp_path):
    for name, change, match in (("layers", {"num_hidden_layers": 10 ** 9}, "num_hidden_layers"),
                                ("neg", {"vocab_size": -5}, "vocab_size"), ("str", {"hidden_size": "16"}, "hidden_size"),
                                ("type", {"model_type": "nosuchmodel"}, "model_type"),
                                ("rows", {"vocab_size": 400}, "disagrees with the weights")):
        d = _copy(good, tmp_path, name)
        _config(d, **change)
        _refused(d, match)
    for name, text, match in (("notjson", "{nope", "not valid JSON"), ("list", "[1, 2]", "not an object")):
        d = _copy(good, tmp_path, name)
        (d / "config.json").write_text(text)
        _refused(d, match)


def test_a_sharded_index_names_only_plain_files_that_exist(good, tmp_path):
    from safetensors.torch import load_file

    names = sorted(load_file(good / "model.safetensors"))
    for name, target, match in (("sub", "sub/model.safetensors", "not plain file names"),
                                ("up", "../model.safetensors", "not plain file names"),
                                ("gone", "model-00002-of-00002.safetensors", "not a file")):
        d = _copy(good, tmp_path, name)
        weight_map = {n: "model.safetensors" for n in names}
        weight_map[names[0]] = target
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
        _refused(d, match)


def test_an_integer_embedding_is_no_weights(good, tmp_path):
    """The header retyped F32 -> I32: the same bytes read as integers (bits/byte 1.8e10, exit 0, before)."""
    d = _copy(good, tmp_path, "i32")
    p = d / "model.safetensors"
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["model.embed_tokens.weight"]["dtype"] = "I32"
    new = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    assert len(new) == n
    p.write_bytes(raw[:8] + new + raw[8 + n:])
    _refused(d, "stored as I32")
    r = CliRunner().invoke(cli, ["embeddings", str(d)])
    assert r.exit_code == 2 and "float" in r.output, r.output
