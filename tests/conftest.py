"""Shared fixtures: the registry cache (fetched by scripts/fetch_fixtures.py) and tiny real tokenizers."""

from __future__ import annotations

import functools
import os
import signal

import pytest


@pytest.fixture(autouse=True)
def _python_sigint(request):
    """Every test starts with Python's own SIGINT handler. Some libraries run in-process by a test (Ray,
    torch.distributed) leave SIGINT ignored, and an ignored signal stays ignored in every process started
    afterwards: the tests that press Ctrl-C on a tokkit process (which of them runs after such a test
    depends on the order, e.g. under pytest-xdist) need a process that gets it, as in a terminal."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        import warnings

        warnings.warn(f"{request.node.nodeid} left SIGINT's handler at {signal.getsignal(signal.SIGINT)!r}")


os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub

from tokkit.config import tokkit_home  # noqa: E402
from tokkit.names import ALIASES  # noqa: E402

CORE_ALIASES = ("gpt2", "cl100k", "o200k", "llama2", "llama3", "mistral", "tekken", "qwen2", "gemma3", "smollm2")


def _missing(alias: str) -> bool:
    from tokkit.fixtures import tiktoken_cache_ready

    a = ALIASES[alias]
    if a.backend == "tiktoken":
        return not tiktoken_cache_ready(a.fixture)
    return not (tokkit_home() / a.fixture).exists()


def need_fixture(alias: str) -> None:
    """Skip (or fail under TOKKIT_REQUIRE_FIXTURES=1, as in CI) when an alias's files are absent."""
    if _missing(alias):
        msg = f"fixture for {alias!r} not in {tokkit_home()}: run `python scripts/fetch_fixtures.py`"
        if os.environ.get("TOKKIT_REQUIRE_FIXTURES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def smollm2_dir():
    """The SmolLM2-135M HF folder converted from the registry GGUF."""
    need_fixture("smollm2")
    return tokkit_home() / ALIASES["smollm2"].model


@pytest.fixture(scope="session")
def gemma3_dir():
    """Gemma-3-270M (fetched only with --all): skipped cleanly when absent."""
    d = tokkit_home() / ALIASES["gemma3"].model
    if not (d / "config.json").exists():
        pytest.skip("Gemma-3-270M not fetched: run `python scripts/fetch_fixtures.py --all`")
    return d


@functools.lru_cache(maxsize=None)
def _load(alias: str):
    from tokkit import load_tokenizer

    return load_tokenizer(alias)


def cached_tokenizer(alias: str):
    """A real tokenizer by alias, loaded once per test session (Gemma-3's takes seconds to parse)."""
    need_fixture(alias)
    return _load(alias)


def tiny_llama(path, tok, *, hidden: int = 16, tied: bool = True, rows: int | None = None, seed: int = 0,
               layers: int = 1):
    """A ``layers``-layer (default 1) Llama with ``tok``'s vocabulary (``rows`` embedding rows) saved as an HF folder at ``path``."""
    import torch
    import transformers

    from tokkit.hf_folder import write_tokenizer_files

    v = tok.vocab
    cfg = transformers.LlamaConfig(vocab_size=rows or len(v), hidden_size=hidden, intermediate_size=2 * hidden,
                                   num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=layers,
                                   tie_word_embeddings=tied, bos_token_id=v.role_id("bos"), eos_token_id=v.role_id("eos"))
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    write_tokenizer_files(tok.to_hf(), v, path)
    return path


def pytest_collection_modifyitems(config, items):
    """``cuda``-marked tests run where torch sees a CUDA device (or ``TOKKIT_CUDA_TEST_DEVICE`` names one); else skip."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked or os.environ.get("TOKKIT_CUDA_TEST_DEVICE"):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (scripts/gpu_check.sh runs `pytest -m cuda` on one)")
    for item in marked:
        item.add_marker(skip)


def killed_after_checkpoint(args: list[str], out, state, *, settle: float = 0.0) -> None:
    """Run ``tokkit ARGS -o OUT`` as a process on one thread, SIGKILL it once ``state`` (its checkpoint's state file)
    exists (plus ``settle`` seconds, to land somewhere in the following steps), and check it was killed."""
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "tokkit_cli.main", *args, "-o", str(out)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not state.exists() and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.005)
    time.sleep(settle)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run ended before the kill"


def code_and_pickle_copies(good, d, evil_py: str):
    """Two hostile copies of the model folder ``good`` under ``d``: ``evil`` (its config's ``auto_map`` points at
    ``evil.py``, which holds ``evil_py``: transformers would run it if trusted) and ``pickled`` (the weights only
    as ``pytorch_model.bin``, a pickle). Returns ``(evil, pickled)``."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file

    evil = d / "evil"
    shutil.copytree(good, evil)
    (evil / "evil.py").write_text(evil_py)
    cfg = json.loads((evil / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (evil / "config.json").write_text(json.dumps(cfg))
    pickled = d / "pickled"
    shutil.copytree(good, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    return evil, pickled
