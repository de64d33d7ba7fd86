"""train-bpe: domain byte-level BPE on the committed real licence sample; outputs load in stock libraries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tokkit_cli.main import cli

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.assemble import padded_size
from tokkit.train.bpe import byte_level_spelling
from tokkit.train.domain import DOMAIN_SETS, domain_entries
from tokkit.train.recipe import KL3M_SPECIALS

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
HELDOUT = ROOT / "data" / "legal" / "heldout.jsonl"
HARD = "Emoji 🙂 and naïve café — 中文 العربية ῼ\t\ttabs\n\n  spaces   end "


def heldout_docs() -> list[str]:
    return [json.loads(line)["text"] for line in HELDOUT.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def legal_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "legal-1k"
    r = CliRunner().invoke(cli, ["train-bpe", str(TRAIN), "--recipe", "legal-32k", "--vocab-size", "1000",
                                 "--pad-to", "128", "--held-out", "0.1", "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "1000 of 1000 asked + 24 reserved = 1024" in r.output
    return out


def test_folder_has_hf_files_and_no_padding(legal_dir):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokkit_train.json"):
        assert (legal_dir / name).is_file()
    data = json.loads((legal_dir / "tokenizer.json").read_text())
    assert data["padding"] is None and data["truncation"] is None
    manifest = json.loads((legal_dir / "tokkit_train.json").read_text())
    assert manifest["sources"][0]["sha256"] == hashlib.sha256(TRAIN.read_bytes()).hexdigest()
    assert manifest["recipe"]["domain_token_sets"] == ["legal"] and manifest["versions"]["tokenizers"]
    cfg = json.loads((legal_dir / "tokenizer_config.json").read_text())
    assert cfg["bos_token"] == "<|start|>" and cfg["eos_token"] == "<|end|>" and cfg["pad_token"] == "<|pad|>"
    assert cfg["clean_up_tokenization_spaces"] is False


def test_loads_in_stock_tokenizers_with_exact_layout(legal_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(legal_dir / "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) == 1024
    for i, s in enumerate(KL3M_SPECIALS):
        assert tok.token_to_id(s) == i
    # domain entries are reserved right after the specials, in list order
    entries = [byte_level_spelling(t) for t in domain_entries(DOMAIN_SETS["legal"])]
    assert [tok.token_to_id(e) for e in entries] == list(range(13, 13 + len(entries)))
    # padding ids are special reserved tokens, never runs of spaces
    assert [tok.id_to_token(i) for i in (1000, 1023)] == ["<|reserved_0|>", "<|reserved_23|>"]
    enc = tok.encode(HARD)
    assert tok.decode(enc.ids, skip_special_tokens=False) == HARD


def test_every_domain_token_is_one_token_alone_and_after_a_space(legal_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(legal_dir / "tokenizer.json"))
    for t in DOMAIN_SETS["legal"]:
        for text in (t, " " + t, f"see{' ' + t} and"):
            ids = tok.encode(text).ids
            want = tok.token_to_id(byte_level_spelling(" " + t if text != t else t))
            assert want in ids, (text, tok.encode(text).tokens)
    # a domain word never cuts a longer word: "thereof" is reserved, "thereofs" is not split after it
    assert tok.token_to_id(byte_level_spelling(" thereof")) not in tok.encode(" thereofs").ids


def test_transformers_autotokenizer_loads_and_agrees(legal_dir):
    transformers = pytest.importorskip("transformers")

    hf = transformers.AutoTokenizer.from_pretrained(str(legal_dir))
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(legal_dir / "tokenizer.json"))
    for doc in heldout_docs()[:3] + [HARD]:
        ids = hf(doc, add_special_tokens=False)["input_ids"]
        assert ids == tok.encode(doc).ids
        assert hf.decode(ids) == doc
    assert len(hf) == 1024 and hf.bos_token == "<|start|>" and hf.pad_token_id == 2


def test_tokkit_loader_and_round_trip_on_heldout(legal_dir):
    import tokkit

    tok = tokkit.load_tokenizer(legal_dir)
    for doc in heldout_docs():
        assert tok.decode(tok.encode(doc)) == doc
        assert tok.decode_bytes(tok.encode(doc)) == doc.encode("utf-8")


def test_library_call_with_iterable_and_summary(tmp_path):
    docs = [json.loads(line)["text"] for line in TRAIN.read_text(encoding="utf-8").splitlines()]
    rec = load_recipe(overrides={"vocab_size": 600, "special_tokens": ["<|endoftext|>"], "held_out": 0.2, "seed": 3})
    res = train_tokenizer(out_dir=tmp_path / "t", recipe=rec, iterables=[iter(docs)], progress=False)
    assert res.vocab_final == res.vocab_reached == 600
    assert res.train_docs + res.held_out_docs == len(docs) and res.held_out_docs > 0
    assert res.held_out_roundtrip_failures == 0 and 1.0 < res.bytes_per_token < 6.0
    text = res.summary()
    assert "600 of 600 asked" in text and "bytes/token" in text and "peak memory" in text
    # deterministic: the same seed gives the same tokenizer
    res2 = train_tokenizer(out_dir=tmp_path / "t2", recipe=rec, iterables=[iter(docs)], progress=False)
    assert (tmp_path / "t" / "tokenizer.json").read_text() == (tmp_path / "t2" / "tokenizer.json").read_text()
    assert res2.held_out_tokens == res.held_out_tokens


def test_held_out_documents_are_written_beside_the_tokenizer(tmp_path):
    """heldout.jsonl holds exactly the documents kept out (corpus order), none of them trained on; `compare`
    on it measures the bytes/token the summary printed."""
    docs = [json.loads(line)["text"] for line in TRAIN.read_text(encoding="utf-8").splitlines()]
    r = CliRunner().invoke(cli, ["train-bpe", str(TRAIN), "--vocab-size", "600", "--held-out", "0.2", "--seed", "3",
                                 "-o", str(tmp_path / "t"), "--quiet"])
    assert r.exit_code == 0, r.output
    held = [json.loads(x)["text"] for x in (tmp_path / "t" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    manifest = json.loads((tmp_path / "t" / "tokkit_train.json").read_text(encoding="utf-8"))
    assert 0 < len(held) == manifest["held_out_documents"] and manifest["held_out_file"] == "heldout.jsonl"
    assert held == [d for d in docs if d in set(held)]  # a subsequence of the corpus, in order
    assert manifest["train_documents"] + len(held) == len(docs)
    assert f"saved as {tmp_path / 't' / 'heldout.jsonl'}" in r.output
    bpt = float(r.output.split(" bytes/token")[0].split()[-1])
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "t"), "--text", str(tmp_path / "t" / "heldout.jsonl"),
                                 "--json", "-"])
    assert r.exit_code == 0, r.output
    row = json.JSONDecoder().raw_decode(r.stdout[r.stdout.index('{\n  "tokenizers"'):])[0]["tokenizers"][0]
    assert row["bytes_per_token"] == pytest.approx(bpt, abs=5e-4)
    r = CliRunner().invoke(cli, ["train-bpe", str(TRAIN), "--vocab-size", "600", "--held-out", "0", "-o",
                                 str(tmp_path / "none"), "--quiet"])
    assert r.exit_code == 0 and not (tmp_path / "none" / "heldout.jsonl").exists()


def test_sampling_rate_and_folder_and_txt_sources(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    docs = [json.loads(line)["text"] for line in TRAIN.read_text(encoding="utf-8").splitlines()]
    (folder / "a.txt").write_text("\n\n".join(docs[:20]), encoding="utf-8")
    (folder / "b.txt").write_text("\n\n".join(docs[20:]), encoding="utf-8")
    rec = load_recipe(overrides={"vocab_size": 500, "held_out": 0.0})
    full = train_tokenizer([folder], out_dir=tmp_path / "full", recipe=rec, progress=False)
    half = train_tokenizer([f"{folder / 'a.txt'}@0.5", str(folder / "b.txt")], out_dir=tmp_path / "half", recipe=rec, progress=False)
    assert full.train_bytes == sum(len(p.read_bytes()) for p in folder.iterdir())
    assert 0 < half.train_bytes < full.train_bytes


def test_vocab_not_reached_warns(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    res = train_tokenizer([corpus], out_dir=tmp_path / "o", recipe=load_recipe(overrides={"vocab_size": 5000, "pad_to": "pow2"}),
                          progress=False)
    assert res.vocab_reached < 5000
    assert any("not reached" in w for w in res.warnings)
    assert res.vocab_final == padded_size(res.vocab_reached, "pow2")
    assert "NOT REACHED" in res.summary()


@pytest.mark.parametrize("size,rule,want", [(1000, 128, 1024), (1024, 128, 1024), (1025, 64, 1088),
                                            (1000, "pow2", 1024), (1024, "pow2", 1024), (1025, "pow2", 2048), (7, None, 7)])
def test_padded_size(size, rule, want):
    assert padded_size(size, rule) == want


def test_committed_sample_matches_its_provenance():
    import hashlib
    import re

    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name in ("train.jsonl", "heldout.jsonl"):
        digest = hashlib.sha256((ROOT / "data" / "legal" / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}` `{digest}`", readme), name
    ids = [json.loads(x)["id"] for x in TRAIN.read_text(encoding="utf-8").splitlines()]
    held = [json.loads(x)["id"] for x in HELDOUT.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == 47 and len(held) == 11 and not set(ids) & set(held)


def test_cli_help_lists_training_commands():
    r = CliRunner().invoke(cli, ["--help"])
    for cmd in ("train-bpe", "compare", "export-tiktoken", "lint-tokenizer"):
        assert f"  {cmd} " in r.output


def test_special_roles_from_names():
    from tokkit.train.output import special_roles

    assert special_roles(KL3M_SPECIALS) == {"bos": "<|start|>", "eos": "<|end|>", "pad": "<|pad|>", "unk": "<|unk|>",
                                            "sep": "<|sep|>", "cls": "<|cls|>", "mask": "<|mask|>"}
    assert special_roles(["<|endoftext|>"]) == {"eos": "<|endoftext|>"}
    assert special_roles(["<s>", "</s>", "<unk>", "<pad>"]) == {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}


def test_special_token_flag_replaces_the_recipe_list(tmp_path):
    from tokenizers import Tokenizer

    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["train-bpe", str(TRAIN), "--recipe", "legal-32k", "--vocab-size", "600", "--quiet",
                                 "--special-token", "<s>", "--special-token", "</s>", "-o", str(out)])
    assert r.exit_code == 0, r.output
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert [tok.id_to_token(i) for i in (0, 1)] == ["<s>", "</s>"] and tok.token_to_id("<|start|>") is None
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    assert cfg["bos_token"] == "<s>" and cfg["eos_token"] == "</s>"
