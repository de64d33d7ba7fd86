"""tiktoken export is exact: zero segmentation differences against the HF tokenizer on real held-out text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tokkit_cli.main import cli

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.tiktoken_export import ExportError, to_tiktoken

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
HELDOUT = ROOT / "data" / "legal" / "heldout.jsonl"
HARD = "Emoji 🙂 and naïve café — 中文 العربية ῼ\t\ttabs\n\n  spaces   end  it's 12345 x"


def _docs(p):
    return [json.loads(x)["text"] for x in p.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("tt") / "plain"
    train_tokenizer([TRAIN], out_dir=out, recipe=load_recipe(overrides={"vocab_size": 4096, "held_out": 0.0}), progress=False)
    return out


def test_hf_to_tiktoken_zero_differences(plain):
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(plain / "tokenizer.json"))
    enc = to_tiktoken(hf)
    docs = _docs(HELDOUT) + _docs(TRAIN) + [HARD]
    lines = [line for d in docs for line in d.splitlines()]
    texts = docs + lines
    hf_ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    tk_ids = enc.encode_ordinary_batch(texts)
    diffs = sum(a != b for a, b in zip(hf_ids, tk_ids))
    assert diffs == 0 and len(texts) > 1000
    assert enc.encode("<|end|>", allowed_special="all") == [1]


def test_export_cli_writes_loadable_rank_file(plain, tmp_path):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    out = tmp_path / "legal.tiktoken"
    r = CliRunner().invoke(cli, ["export-tiktoken", str(plain), "-o", str(out), "--verify", str(HELDOUT)])
    assert r.exit_code == 0, r.output
    assert "verified: 11 texts segment identically" in r.output
    meta = json.loads(Path(str(out) + ".json").read_text())
    enc = tiktoken.Encoding("x", pat_str=meta["pat_str"], mergeable_ranks=load_tiktoken_bpe(str(out)),
                            special_tokens=meta["special_tokens"])
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(plain / "tokenizer.json"))
    for d in _docs(HELDOUT):
        assert enc.encode_ordinary(d) == hf.encode(d, add_special_tokens=False).ids


def test_export_refuses_what_cannot_be_exact(tmp_path):
    from tokenizers import Tokenizer

    dom = tmp_path / "dom"
    train_tokenizer([TRAIN], out_dir=dom, recipe=load_recipe("legal-32k", overrides={"vocab_size": 1024, "held_out": 0.0}), progress=False)
    with pytest.raises(ExportError, match="not produced by any merge"):
        to_tiktoken(Tokenizer.from_file(str(dom / "tokenizer.json")))
    out = tmp_path / "x.tiktoken"
    r = CliRunner().invoke(cli, ["export-tiktoken", str(dom), "-o", str(out)])
    assert r.exit_code == 2 and "domain tokens" in r.output and not out.exists()
    sup = tmp_path / "sup"
    train_tokenizer([TRAIN], out_dir=sup, recipe=load_recipe("supertoken-32k", overrides={"vocab_size": 1024, "held_out": 0.0}),
                    progress=False)
    with pytest.raises(ExportError, match="supertoken"):
        to_tiktoken(Tokenizer.from_file(str(sup / "tokenizer.json")))
