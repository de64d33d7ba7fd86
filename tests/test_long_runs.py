"""Text with a whitespace run of a million characters: tiktoken's core panics on it (fancy-regex stack
overflow), so tokkit encodes it around that core (tokkit/formats/long_runs.py) with the reference's ids.

Oracles: HF ``tokenizers`` on the same file; for the tiktoken encodings, tiktoken itself on the pieces
the split pattern makes (``"hello"``, the run less its last space, ``" x"``), the run encoded by
``_encode_single_piece`` (BPE with no regex, so no overflow)."""

from __future__ import annotations

import pytest

from tokkit import load_tokenizer
from tokkit.errors import ResourceError
from tokkit.formats import fast_core, fastokens_core
from tokkit.formats.long_runs import LONG_RUN, has_long_run

N = 1_000_001  # past the ~999,999 characters at which tiktoken's core overflows


def test_has_long_run_boundaries():
    run = " " * LONG_RUN
    assert has_long_run(run) and has_long_run("x" + run) and has_long_run(run + "x") and has_long_run("a\n" + "\t" * LONG_RUN)
    assert not has_long_run(run[1:]) and not has_long_run(("x" + run[1:]) * 3)
    assert has_long_run(" \u3000\u00a0\n" * (LONG_RUN // 4))  # any mix of whitespace
    assert not has_long_run("x" * (2 * LONG_RUN))


@pytest.mark.parametrize("alias", ["cl100k", "tekken"])
def test_tiktoken_encoding_with_a_million_spaces(alias):
    pytest.importorskip("fastokens")
    tok = load_tokenizer(alias)
    n = tok.native
    text = "hello" + " " * N + "x"
    oracle = n.encode_ordinary("hello") + n._encode_single_piece(b" " * (N - 1)) + n.encode_ordinary(" x")
    assert tok.encode(text) == tok.encode_ordinary(text) == oracle
    assert tok.encode_batch(["a b", text]) == [n.encode_ordinary("a b"), oracle]
    special = sorted(tok._policy.texts)[0]
    sid = n.encode_single_token(special)
    assert tok.encode(special + text + special, allowed_special="all") == [sid, *oracle, sid]
    assert tok.encode(special + text, disallowed_special=()) == n.encode_ordinary(special) + oracle


def test_hf_file_with_a_million_spaces_gets_hf_ids():
    tok = load_tokenizer("qwen2")
    text = "ab" + " " * N + "x<|im_start|>"
    ref = tok.native.encode(text, add_special_tokens=False).ids
    assert tok.encode(text, allowed_special="all") == ref
    assert tok.encode_batch([text], allowed_special="all") == [ref]


def test_without_fastokens_a_clear_refusal_not_a_panic(monkeypatch):
    monkeypatch.setattr(fastokens_core, "fastokens_available", lambda: False)
    monkeypatch.setenv("TOKKIT_FAST_CORE", "0")
    tok = load_tokenizer("cl100k")
    with pytest.raises(ResourceError, match=r"run of 100,000\+ whitespace characters \(from character 5\).*fastokens"):
        tok.encode("hello" + " " * N + "x")
    assert fast_core.long_run_encoder(tok) is None
    assert tok.encode("hello" + " " * 1000 + "x") == tok.native.encode_ordinary("hello" + " " * 1000 + "x")
