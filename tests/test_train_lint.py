"""Lint before and after training, and the other corpus sources (parquet, streamed datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.lint import lint_recipe, lint_tokenizer

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"


def _docs() -> list[str]:
    return [json.loads(x)["text"] for x in TRAIN.read_text(encoding="utf-8").splitlines()]


def test_lint_recipe_flags_lossy_normalizer_and_word_cutting_domain_tokens():
    docs = _docs()[:10] + ["see (a), and (b)", "use ***bold*** here"]
    rec = load_recipe(overrides={"nfkc": True})
    out = lint_recipe(rec, ("(a)", "**"), docs)
    assert any(w.startswith("lossy normalizer (NFKC)") for w in out)
    cut = next(w for w in out if w.startswith("domain tokens cut"))
    assert "'(a)'" in cut and "'**'" in cut
    assert lint_recipe(load_recipe(), (), docs) == []


def test_lint_tokenizer_on_kl3m_like_pitfalls():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "\x00": 2}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_tokens([AddedToken(" ", normalized=False)])
    tok.enable_padding(direction="left", pad_id=0, pad_token="a")
    out = lint_tokenizer(tok)
    assert any("no byte-level alphabet and no byte fallback" in w for w in out)
    assert any("whitespace-only added tokens" in w for w in out)
    assert any("padding is enabled (left)" in w for w in out)
    # a byte-level vocabulary holding raw control characters has dead ids (KL3M char variants)
    bl = Tokenizer(models.BPE(vocab={"a": 0, "\x00": 1}, merges=[]))
    bl.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert any("outside the byte-level alphabet" in w for w in lint_tokenizer(bl))


def test_trained_outputs_pass_lint(tmp_path):
    from tokenizers import Tokenizer

    res = train_tokenizer([TRAIN], out_dir=tmp_path / "o", recipe=load_recipe("legal-32k", overrides={"vocab_size": 800}), progress=False)
    assert lint_tokenizer(Tokenizer.from_file(str(tmp_path / "o" / "tokenizer.json"))) == []
    assert not [w for w in res.warnings if "byte" in w or "padding" in w]


def test_parquet_source_and_streamed_dataset(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    docs = _docs()
    pq.write_table(pa.table({"body": docs}), tmp_path / "c.parquet")
    rec = load_recipe(overrides={"vocab_size": 500, "text_column": "body", "held_out": 0.0})
    a = train_tokenizer([tmp_path / "c.parquet"], out_dir=tmp_path / "a", recipe=rec, progress=False)
    datasets = pytest.importorskip("datasets")
    ds = datasets.IterableDataset.from_generator(lambda: ({"body": d} for d in docs))
    b = train_tokenizer(out_dir=tmp_path / "b", recipe=rec, iterables=[ds], progress=False)
    assert a.train_bytes == b.train_bytes == sum(len(d.encode()) for d in docs)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


def test_hf_dataset_source_streams_a_local_dataset_folder(tmp_path):
    pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "train.jsonl").write_text(TRAIN.read_text(encoding="utf-8"), encoding="utf-8")
    rec = load_recipe(overrides={"vocab_size": 500, "held_out": 0.0})
    a = train_tokenizer([f"hf:{folder}:train"], out_dir=tmp_path / "a", recipe=rec, progress=False)
    b = train_tokenizer([TRAIN], out_dir=tmp_path / "b", recipe=rec, progress=False)
    assert a.train_docs == b.train_docs == 47
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()
    half = train_tokenizer([f"hf:{folder}:train@0.5"], out_dir=tmp_path / "h", recipe=rec, progress=False)
    assert 0 < half.train_docs < 47


def test_lint_tokenizer_cli(tmp_path):
    from click.testing import CliRunner

    from conftest import need_fixture
    from tokkit_cli.main import cli

    train_tokenizer([TRAIN], out_dir=tmp_path / "t", recipe=load_recipe(overrides={"vocab_size": 400}), progress=False)
    r = CliRunner().invoke(cli, ["lint-tokenizer", str(tmp_path / "t")])
    assert r.exit_code == 0 and "0 warning(s)" in r.output
    need_fixture("gemma3")
    r = CliRunner().invoke(cli, ["lint-tokenizer", "gemma3"])  # Gemma 3 ships newline runs as added tokens
    assert r.exit_code == 1 and "whitespace-only added tokens" in r.output
    need_fixture("gpt2")
    r = CliRunner().invoke(cli, ["lint-tokenizer", "gpt2"])
    assert r.exit_code == 2 and "HF tokenizer.json files only" in r.output


def test_lint_tokenizer_cli_refuses_colliding_and_empty_vocabularies(tmp_path):
    """lint-tokenizer used to pass ('0 warning(s)') an added token on an id model.vocab gives to 'a', and a
    model.vocab with no tokens: both are refused at load, exit code 2."""
    from click.testing import CliRunner

    from tokkit_cli.main import cli

    train_tokenizer([TRAIN], out_dir=tmp_path / "t", recipe=load_recipe(overrides={"vocab_size": 400}), progress=False)
    data = json.loads((tmp_path / "t" / "tokenizer.json").read_text(encoding="utf-8"))
    a = data["model"]["vocab"]["a"]
    data["added_tokens"].append({"id": a, "content": "<coll>", "single_word": False, "lstrip": False, "rstrip": False,
                                 "normalized": False, "special": True})
    (tmp_path / "collide.json").write_text(json.dumps(data), encoding="utf-8")
    r = CliRunner().invoke(cli, ["lint-tokenizer", str(tmp_path / "collide.json")])
    assert r.exit_code == 2 and f"added token '<coll>' has id {a}, which model.vocab gives to 'a'" in r.stderr, r.output
    data["model"]["vocab"], data["model"]["merges"] = {}, []
    (tmp_path / "empty.json").write_text(json.dumps(data), encoding="utf-8")
    r = CliRunner().invoke(cli, ["lint-tokenizer", str(tmp_path / "empty.json")])
    assert r.exit_code == 2 and "the model holds no tokens" in r.stderr, r.output
