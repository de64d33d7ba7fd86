"""The tokenizer handle: batch == loop, special tokens refused by default, pickling, pipelines, HF export."""

from __future__ import annotations

import pickle

import pytest

from conftest import cached_tokenizer, need_fixture
from tokkit import load_tokenizer
from tokkit.errors import SpecialTokenError

DOCS = [
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé and emoji 🤗 survive; so do   runs of spaces\n\n",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "",
]


@pytest.mark.parametrize("alias", ["gpt2", "mistral", "llama3", "tekken"])
def test_batch_equals_loop(alias):
    need_fixture(alias)
    tok = cached_tokenizer(alias)
    assert tok.encode_batch(DOCS) == [tok.encode(d) for d in DOCS]


@pytest.mark.parametrize("alias", ["gpt2", "mistral", "llama3"])
def test_special_strings_refused_unless_allowed(alias):
    need_fixture(alias)
    tok = cached_tokenizer(alias)
    eos = tok.vocab.specials[[s.role for s in tok.vocab.specials].index("eos")]
    text = f"end of doc{eos.text}next"
    with pytest.raises(SpecialTokenError, match="allowed_special"):
        tok.encode(text)
    ids = tok.encode(text, allowed_special={eos.text})
    assert eos.id in ids
    if alias == "mistral":  # each piece as sentencepiece encodes a text (dummy prefix): mistral-common, the HF files
        sp = tok.native
        assert ids == sp.encode("end of doc") + [eos.id] + sp.encode("next")
        assert tok.decode_bytes(ids) == b"end of doc</s> next"
    else:
        assert tok.decode_bytes(ids) == text.encode()


def test_add_special_tokens_adds_bos():
    need_fixture("mistral")
    assert cached_tokenizer("mistral").encode("Hello world", add_special_tokens=True) == [1, 22557, 1526]
    need_fixture("llama2")
    assert cached_tokenizer("llama2").encode("Hello world", add_special_tokens=True) == [1, 15043, 3186]


@pytest.mark.parametrize("alias", ["gpt2", "mistral", "llama3", "tekken"])
def test_pickle_roundtrip_is_small_and_equal(alias):
    need_fixture(alias)
    tok = cached_tokenizer(alias)
    blob = pickle.dumps(tok)
    assert len(blob) < 2000, "the handle pickles as its source, not as its tables"
    assert pickle.loads(blob).encode(DOCS[1]) == tok.encode(DOCS[1])


def test_datasets_map_with_processes(tmp_path):
    need_fixture("llama3")
    datasets = pytest.importorskip("datasets")
    tok = cached_tokenizer("llama3")
    ds = datasets.Dataset.from_dict({"text": DOCS * 4})
    out = ds.map(lambda b: {"ids": tok.encode_batch(b["text"])}, batched=True, num_proc=2, cache_file_name=str(tmp_path / "c.arrow"))
    assert out["ids"] == [tok.encode(d) for d in DOCS * 4]


def test_dataloader_workers():
    need_fixture("gpt2")
    torch = pytest.importorskip("torch")
    tok = cached_tokenizer("gpt2")

    class Docs(torch.utils.data.Dataset):
        def __len__(self):
            return len(DOCS)

        def __getitem__(self, i):
            return tok.encode(DOCS[i])

    loader = torch.utils.data.DataLoader(Docs(), batch_size=None, num_workers=2)
    assert list(loader) == [tok.encode(d) for d in DOCS]


@pytest.mark.parametrize("alias", ["mistral", "cl100k", "tekken", "llama3"])
def test_save_to_hf_folder_loads_in_transformers(tmp_path, alias):
    need_fixture(alias)
    transformers = pytest.importorskip("transformers")
    tok = cached_tokenizer(alias)
    out = tok.save(tmp_path / alias)
    hf = transformers.AutoTokenizer.from_pretrained(out)
    for d in DOCS:
        assert hf(d, add_special_tokens=False).input_ids == tok.encode(d)
        assert hf(d).input_ids == tok.encode(d, add_special_tokens=True)  # BOS where the family adds one
    assert load_tokenizer(out).encode(DOCS[2]) == tok.encode(DOCS[2])


def test_decode_rejects_out_of_range_ids():
    need_fixture("gpt2")
    from tokkit.errors import VocabMismatchError

    with pytest.raises(VocabMismatchError, match="out of range"):
        cached_tokenizer("gpt2").decode([15496, 50257])


def test_save_keeps_the_chat_template(tmp_path, smollm2_dir):
    transformers = pytest.importorskip("transformers")
    tok = load_tokenizer(smollm2_dir)
    assert tok.chat_template and "im_start" in tok.chat_template
    hf = transformers.AutoTokenizer.from_pretrained(tok.save(tmp_path / "t"))
    text = hf.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert text.startswith("<|im_start|>") and "Hi" in text
