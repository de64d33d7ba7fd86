"""The fast plain-text cores behind the self-check (tokkit/formats/fast_core.py, fastokens_core.py):
fastokens or quicktok, used only where their ids equal the reference library's."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokkit import load_tokenizer
from tokkit.formats import fast_core, fastokens_core
from tokkit.formats.special_policy import ORDINARY

pytest.importorskip("quicktok")

TEXTS = ["Hello wörld, naïve café 🤗", "アトリビューション—シェアアライク", "نص\u00a0حكيم\u00a0له", "trailing \n \n\t ", "e\u0301 x  ",
         "It's 'LL we'VE 12345 ½ x86_64\r\n\r\n  \n", "\u3000\u2003 tabs\t\t\n\x0b\x0c\x85 end  "]
#: where each alias's plain text goes with both fast cores installed (tekken's ids start at 1,000,
#: which fastokens' tiktoken reader refuses, so quicktok takes it)
EXPECTED = {"gpt2": "fastokens", "cl100k": "fastokens", "tekken": "quicktok", "llama3": "fastokens",
            "qwen2": "fastokens", "smollm2": "fastokens", "llama2": "fastokens", "gemma3": "fastokens"}
HF = ("llama3", "qwen2", "smollm2")


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setenv("TOKKIT_FAST_CORE", "1")


def _paragraphs():
    from test_differential import paragraphs

    return list(paragraphs())


def _reference(tok):
    """The reference library's plain-text ids: tiktoken's Encoding, or HF ``tokenizers`` for an HF file."""
    if tok.backend == "hf":
        return lambda t: tok.native.encode(t, add_special_tokens=False).ids
    return tok.native.encode_ordinary


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_fast_core_where_exact(alias, eager):
    if EXPECTED[alias] == "fastokens":
        pytest.importorskip("fastokens")
    tok = load_tokenizer(alias)
    assert tok.core == EXPECTED[alias] and tok._quick is not None
    ref = _reference(tok)
    assert tok.encode("Hello world") == ref("Hello world")  # the fast core itself answered (no added-token character)
    for text in TEXTS + _paragraphs():
        assert tok.encode(text) == tok.encode_ordinary(text) == ref(text), text[:40]
    if tok._fast is not None or tok.backend != "hf":  # (HF itself refuses lone surrogates: Llama 2, Gemma 3)
        assert tok.encode("a\ud800b") == tok._encode_plan("a\ud800b", ORDINARY, False)  # lone surrogate: the long way


@pytest.mark.parametrize("alias", ["cl100k", "tekken", "qwen2", "llama2"])
@pytest.mark.parametrize("mode", ["1", "0"])
def test_hot_path_input_types(alias, mode, monkeypatch):
    """Anything but text gets InputTypeError from encode and encode_ordinary on every core (never a
    native or attribute error from a plain-text encoder), and a str subclass the ids of its str."""
    from tokkit.errors import InputTypeError

    monkeypatch.setenv("TOKKIT_FAST_CORE", mode)
    tok = load_tokenizer(alias)
    text = "Hello world, naïve café 🤗 " * 3
    ref = _reference(tok)(text)
    assert mode == "0" or tok._hot is not None and tok.core == EXPECTED[alias]

    class Text(str):
        pass

    for call in (tok.encode, tok.encode_ordinary):
        assert call(Text(text)) == call(text) == ref
        for bad in (text.encode(), None, [text], 42, ("a", "b")):
            with pytest.raises(InputTypeError, match="found"):
                call(bad)


_CHARS = st.sampled_from(list("aZé ß\t\n\r0123456789'’.,!?-_/<>|") + ["'s", "'LL", "\u00a0", "\u3000", "\u0301", "日本", "ューション",
                                                                         "🤗", "👍🏽", "½", "٣", "لعربية", "हिन्दी", "\x0b", "\x85", "\u2028", "  ", "\n\n"])


@pytest.mark.parametrize("alias", ["gpt2", "cl100k", "llama3", "smollm2", "llama2", "gemma3"])
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(parts=st.lists(_CHARS, max_size=30))
def test_fastokens_equals_reference_on_generated_text(alias, parts, monkeypatch):
    """fastokens against the reference library on hypothesis-made strings of the pre-tokenizers' edge
    cases (contractions, digits, whitespace runs, no-break and ideographic spaces, combining marks);
    for Llama 2 and Gemma 3 (not byte-level) also SentencePiece's prefix space and byte fallback."""
    pytest.importorskip("fastokens")
    monkeypatch.setenv("TOKKIT_FAST_CORE", "fastokens")
    tok = _cached(alias)
    assert tok.core == "fastokens"
    text = "".join(parts)
    assert tok.encode(text) == _reference(tok)(text)


