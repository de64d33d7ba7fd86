"""The public encode/decode calls against the reference libraries on the inputs a held-out audit found:
BOS with ``add_special_tokens``, special-token arguments of the wrong type, things that are not ids,
sentencepiece text between special tokens, and the role ids transformers reads from the config."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cached_tokenizer
from tokkit import load_tokenizer
from tokkit.errors import InputTypeError, TokkitError
from tokkit.names import ALIASES


def _transformers_on_export(tok, tmp_path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tok.save(tmp_path / tok.name))


@pytest.mark.parametrize("alias", ["llama2", "llama3", "mistral", "tekken", "gemma3"])
def test_bos_is_prepended_as_the_reference_does_also_before_a_bos_string(alias, tmp_path):
    """A text that starts with the BOS string (allowed) gets two BOS ids, as every reference and the
    export give (tokkit dropped one on Llama 3 and Tekken); plain text gets one."""
    tok = cached_tokenizer(alias)
    bos = tok.bos_token_id
    hf = _transformers_on_export(tok, tmp_path)
    for text in ("hi", f"{tok.bos_token}hi", f"{tok.bos_token}{tok.bos_token} two"):
        ids = tok.encode(text, allowed_special="all", add_special_tokens=True)
        assert ids == hf(text, add_special_tokens=True)["input_ids"], text
        assert ids == [bos, *tok.encode(text, allowed_special="all")]
        assert tok.encode_batch([text], allowed_special="all", add_special_tokens=True) == [ids]
        assert tok.encode_with_offsets(text, allowed_special="all", add_special_tokens=True)[0] == ids
    if ALIASES[alias].backend == "hf":  # the HF file itself, where its post-processor adds BOS
        n = tok.native
        if n.encode("a", add_special_tokens=True).ids[:1] == [bos]:
            assert tok.encode(f"{tok.bos_token}hi", allowed_special="all", add_special_tokens=True) == \
                n.encode(f"{tok.bos_token}hi", add_special_tokens=True).ids


def test_a_tekken_file_loaded_by_path_adds_bos_as_mistral_common():
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    path = str(cached_tokenizer("tekken")._src.path)
    by_path, ref = load_tokenizer(path), Tekkenizer.from_file(path)
    for text in ("hi", "Hello world, naïve café"):
        assert by_path.encode(text, add_special_tokens=True) == ref.encode(text, bos=True, eos=False)
        assert by_path(text)["input_ids"] == ref.encode(text, bos=True, eos=False)


@pytest.mark.parametrize("alias", ["cl100k", "qwen2", "llama2", "mistral", "tekken"])
def test_decode_refuses_what_is_not_ids(alias):
    """Floats were truncated and numeric strings parsed (``decode([15339.7])`` -> 'hello'); tiktoken raises."""
    import torch

    tok = cached_tokenizer(alias)
    good = tok.encode("hello world")
    bad = ([float(good[0]) + 0.7], [str(good[0])], "hello", b"hi", [*good, 2.5], np.array(good, dtype=np.float64),
           torch.tensor(good, dtype=torch.float32), None, 3.0, {"a": 1})
    for ids in bad:
        for call in (tok.decode, tok.decode_bytes, tok.convert_ids_to_tokens, tok.decode_tokens_bytes):
            with pytest.raises(TokkitError):
                call(ids)
    assert tok.decode(np.array(good)) == tok.decode(torch.tensor(good)) == tok.decode([np.int64(i) for i in good])
    assert tok.convert_ids_to_tokens(np.int64(good[0])) == tok.convert_ids_to_tokens(good[0])
    if alias == "cl100k":
        with pytest.raises(TypeError):  # the reference refuses too
            tok.native.decode([float(good[0]) + 0.7])


@pytest.mark.parametrize("text", ["plain text", "x<|endoftext|>y"])
def test_special_arguments_of_the_wrong_type_are_refused_on_every_text(text):
    """tiktoken raises TypeError for these whatever the text; tokkit raised only on text holding '<'
    (a str read as a set of characters there), or encoded silently."""
    tok = cached_tokenizer("cl100k")
    enc = tok.native
    for kw in ({"allowed_special": "<|endoftext|>", "disallowed_special": ()}, {"allowed_special": "ALL"},
               {"allowed_special": None}, {"disallowed_special": "none"}, {"allowed_special": {1}}):
        with pytest.raises(InputTypeError, match="allowed_special|disallowed_special"):
            tok.encode(text, **kw)
        with pytest.raises(InputTypeError):
            tok.encode_batch([text], **kw)
        if kw.get("allowed_special") not in (None, {1}):
            with pytest.raises(TypeError):
                enc.encode(text, **kw)
    # disallowed_special=None: nothing disallowed, as tiktoken tests it for truth
    assert tok.encode(text, disallowed_special=None) == enc.encode(text, disallowed_special=None)
    assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")


def test_text_containers_of_the_wrong_type_are_refused():
    tok = cached_tokenizer("qwen2")
    for bad in (None, 5, 1.5, {"a": 1}, {"a", "b"}):
        with pytest.raises(InputTypeError, match="str"):
            tok(bad)
        with pytest.raises(InputTypeError, match="list of str"):
            tok.encode_batch(bad)
    assert tok(("one", "two"))["input_ids"] == tok.encode_batch(["one", "two"])


@pytest.mark.parametrize("alias", ["gpt2", "cl100k", "o200k"])
def test_encode_single_token_takes_a_special_tokens_bytes(alias):
    tok = cached_tokenizer(alias)
    enc = tok.native
    for s in sorted(enc.special_tokens_set)[:3]:
        assert tok.encode_single_token(s.encode()) == enc.encode_single_token(s.encode()) == tok.encode_single_token(s)
    with pytest.raises(InputTypeError):
        tok.encode_single_token(5)  # bytes(5) would be five zero bytes


def test_sentencepiece_text_between_special_tokens_as_mistral_common_and_the_export(tmp_path):
    """Each piece is encoded as sentencepiece encodes a text (dummy prefix): mistral-common's practice
    between control tokens and the HF files' Prepend normalizer; ids and offsets equal transformers on
    the exported folder."""
    tok = cached_tokenizer("mistral")
    sp = tok.native
    hf = _transformers_on_export(tok, tmp_path)
    for text in ("<s>hello</s>", " <s> ", "a<s>b", "<unk>x  y</s>\n z", "</s></s>", "  two <s>  spaces", "é<s>ü"):
        ids = tok.encode(text, allowed_special="all")
        assert ids == hf(text, add_special_tokens=False)["input_ids"], text
        pieces = [p for p in text.replace("<s>", "\0<s>\0").replace("</s>", "\0</s>\0").replace("<unk>", "\0<unk>\0").split("\0")]
        want = [i for p in pieces if p for i in ([sp.piece_to_id(p)] if p in ("<s>", "</s>", "<unk>") else sp.encode(p))]
        assert ids == want, text
        got, offsets = tok.encode_with_offsets(text, allowed_special="all")
        assert got == ids
        assert offsets == [tuple(o) for o in hf(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]


@pytest.mark.parametrize("alias", ["gemma3", "smollm2", "qwen2", "llama3"])
def test_role_ids_are_the_configs_as_transformers_reads_them(alias, tmp_path):
    """Gemma 3's eos is <end_of_turn> (106) and SmolLM2's pad <|im_end|> in their tokenizer_config.json."""
    import transformers

    tok = cached_tokenizer(alias)
    for hf in (transformers.AutoTokenizer.from_pretrained(tok._src.path.rsplit("/", 1)[0]), _transformers_on_export(tok, tmp_path)):
        for role in ("bos", "eos", "pad", "unk"):
            assert getattr(tok, f"{role}_token_id") == getattr(hf, f"{role}_token_id"), role
            assert getattr(tok, f"{role}_token") == getattr(hf, f"{role}_token"), role
