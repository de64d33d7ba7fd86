"""The CLI: commands print the documented output; bad input is one line on stderr, exit code 2, no output left."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import need_fixture
from tokkit_cli.main import cli


@pytest.fixture()
def run():
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(cli, [str(a) for a in args])

    return _run


def _one_error_line(r) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("alias,ids", [("gpt2", [15496, 995]), ("mistral", [22557, 1526]), ("llama3", [9906, 1917])])
def test_vocab_prints_size_family_specials_ids(run, alias, ids):
    need_fixture(alias)
    r = run("vocab", alias)
    assert r.exit_code == 0, r.output
    assert f"'Hello world' -> {ids}" in r.output
    assert "special tokens:" in r.output and "family" in r.output
    j = json.loads(run("vocab", alias, "--json").output)
    assert j["ids"] == ids and j["size"] > 30000


def test_unknown_alias_lists_known(run):
    line = _one_error_line(run("vocab", "llama9"))
    assert "llama9" in line and "gpt2" in line and "mistral" in line


def test_missing_file(run, tmp_path):
    line = _one_error_line(run("vocab", tmp_path / "nope" / "tokenizer.json"))
    assert "does not exist" in line


def test_truncated_tokenizer_json_leaves_no_output(run, tmp_path):
    need_fixture("llama3")
    from tokkit.config import tokkit_home

    src = (tokkit_home() / "tokenizers/llama3/tokenizer.json").read_bytes()
    bad = tmp_path / "tokenizer.json"
    bad.write_bytes(src[: len(src) // 2])
    line = _one_error_line(run("vocab", bad))
    assert "not valid JSON" in line and "truncated" in line
    out = tmp_path / "exported"
    _one_error_line(run("export-tokenizer", bad, "-o", out))
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]


def test_export_refuses_existing_output_without_force(run, tmp_path):
    need_fixture("mistral")
    out = tmp_path / "mistral"
    assert run("export-tokenizer", "mistral", "-o", out).exit_code == 0
    line = _one_error_line(run("export-tokenizer", "mistral", "-o", out))
    assert "--force" in line
    assert run("export-tokenizer", "mistral", "-o", out, "--force").exit_code == 0


def test_tokenizer_larger_than_embedding_is_refused(run, tmp_path, smollm2_dir):
    need_fixture("llama3")
    out = tmp_path / "emb.safetensors"
    line = _one_error_line(run("embeddings", smollm2_dir, "--tokenizer", "llama3", "-o", out))
    assert "128256 ids but the embedding has only 49152 rows" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_embeddings_extracts_rows(run, tmp_path, smollm2_dir):
    out = tmp_path / "emb.safetensors"
    r = run("embeddings", "smollm2", "-o", out)
    assert r.exit_code == 0, r.output
    assert "49152 ids, 49152 rows x 576 dims, tied output" in r.output
    from safetensors import safe_open

    with safe_open(out, framework="pt") as f:
        assert list(f.keys()) == ["input"] and f.get_slice("input").get_shape() == [49152, 576]


def test_transplant_family_name_offline_gives_one_line(tmp_path, monkeypatch):
    """The design card's command: `tokkit transplant --src llama --dst mistral` names the checkpoint and the fix."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    r = CliRunner().invoke(cli, ["transplant", "--src", "llama", "--dst", "mistral", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: model 'llama' means meta-llama/Llama-3.2-1B")
    assert "hf download meta-llama/Llama-3.2-1B --include" in line and "available offline" in line
    assert not (tmp_path / "o").exists()


def test_train_held_out_zero_says_so_and_prints_no_blank_lines(tmp_path):
    """--held-out 0 is a choice, not a shortfall: no `pass --held-out 0.1` hint; HF's bars print no blank lines off a terminal."""
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1] / "data" / "legal" / "train.jsonl"
    r = CliRunner().invoke(cli, ["train-bpe", str(corpus), "--vocab-size", "512", "--held-out", "0", "-o", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert "held-out     none (--held-out 0: every document trained on)" in r.output
    assert "--held-out 0.1" not in r.output
    assert r.output.startswith("trained bpe tokenizer ->") and "\n\n" not in r.output, r.output


def test_help_shows_defaults_set_once_on_the_group():
    """show_default lives in the group's context settings, so every command's --help shows its defaults."""
    r = CliRunner().invoke(cli, ["eval-lm", "--help"])
    assert r.exit_code == 0 and "[default: auto]" in r.output and "[default:" in r.output.split("--segment-bytes")[1]