_TOKS: dict = {}


def _cached(alias):
    if alias not in _TOKS:
        _TOKS[alias] = load_tokenizer(alias)
    return _TOKS[alias]


def test_self_check_refuses_a_wrong_grammar(eager, monkeypatch, caplog):
    """The guard is real: give fastokens GPT-2's split pattern for cl100k's ranks and the self-check
    finds the difference, so cl100k goes to the next core (quicktok) with the reason logged."""
    pytest.importorskip("fastokens")
    tok = load_tokenizer("cl100k")
    gpt2 = load_tokenizer("gpt2").native._pat_str
    monkeypatch.setitem(fastokens_core.RESPELL, tok.native._pat_str, fastokens_core.RESPELL[gpt2])
    with caplog.at_level("INFO", logger="tokkit.formats.fast_core"):
        assert tok.core == "quicktok"
    assert "not on fastokens: self-check" in caplog.text


def test_quicktok_self_check_refuses_llama3(monkeypatch):
    """quicktok's Llama 3 gives 2 tokens for "ューション" where HF gives 5: the sample holds it, so with
    quicktok as the only fast core Llama 3 stays on tiktoken's core (the verdict is cached and read back)."""
    monkeypatch.setenv("TOKKIT_FAST_CORE", "quicktok")
    for _ in range(2):
        tok = load_tokenizer("llama3")
        assert tok._quick is None and tok.core == "tiktoken"
        assert tok.encode("ューション") == tok.native.encode("ューション", add_special_tokens=False).ids


def test_phantom_bytes_take_the_long_way(eager):
    """SmolLM2 has no token for some bytes (0x16, ...): HF drops them, fastokens refuses the text, and
    ``encode`` then takes the long way to HF's ids."""
    pytest.importorskip("fastokens")
    tok = load_tokenizer("smollm2")
    assert tok.core == "fastokens"
    for text in ["a\x16b", "x\x00y\x7f z", "plain \U00040000 text"]:
        assert tok.encode(text) == tok.encode_ordinary(text) == _reference(tok)(text)


def test_auto_switches_after_enough_text(monkeypatch):
    monkeypatch.setenv("TOKKIT_FAST_CORE", "auto")
    monkeypatch.setattr(fast_core, "AUTO_CHARS", 1000)
    tok = load_tokenizer("cl100k")
    text = TEXTS[0] * 20
    assert tok.core == "tiktoken"
    ids = [tok.encode(text) for _ in range(5)]
    assert tok.core in ("fastokens", "quicktok") and ids == [tok.encode(text)] * 5 == [tok.native.encode_ordinary(text)] * 5


@pytest.mark.parametrize("var", ["TOKKIT_FAST_CORE", "TOKKIT_QUICKTOK"])
def test_off(monkeypatch, var):
    monkeypatch.delenv("TOKKIT_FAST_CORE", raising=False)
    monkeypatch.setenv(var, "0")
    assert load_tokenizer("cl100k").core == "tiktoken"
    assert load_tokenizer("mistral").core == "sentencepiece"
    assert load_tokenizer("gemma3").core == "tokenizers"


ANGLED = ["<div class=\"x\">naïve</div>", "a <b> c <|endoftext", "if a<b and b>c: <|fim_prefix|> ok", "<|endoftext|> hi <|im_start|>"]


@pytest.mark.parametrize("alias", ["cl100k", "tekken", "qwen2"])
def test_text_with_angle_brackets_stays_on_the_fast_core(alias, eager):
    """A '<' that starts no special string to encode (HTML, comparisons, special strings read as text)
    leaves the cheap first-character test but still gets the fast core's ids, equal to the long way's
    and, for the tiktoken files, to tiktoken's; a special string to encode still takes the long way."""
    tok = load_tokenizer(alias)
    assert tok.core in ("fastokens", "quicktok")
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
