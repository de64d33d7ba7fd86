"""tiktoken's ``Encoding`` conveniences and transformers' names on the handle, against the libraries themselves."""

from __future__ import annotations

import pytest

from conftest import cached_tokenizer
from tokkit.config import tokkit_home
from tokkit.names import ALIASES

TEXTS = ["Hello world, naïve café 🤗", "  two  spaces\n\tand a tab", "日本語のテキスト", "x"]


@pytest.mark.parametrize("alias", ["gpt2", "cl100k", "o200k"])
def test_tiktoken_conveniences(alias):
    tok = cached_tokenizer(alias)
    enc = tok.native  # the tiktoken.Encoding itself
    assert tok.n_vocab == enc.n_vocab and tok.max_token_value == enc.max_token_value
    assert tok.special_tokens_set == enc.special_tokens_set
    assert tok.eot_token == enc.eot_token
    assert tok.token_byte_values() == enc.token_byte_values()
    for text in TEXTS:
        ids = enc.encode(text)
        assert tok.decode_tokens_bytes(ids) == enc.decode_tokens_bytes(ids)
        assert [tok.decode_single_token_bytes(i) for i in ids] == [enc.decode_single_token_bytes(i) for i in ids]
        assert tok.decode_with_offsets(ids) == enc.decode_with_offsets(ids)
        for piece in {enc.decode_single_token_bytes(i) for i in ids}:
            assert tok.encode_single_token(piece) == enc.encode_single_token(piece)
    assert tok.encode_single_token("<|endoftext|>") == enc.encode_single_token("<|endoftext|>")
    with pytest.raises(KeyError):
        tok.encode_single_token("not one token at all")
    with pytest.raises(UnicodeDecodeError):  # tiktoken decodes strictly here too
        tok.decode_with_offsets(enc.encode("🤗")[:1])


def _transformers(alias):
    import transformers

    return transformers.PreTrainedTokenizerFast(tokenizer_file=str(tokkit_home() / ALIASES[alias].fixture))


@pytest.mark.parametrize("alias", ["llama3", "qwen2", "gemma3", "llama2"])
def test_transformers_names(alias):
    tok = cached_tokenizer(alias)
    hf = _transformers(alias)
    ids = tok.encode(TEXTS[0])
    assert tok.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    assert tok.convert_ids_to_tokens(ids[0]) == hf.convert_ids_to_tokens(ids[0])
    assert tok.tokenize(TEXTS[0]) == hf.tokenize(TEXTS[0])
    assert tok.convert_tokens_to_ids(tok.tokenize(TEXTS[0])) == ids
    assert tok.get_vocab() == hf.get_vocab()
    assert tok.batch_decode([ids, ids[:2]]) == hf.batch_decode([ids, ids[:2]])
    assert tok.decode(ids[1]) == hf.decode(ids[1]) and tok.batch_decode(ids[:3]) == hf.batch_decode(ids[:3])  # single ints
    assert tok.all_special_ids == sorted(i for i, t in tok.native.get_added_tokens_decoder().items() if t.special)
    out = tok(TEXTS[:2], add_special_tokens=False)
    ref = hf(TEXTS[:2], add_special_tokens=False)
    assert out["input_ids"] == ref["input_ids"] and out["attention_mask"] == ref["attention_mask"]
    one = tok(TEXTS[0], add_special_tokens=False, return_offsets_mapping=True)
    assert one["offset_mapping"] == hf(TEXTS[0], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]


@pytest.mark.parametrize("alias", ["llama3", "mistral", "cl100k"])
def test_role_ids_and_save_pretrained(alias, tmp_path):
    import transformers

    tok = cached_tokenizer(alias)
    folder = tok.save_pretrained(tmp_path / alias)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    assert tok.eos_token_id == hf.eos_token_id and tok.eos_token == hf.eos_token
    assert tok.bos_token_id == hf.bos_token_id
    assert tok(TEXTS[0])["input_ids"] == hf(TEXTS[0])["input_ids"]  # add_special_tokens defaults to True, as there


def test_sentencepiece_names():
    tok = cached_tokenizer("mistral")
    sp = tok.native
    ids = tok.encode(TEXTS[0])
    assert tok.tokenize(TEXTS[0]) == sp.encode(TEXTS[0], out_type=str)
    assert tok.convert_tokens_to_ids(sp.encode(TEXTS[0], out_type=str)) == ids
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (sp.bos_id(), sp.eos_id(), sp.unk_id())
    assert tok.get_vocab() == {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
