"""Alias resolution: explicit path, then $TOKKIT_HOME, then the hub (never in tests); clear errors otherwise."""

from __future__ import annotations

import pytest

from conftest import need_fixture
from tokkit.errors import MissingFileError, UnknownNameError
from tokkit.names import ALIASES, get_alias, resolve_model, resolve_tokenizer

REQUIRED = ("gpt2", "cl100k", "o200k", "llama2", "llama3", "mistral", "tekken", "qwen2", "gemma3", "smollm2")


def test_registry_has_the_documented_aliases_with_hub_ids():
    for name in REQUIRED:
        a = get_alias(name)
        assert "/" in a.hf_repo and a.fixture and a.note
    assert get_alias("LLAMA3") is ALIASES["llama3"]
    assert {a.name for a in ALIASES.values() if a.model} == {"smollm2", "gemma3"}


def test_unknown_alias_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as e:
        resolve_tokenizer("llama9")
    assert all(n in str(e.value) for n in REQUIRED)


def test_explicit_path_wins_over_alias(tmp_path, monkeypatch):
    need_fixture("llama3")
    from tokkit.config import tokkit_home

    src = tokkit_home() / "tokenizers/llama3/tokenizer.json"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mistral").mkdir()  # a local folder called like an alias
    (tmp_path / "mistral" / "tokenizer.json").write_bytes(src.read_bytes())
    r = resolve_tokenizer("mistral")
    assert r.backend == "hf" and r.path == tmp_path / "mistral" / "tokenizer.json"


def test_missing_cache_gives_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKKIT_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingFileError, match="fetch_fixtures.py"):
        resolve_tokenizer("llama3")
    with pytest.raises(MissingFileError, match="fetch_fixtures.py"):
        resolve_tokenizer("cl100k")
    with pytest.raises(MissingFileError, match="--all"):
        resolve_model("gemma3")


def test_offline_hub_id_and_bad_paths_fail_clearly(tmp_path):
    with pytest.raises(MissingFileError, match="neither a local path nor reachable"):
        resolve_tokenizer("someone/some-model")
    with pytest.raises(MissingFileError, match="does not exist"):
        resolve_tokenizer(str(tmp_path / "x" / "tokenizer.json"))
    with pytest.raises(UnknownNameError, match="tokenizer only"):
        resolve_model("cl100k")


def _fake_hf_cache(root, repo: str, files: dict[str, str]):
    """An HF hub cache holding one snapshot of ``repo`` (the layout huggingface_hub reads offline)."""
    d = root / f"models--{repo.replace('/', '--')}"
    snap = d / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text("a" * 40)
    for name, text in files.items():
        (snap / name).write_text(text)
    return snap


def test_family_names_resolve_to_their_default_checkpoint(tmp_path, monkeypatch):
    """`--src llama` means meta-llama/Llama-3.2-1B: found in the local HF cache, else a one-line error."""
    from tokkit.names import DEFAULT_CHECKPOINTS

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at import
    with pytest.raises(MissingFileError) as e:
        resolve_model("llama")
    msg = str(e.value)
    assert "meta-llama/Llama-3.2-1B" in msg and "hf download meta-llama/Llama-3.2-1B" in msg
    assert "available offline" in msg and "\n" not in msg
    snap = _fake_hf_cache(tmp_path / "hub", DEFAULT_CHECKPOINTS["llama"], {"config.json": "{\"model_type\": \"llama\"}"})
    assert resolve_model("llama") == snap and resolve_model("LLAMA") == snap
    assert resolve_model("meta-llama/Llama-3.2-1B") == snap


def test_model_alias_names_the_converted_folder(smollm2_dir):
    assert resolve_model("smollm2") == smollm2_dir and (smollm2_dir / "config.json").exists()
