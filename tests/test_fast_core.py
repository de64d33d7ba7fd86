"""quicktok behind the self-check (tokkit/formats/fast_core.py): used only where its ids equal tiktoken's core."""

from __future__ import annotations

import pytest

from tokkit import load_tokenizer
from tokkit.formats import fast_core

pytest.importorskip("quicktok")

TEXTS = ["Hello wörld, naïve café 🤗", "アトリビューション—シェアアライク", "نص\u00a0حكيم\u00a0له", "trailing \n \n\t ", "e\u0301 x  "]


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setenv("TOKKIT_QUICKTOK", "1")


def _paragraphs():
    from test_differential import paragraphs

    return list(paragraphs())


@pytest.mark.parametrize("alias", ["cl100k", "tekken"])
def test_quicktok_where_exact(alias, eager):
    tok = load_tokenizer(alias)
    assert tok.core == "quicktok" and tok._quick is not None
    ref = tok.native  # tiktoken's Encoding on the same ranks
    for text in TEXTS + _paragraphs():
        assert tok.encode(text) == tok.encode_ordinary(text) == ref.encode_ordinary(text), text[:40]
    assert tok.encode("a\ud800b") == ref.encode_ordinary("a\ud800b")  # lone surrogate: the long way, as tiktoken


def test_self_check_refuses_llama3(eager, caplog):
    """quicktok's Llama 3 gives 2 tokens for "ューション" where HF gives 5: the sample holds it, so Llama 3 stays
    on tiktoken's core (the verdict is cached and read back)."""
    for _ in range(2):
        tok = load_tokenizer("llama3")
        assert tok._quick is None and tok.core == "tiktoken"
        assert tok.encode("ューション") == tok.native.encode("ューション", add_special_tokens=False).ids


def test_auto_switches_after_enough_text(monkeypatch):
    monkeypatch.setenv("TOKKIT_QUICKTOK", "auto")
    monkeypatch.setattr(fast_core, "AUTO_CHARS", 1000)
    tok = load_tokenizer("cl100k")
    text = TEXTS[0] * 20
    assert tok.core == "tiktoken"
    ids = [tok.encode(text) for _ in range(5)]
    assert tok.core == "quicktok" and ids == [tok.encode(text)] * 5 == [tok.native.encode_ordinary(text)] * 5


def test_off(monkeypatch):
    monkeypatch.setenv("TOKKIT_QUICKTOK", "0")
    assert load_tokenizer("cl100k").core == "tiktoken"
    assert load_tokenizer("mistral").core == "sentencepiece"


ANGLED = ["<div class=\"x\">naïve</div>", "a <b> c <|endoftext", "if a<b and b>c: <|fim_prefix|> ok", "<|endoftext|> hi <|im_start|>"]


@pytest.mark.parametrize("alias", ["cl100k", "tekken", "qwen2"])
def test_text_with_angle_brackets_stays_on_the_fast_core(alias, eager):
    """A '<' that starts no special string to encode (HTML, comparisons, special strings read as text)
    leaves the cheap first-character test but still gets the fast core's ids, equal to the long way's
    and, for the tiktoken files, to tiktoken's; a special string to encode still takes the long way."""
    from tokkit.formats.special_policy import ORDINARY

    tok = load_tokenizer(alias)
    assert tok.core == "quicktok"
    for text in ANGLED:
        long_way = tok._encode_plan(text, ORDINARY, False)
        assert tok.encode_ordinary(text) == tok.encode(text, disallowed_special=()) == long_way, text
        assert tok._plain(text) == long_way  # the fast core answered
        if tok.backend != "hf":
            assert long_way == tok.native.encode_ordinary(text)
    specials = sorted(tok._policy.texts)
    if specials:
        s = specials[0]
        text = f"x {s} y"
        assert tok.encode(text, allowed_special="all") == tok._encode_plan(text, tok._policy.plan(text, "all", "all"), False)
        assert s in tok.decode(tok.encode(text, allowed_special="all"))
    if tok.backend == "hf":  # plain text with '<' on an HF file: HF's own ids
        assert tok.encode(ANGLED[0]) == tok.native.encode(ANGLED[0], add_special_tokens=False).ids
