"""Issue 30's defects, each against the reference library: tiktoken's special-token arguments (D1, D2, M1),
``skip_special_tokens`` as ``tokenizers``/transformers skip (D3), sentencepiece's unknown piece (M2),
and decode's range check on the native path (M3)."""

from __future__ import annotations

import pytest

from conftest import cached_tokenizer
from tokkit.config import tokkit_home
from tokkit.errors import SpecialTokenError, VocabMismatchError
from tokkit.names import ALIASES


def _tiktoken_or_error(enc, text, **kw):
    try:
        return enc.encode(text, **kw)
    except ValueError:
        return "raises"


def _ours_or_error(tok, text, **kw):
    try:
        return tok.encode(text, **kw)
    except SpecialTokenError:
        return "raises"


def test_d1_partial_allowed_with_disallowed_empty():
    tok = cached_tokenizer("cl100k")
    kw = dict(allowed_special={"<|fim_prefix|>"}, disallowed_special=())
    text = "<|endoftext|> hello <|fim_prefix|>"
    assert tok.encode(text, **kw) == tok.native.encode(text, **kw) == [27, 91, 8862, 728, 428, 91, 29, 24748, 220, 100258]
    assert tok.encode_batch([text, "x"], **kw) == [tok.native.encode(text, **kw), [87]]


def test_d2_explicit_disallowed_set_checks_only_its_strings():
    tok = cached_tokenizer("cl100k")
    text = "x<|endoftext|>y"
    kw = dict(disallowed_special={"<|fim_middle|>"})
    assert tok.encode(text, **kw) == tok.native.encode(text, **kw) == [87, 27, 91, 8862, 728, 428, 91, 29, 88]
    with pytest.raises(SpecialTokenError):
        tok.encode("<|fim_middle|>", **kw)


def test_m1_allowed_and_disallowed_raises_as_tiktoken():
    tok = cached_tokenizer("cl100k")
    kw = dict(allowed_special={"<|endoftext|>"}, disallowed_special={"<|endoftext|>"})
    assert _tiktoken_or_error(tok.native, "a<|endoftext|>", **kw) == "raises"
    with pytest.raises(SpecialTokenError, match="both allowed_special and disallowed_special"):
        tok.encode("a<|endoftext|>", **kw)
    assert tok.encode("a", **kw) == tok.native.encode("a", **kw)  # only a string in the text raises


def test_special_arguments_same_rule_on_every_backend():
    """One text, every backend: the policy decides alike (raise or not, which strings are special)."""
    for alias in ("llama3", "qwen2", "llama2", "gemma3", "mistral", "tekken"):
        tok = cached_tokenizer(alias)
        a, b = [s for s in tok.vocab.specials if s.text][:2]
        text = f"x {a.text} y {b.text} z"
        ids = tok.encode(text, allowed_special={b.text}, disallowed_special=())
        assert ids.count(b.id) == 1 and a.id not in ids, alias
        with pytest.raises(SpecialTokenError):
            tok.encode(text, allowed_special={b.text})
        assert tok.encode(text, disallowed_special={"<never a special>"}) == tok.encode_ordinary(text), alias
        assert tok.encode_batch([text], allowed_special={b.text}, disallowed_special=()) == [ids], alias


def test_d3_skip_special_tokens_keeps_unflagged_added_tokens():
    import transformers

    tok = cached_tokenizer("qwen2")
    ids = [151667, 10393, 151668]
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tokkit_home() / ALIASES["qwen2"].fixture))
    assert tok.decode(ids, skip_special_tokens=True) == tok.native.decode(ids, skip_special_tokens=True) \
        == hf.decode(ids, skip_special_tokens=True) == "<think>plan</think>"
    eos = tok.vocab.role_id("eos")
    assert tok.decode([eos, 10393], skip_special_tokens=True) == "plan"


def test_d3_gemma_unflagged_added_tokens():
    tok = cached_tokenizer("gemma3")
    added = tok.native.get_added_tokens_decoder()
    plain = sorted(i for i, t in added.items() if not t.special)
    special = sorted(i for i, t in added.items() if t.special)
    assert len(plain) > 6000
    ids = [*plain[:50], *plain[-50:], *special[:20], 9259]
    assert tok.decode(ids, skip_special_tokens=True) == tok.native.decode(ids, skip_special_tokens=True)
    assert tok.decode(ids) == tok.native.decode(ids, skip_special_tokens=False)


def test_m2_sentencepiece_unknown_piece():
    tok = cached_tokenizer("mistral")
    sp = tok.native
    assert tok.decode([0]) == sp.decode([0]) == " ⁇ "
    ids = tok.encode("Hello world, naïve café 🤗")
    for got in (ids, [0, *ids], [*ids[:3], 0, *ids[3:]], ids[:-2], [243, 162]):  # unknown, cut UTF-8
        assert tok.decode(got) == sp.decode(got), got
    # control pieces keep their text (as transformers and tokenizers print them); skipping drops them and <unk>
    assert tok.decode([1, *ids, 2]) == "<s> " + sp.decode(ids) + "</s>"
    assert tok.decode([1, 0, *ids, 2], skip_special_tokens=True) == sp.decode(ids)


@pytest.mark.parametrize("alias", ["cl100k", "qwen2", "smollm2", "llama2", "mistral", "tekken"])
def test_decode_range_check_on_the_native_path(alias):
    import numpy as np

    tok = cached_tokenizer(alias)
    n = len(tok)
    ids = tok.encode("range check")
    for bad in ([*ids, n], [-1, *ids], [*ids, 2**40]):
        with pytest.raises(VocabMismatchError, match="out of range"):
            tok.decode(bad)
        with pytest.raises(VocabMismatchError, match="out of range"):
            tok.decode_bytes(bad)
    assert tok.decode(np.array(ids)) == tok.decode(ids) == tok.decode([np.int64(i) for i in ids]) == "range check"
    with pytest.raises(VocabMismatchError, match="integers"):
        tok.decode([*ids, "x"])
