"""Nothing is downloaded that the user did not name: real processes against a fake hub on 127.0.0.1.

Aliases and paths never reach the hub (the request log stays empty, online or not); a named hub model
fetches only the config, tokenizer files and top-level safetensors weights, after one line saying what
and how big; a hub that does not answer costs one line within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"


def _env(hub_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TOKKIT_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": hub_url, "HF_HOME": str(home / "hf"), "OMP_NUM_THREADS": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def _tokkit(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def hub_repo(tmp_path_factory) -> dict[str, bytes]:
    """A tiny Llama repository as the hub holds one: what tokkit reads plus formats it must never fetch."""
    pytest.importorskip("transformers")
    from click.testing import CliRunner
    from conftest import tiny_llama

    from tokkit import load_tokenizer
    from tokkit_cli.main import cli

    d = tmp_path_factory.mktemp("hubrepo")
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(d / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    lm = tiny_llama(d / "lm", load_tokenizer(d / "tok"))
    files = {p.name: p.read_bytes() for p in lm.iterdir() if p.is_file() and not p.name.startswith(".")}
    junk = {"pytorch_model.bin": b"pickle" * 100, "model.gguf": b"GGUF" * 100, "onnx/model.onnx": b"onnx",
            "original/consolidated.safetensors": b"x" * 300, "flax_model.msgpack": b"m", "README.md": b"# tiny"}
    return {**files, **junk}


def test_aliases_and_paths_never_reach_the_hub(tmp_path):
    """Online (HF_HUB_OFFLINE unset, a live endpoint): every alias/path command makes zero hub requests."""
    empty_home = tmp_path / "empty_home"
    empty_home.mkdir()
    (tmp_path / "in").mkdir()
    cases = [  # (args, expected exit code, TOKKIT_HOME override); the failing ones are in the bad-input matrix
        (["vocab", "gpt2"], 0, None),
        (["vocab", "llama2"], 0, None),
        (["vocab", "llama3"], 2, empty_home),  # the alias's copy is missing: tokkit fetch, never the hub
    ]
    with FakeHub({}) as hub:
        for args, code, home in cases:
            env = _env(hub.url, tmp_path, **({"TOKKIT_HOME": str(home)} if home else {}))
            r = _tokkit(args, tmp_path, env)
            if code is not None:
                assert r.returncode == code, (args, r.stderr[-1500:])
            if code == 2:
                lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
                assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
            assert hub.requests == [], (args, hub.requests)


def test_a_named_hub_model_fetches_only_what_tokkit_reads(tmp_path, hub_repo):
    with FakeHub({"someone/tiny-llama": hub_repo}) as hub:
        r = _tokkit(["embeddings", "someone/tiny-llama"], tmp_path, _env(hub.url, tmp_path))
        assert r.returncode == 0, r.stderr[-2000:]
        assert "300 ids" in r.stdout
        notice = [ln for ln in r.stderr.splitlines() if "downloading" in ln]
        assert len(notice) == 1 and "someone/tiny-llama" in notice[0] and "KB" in notice[0], r.stderr
        got = hub.downloaded()
        assert got == {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                       "tokenizer_config.json", "special_tokens_map.json"}, got
        assert all(m in ("GET", "HEAD") for m, _ in hub.requests)
        assert not any(x in p for _, p in hub.requests for x in (".bin", ".gguf", ".onnx", "original/", ".msgpack"))
        # a second run is served by the cache: no request at all
        hub.requests.clear()
        r = _tokkit(["embeddings", "someone/tiny-llama"], tmp_path, _env(hub.url, tmp_path))
        assert r.returncode == 0 and hub.requests == [], (r.stderr, hub.requests)


def test_a_hub_repo_without_safetensors_is_refused_before_any_download(tmp_path, hub_repo):
    pickled = {k: v for k, v in hub_repo.items() if not k.endswith(".safetensors")}
    with FakeHub({"someone/pickled": pickled}) as hub:
        r = _tokkit(["embeddings", "someone/pickled"], tmp_path, _env(hub.url, tmp_path))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "safetensors" in lines[0], r.stderr
        assert hub.downloaded() == set()


def test_a_named_hub_tokenizer_fetches_one_file(tmp_path, hub_repo):
    with FakeHub({"someone/tiny-llama": hub_repo}) as hub:
        r = _tokkit(["vocab", "someone/tiny-llama"], tmp_path, _env(hub.url, tmp_path))
        assert r.returncode == 0 and "300" in r.stdout, r.stderr[-2000:]
        assert hub.downloaded() == {"tokenizer.json"}


def test_a_hub_that_does_not_answer_is_one_line_within_seconds(tmp_path):
    """Nothing listens at the endpoint: one line naming it, and no more than a few seconds beyond the same
    command run offline (no retry loop)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    for args in (["embeddings", "someone/tiny-llama"], ["vocab", "someone/tiny-llama"], ["embeddings", "mistral"]):
        t0 = time.perf_counter()
        _tokkit(args, tmp_path, _env(f"http://127.0.0.1:{port}", tmp_path, HF_HUB_OFFLINE="1"))
        offline = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = _tokkit(args, tmp_path, _env(f"http://127.0.0.1:{port}", tmp_path))
        took = time.perf_counter() - t0
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
        assert took - offline < 5, (args, took, offline)
        assert f"127.0.0.1:{port}" in lines[0] or "neither a local path" in lines[0], lines[0]
