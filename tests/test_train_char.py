"""Character-level BPE: the cap holds over the whole vocabulary, in chars and in bytes; no dead ids; lossless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokkit.formats.hf_json import unicode_to_bytes
from tokkit.train import load_recipe, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
HARD = "Emoji 🙂 and naïve café — 中文 العربية ῼ \x00\x07 ÿ"


def _train(tmp_path, **over):
    rec = load_recipe("char-4k", overrides={"vocab_size": 1024, "held_out": 0.0, **over})
    res = train_tokenizer([TRAIN], out_dir=tmp_path / "c", recipe=rec, progress=False)
    data = json.loads((tmp_path / "c" / "tokenizer.json").read_text(encoding="utf-8"))
    return res, data


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_char_cap_in_chars_over_whole_vocab(tmp_path, cap):
    res, data = _train(tmp_path, max_token_length=cap)
    specials = {a["content"] for a in data["added_tokens"]}
    ordinary = [t for t in data["model"]["vocab"] if t not in specials and not (t.startswith("<0x") and len(t) == 6)]
    assert max(len(t) for t in ordinary) == cap  # the cap is reached, never exceeded (HF alone gives cap-1, or ignores 1-2)
    if cap >= 2:
        assert res.vocab_reached == 1024


@pytest.mark.parametrize("cap", [2, 3, 4])
def test_char_cap_in_bytes_over_whole_vocab(tmp_path, cap):
    res, data = _train(tmp_path, max_token_length=cap, max_token_unit="bytes")
    table = unicode_to_bytes()
    specials = {a["content"] for a in data["added_tokens"]}
    lengths = [len(bytes(table[c] for c in t)) for t in data["model"]["vocab"] if t not in specials]
    assert max(lengths) == cap
    # the byte-level alphabet is complete: all 256 bytes, no entry outside the byte map (no dead ids)
    assert all(c in table for t in data["model"]["vocab"] if t not in specials for c in t)
    assert sum(1 for t in data["model"]["vocab"] if len(t) == 1) == 256


def test_char_tokenizer_is_lossless_and_has_no_dead_fallback_ids(tmp_path):
    from tokenizers import Tokenizer

    _train(tmp_path, max_token_length=3)
    tok = Tokenizer.from_file(str(tmp_path / "c" / "tokenizer.json"))
    assert tok.decode(tok.encode(HARD).ids) == HARD
    vocab = tok.get_vocab()
    fallback = [t for t in vocab if t.startswith("<0x") and len(t) == 6]
    for t in fallback:  # a fallback id for an ASCII byte exists only when that character is not a token
        b = int(t[3:5], 16)
        assert b >= 0x80 or chr(b) not in vocab
    assert len([t for t in fallback if int(t[3:5], 16) >= 0x80]) == 128
    assert "<0x00>" in tok.encode("\x00").tokens


def test_char_loads_in_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    _train(tmp_path, max_token_length=3)
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "c"))
    ids = hf(HARD, add_special_tokens=False)["input_ids"]
    assert hf.decode(ids) == HARD


def test_char_recipe_requires_cap():
    from tokkit.train.recipe import RecipeError

    with pytest.raises(RecipeError, match="max_token_length"):
        load_recipe(overrides={"kind": "char"})


def test_char_4k_recipe_as_shipped_never_produces_a_longer_token(tmp_path):
    from tokenizers import Tokenizer

    res = train_tokenizer([TRAIN], out_dir=tmp_path / "c4k", recipe=load_recipe("char-4k"), progress=False)
    tok = Tokenizer.from_file(str(tmp_path / "c4k" / "tokenizer.json"))
    specials = {a.content for a in tok.get_added_tokens_decoder().values()}
    vocab = [t for t in tok.get_vocab() if t not in specials and not (t.startswith("<0x") and len(t) == 6)]
    assert max(len(t) for t in vocab) == 3  # over the whole vocabulary
    held = [json.loads(x)["text"] for x in (ROOT / "data" / "legal" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    produced = {t for e in tok.encode_batch(held + [HARD], add_special_tokens=False) for t in e.tokens}
    assert max(len(t) for t in produced if not (t.startswith("<0x") and len(t) == 6)) == 3
    # 300 KB is too little for 4,096 entries: the summary says so instead of padding silently
    assert res.vocab_reached < 4096 and any("not reached" in w for w in res.warnings)
