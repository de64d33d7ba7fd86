"""Lone surrogates (tokkit/formats/surrogates.py): read as U+FFFD on every backend, by tiktoken's rule;
tiktoken itself is the oracle where it is the reference, and HF/sentencepiece refuse such text natively."""

from __future__ import annotations

import pytest
from conftest import CORE_ALIASES, cached_tokenizer

from tokkit.errors import UnencodableBytesError
from tokkit.formats.surrogates import map_offsets, tiktoken_reading

#: a lone high, a lone low, a pair held as two code points (tiktoken joins it into U+1F600), one at the end,
#: and one beside a special string
TEXTS = ["a\ud800b", "x \udc00\ud83d\ude00 y\ud800", "\ud83d\ude00\ud83d", "caf\u00e9 \udfff<|endoftext|>\ud800 end"]


def _read(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@pytest.mark.parametrize("alias", CORE_ALIASES)
def test_every_call_reads_surrogates_as_tiktoken_does(alias):
    tok = cached_tokenizer(alias)
    for text in TEXTS:
        read = _read(text)
        assert "\ufffd" in read and not any("\ud800" <= c <= "\udfff" for c in read)
        want = tok.encode(read, disallowed_special=())
        assert tok.encode(text, disallowed_special=()) == tok.encode_ordinary(text) == want, text
        assert tok.encode_batch([text, "plain", text], disallowed_special=()) == [want, tok.encode("plain"), want]
        if tok.backend == "tiktoken":  # the reference applies the rule itself
            assert tok.native.encode(text, disallowed_special=()) == want
        ids, offsets = tok.encode_with_offsets(text, disallowed_special=())
        read_ids, read_offsets = tok.encode_with_offsets(read, disallowed_special=())
        assert ids == want == read_ids
        assert offsets == map_offsets(read_offsets, tiktoken_reading(text)[1])
        assert all(0 <= s <= e <= len(text) for s, e in offsets)
    with_bos = tok.encode("a\ud800b", add_special_tokens=True)
    assert with_bos == tok.encode("a\ufffdb", add_special_tokens=True) == tok("a\ud800b")["input_ids"]


def test_offsets_refer_to_the_callers_text():
    """Where tiktoken joins a pair held as two code points, the read text is one character shorter:
    the offsets still index the original text (the joined character spans both code points)."""
    tok = cached_tokenizer("cl100k")
    text = "x \udc00\ud83d\ude00 y"
    read, starts = tiktoken_reading(text)
    assert read == "x \ufffd\U0001f600 y" and starts == [0, 1, 2, 3, 5, 6, 7]
    ids, offsets = tok.encode_with_offsets(text)
    emoji = [i for i, (s, e) in enumerate(offsets) if (s, e) == (3, 5)]
    assert emoji and tok.decode([ids[i] for i in emoji]).strip() == "\U0001f600"
    assert offsets[-1][1] == len(text)


@pytest.mark.parametrize("alias", ["llama2", "mistral", "cl100k"])
def test_strict_refuses_a_surrogate(alias):
    tok = cached_tokenizer(alias)
    with pytest.raises(UnencodableBytesError, match=r"surrogate code point U\+D800 at character 1.*strict=True"):
        tok.encode("a\ud800b", strict=True)
    assert tok.encode("a\u00e9b", strict=True) == tok.encode("a\u00e9b")


@pytest.mark.parametrize("alias", ["llama2", "gemma3", "mistral"])
def test_the_native_libraries_refuse_what_tokkit_reads(alias):
    """Why the rule is tokkit's: HF tokenizers and sentencepiece raise on such text (if this starts to
    pass, their reading should become the reference for these backends)."""
    tok = cached_tokenizer(alias)
    with pytest.raises((TypeError, RuntimeError)):
        tok.native.encode("a\ud800b")
