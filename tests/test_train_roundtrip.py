"""Property: every trained kind is lossless on arbitrary text (hypothesis), in tokenizers and via tokkit."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokkit.train import load_recipe, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
KINDS = {
    "bpe-domain": {"kind": "bpe", "domain_token_sets": ["legal", "markup"]},
    "char-chars": {"kind": "char", "max_token_length": 3},
    "char-bytes": {"kind": "char", "max_token_length": 3, "max_token_unit": "bytes"},
    "two-stage": {"kind": "supertoken"},
    "random-split": {"kind": "supertoken", "supertoken": {"method": "random_split"}},
}


@pytest.fixture(scope="module")
def tokenizers_by_kind(tmp_path_factory):
    from tokenizers import Tokenizer

    base = tmp_path_factory.mktemp("rt")
    out = {}
    for name, over in KINDS.items():
        rec = load_recipe(overrides={"vocab_size": 1024, "held_out": 0.0, **over})
        train_tokenizer([TRAIN], out_dir=base / name, recipe=rec, progress=False)
        out[name] = Tokenizer.from_file(str(base / name / "tokenizer.json"))
    return out


# text with legal markers, whitespace runs, emoji, rare scripts and control characters
_pieces = st.sampled_from(["§ 1983", " U.S.C.", "(a)", " thereof", "**", "  ", "\n\n", "\t", "🙂", "ῼ", "中文", "\x00", "é", "ÿ"])
_text = st.lists(st.one_of(st.text(max_size=12), _pieces), max_size=12).map("".join)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_text)
def test_lossless_on_arbitrary_text(tokenizers_by_kind, kind, text):
    tok = tokenizers_by_kind[kind]
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids, skip_special_tokens=False) == text
