"""Supertokens: stock-loadable, lossless, multi-word tokens within the word cap, fewer tokens than plain BPE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.supertoken import R2_PATTERN, word_count

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
HELDOUT = ROOT / "data" / "legal" / "heldout.jsonl"
HARD = "Emoji 🙂 and naïve café — 中文 العربية ῼ\t\ttabs\n\n  spaces   end "


def _docs(p: Path) -> list[str]:
    return [json.loads(line)["text"] for line in p.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("super")
    out = {}
    for name, over in (("plain", {"kind": "bpe"}), ("two_stage", {"kind": "supertoken"}),
                       ("random_split", {"kind": "supertoken", "supertoken": {"method": "random_split"}})):
        rec = load_recipe(overrides={"vocab_size": 2048, "held_out": 0.0, **over})
        train_tokenizer([TRAIN], out_dir=base / name, recipe=rec, progress=False)
        out[name] = base / name
    return out


def _tokens(folder: Path, docs: list[str]) -> int:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return sum(len(e.ids) for e in tok.encode_batch(docs))


@pytest.mark.parametrize("method", ["two_stage", "random_split"])
def test_supertokens_load_in_stock_libraries_and_round_trip(trained, method):
    from tokenizers import Tokenizer

    transformers = pytest.importorskip("transformers")
    folder = trained[method]
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert tok.get_vocab_size() == len(hf) == 2048
    for doc in _docs(HELDOUT) + [HARD]:
        ids = tok.encode(doc).ids
        assert tok.decode(ids) == doc
        assert hf(doc, add_special_tokens=False)["input_ids"] == ids
        assert hf.decode(ids) == doc


def test_two_stage_has_multiword_tokens_within_the_caps(trained):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(trained["two_stage"] / "tokenizer.json"))
    texts = [tok.decode([i]) for i in range(tok.get_vocab_size())]
    multi = [t for t in texts if word_count(t) >= 2]
    assert len(multi) > 100
    assert max(word_count(t) for t in texts) <= 4
    assert not any(": " in t for t in texts)
    data = json.loads((trained["two_stage"] / "tokenizer.json").read_text())
    assert data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == R2_PATTERN


def test_supertokens_use_fewer_tokens_than_plain_bpe_of_the_same_size(trained):
    held = _docs(HELDOUT)
    plain = _tokens(trained["plain"], held)
    # On this 300 KB sample at 2,048 entries the gain is small (two_stage -7.0%, random_split -0.7%):
    # stage 1 is only 1,024 entries. At 32k on the 13 MB licensedcode corpus two_stage uses 41% fewer
    # tokens than plain BPE (docs/training.md, measured with `tokkit compare`).
    assert _tokens(trained["two_stage"], held) < 0.95 * plain
    assert _tokens(trained["random_split"], held) < plain


def test_special_token_strings_in_the_corpus_never_join_supertokens(tmp_path):
    from tokenizers import Tokenizer

    corpus = tmp_path / "c.txt"
    corpus.write_text("<|end|> of the licence <|end|> of the licence. " * 200 + TRAIN.read_text(encoding="utf-8")[:50_000])
    train_tokenizer([corpus], out_dir=tmp_path / "s", recipe=load_recipe(overrides={"kind": "supertoken", "vocab_size": 700}),
                    progress=False)
    tok = Tokenizer.from_file(str(tmp_path / "s" / "tokenizer.json"))
    assert not [t for t in tok.get_vocab() if "<|end|>" in t and t != "<|end|>"]
    assert tok.encode("<|end|> of the licence").ids[0] == 1
