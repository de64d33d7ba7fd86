"""Special tokens per alias, against the reference library of each family.

The table says, for every alias, whether the reference prepends a beginning-of-text token when
special tokens are added, and which library is the reference:

* tiktoken (gpt2, cl100k, o200k): ``Encoding.encode`` never adds one;
* mistral-common 1.13.1 (mistral, tekken): ``encode(text, bos=True, eos=False)``, as its request
  encoders call it; decoding ignores control tokens by default;
* transformers (llama2, llama3, qwen2, gemma3, smollm2): the official ``tokenizer.json`` post-processor
  of the model repo named in ``tokkit.names`` (Meta's Llama 3 files use a ``TemplateProcessing`` with
  ``<|begin_of_text|>``; the npm copy we ship lacks it, so tokkit adds it), checked here through the
  folder ``export-tokenizer`` writes, loaded by ``AutoTokenizer``.
"""

from __future__ import annotations

import pytest

from conftest import cached_tokenizer, need_fixture
from tokkit.config import tokkit_home
from tokkit.names import ALIASES

TEXTS = ["hi", "Hello world, naïve café 🤗", " leading space\nand lines"]

#: alias -> (reference library, BOS added with special tokens)
REFERENCE = {
    "gpt2": ("tiktoken", False),
    "cl100k": ("tiktoken", False),
    "o200k": ("tiktoken", False),
    "llama2": ("transformers", True),
    "llama3": ("transformers", True),
    "mistral": ("mistral-common", True),
    "tekken": ("mistral-common", True),
    "qwen2": ("transformers", False),
    "gemma3": ("transformers", True),
    "smollm2": ("transformers", False),
}


def test_the_table_is_the_alias_registry():
    assert {a: b for a, (_, b) in REFERENCE.items()} == {a: ALIASES[a].bos_on_encode for a in REFERENCE}


@pytest.mark.parametrize("alias", sorted(REFERENCE))
def test_bos_with_special_tokens_and_skip_on_decode(alias):
    tok = cached_tokenizer(alias)
    _, adds_bos = REFERENCE[alias]
    for text in TEXTS:
        plain = tok.encode(text)
        full = tok.encode(text, add_special_tokens=True)
        bos = tok.vocab.role_id("bos")
        assert full == ([bos] + plain if adds_bos else plain), (alias, text)
        assert tok.encode_batch([text], add_special_tokens=True) == [full]
        assert tok.decode(full, skip_special_tokens=True) == tok.decode(plain)
    eos = tok.vocab.role_id("eos")
    assert eos is not None and tok.decode([eos], skip_special_tokens=True) == ""


@pytest.mark.parametrize("alias", ["gpt2", "cl100k", "o200k"])
def test_tiktoken_reference(alias):
    tok = cached_tokenizer(alias)
    enc = tok.native  # tiktoken.Encoding built from the pinned rank file
    special = sorted(enc.special_tokens_set)[0]
    text = f"a {special} b"
    assert tok.encode_ordinary(text) == enc.encode_ordinary(text)
    assert tok.encode(text, disallowed_special=()) == enc.encode(text, disallowed_special=())
    assert tok.encode(text, allowed_special={special}) == enc.encode(text, allowed_special={special})
    assert tok.encode("hi", add_special_tokens=True) == enc.encode("hi")
    assert len(tok) == tok.vocab_size == enc.n_vocab


def test_mistral_common_reference():
    import mistral_common as mc
    from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    assert mc.__version__ == "1.13.1"
    for alias, ref in (("tekken", Tekkenizer.from_file), ("mistral", SentencePieceTokenizer)):
        tok = cached_tokenizer(alias)
        r = ref(str(tokkit_home() / ALIASES[alias].fixture))
        for text in TEXTS:
            ids = tok.encode(text, add_special_tokens=True)
            assert ids == r.encode(text, bos=True, eos=False), (alias, text)
            assert tok.decode(ids + [tok.vocab.role_id("eos")], skip_special_tokens=True) == r.decode(
                ids + [tok.vocab.role_id("eos")]), (alias, text)


@pytest.mark.parametrize("alias", ["llama2", "llama3", "mistral", "tekken", "qwen2", "gemma3", "smollm2", "cl100k"])
def test_exported_folder_adds_what_the_reference_adds(alias, tmp_path):
    """export-tokenizer's post-processor: AutoTokenizer on the written folder gives the same ids and decoding."""
    import transformers

    tok = cached_tokenizer(alias)
    tok.save(tmp_path / alias)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path / alias)
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=True)
        assert hf(text)["input_ids"] == ids, (alias, text)
        assert hf.decode(ids, skip_special_tokens=True) == tok.decode(ids, skip_special_tokens=True), (alias, text)


def test_len_and_vocab_size():
    need_fixture("llama3")
    tok = cached_tokenizer("llama3")
    assert len(tok) == tok.vocab_size == 128256
