"""Count tables: format, determinism across engines, and training from counts == training from the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.corpus import Corpus, Source, line_ranges, parse_sources, source_documents
from tokkit.train.count import CountSpec, count_corpus, plan_shards
from tokkit.train.count_table import CountTableError, TableMismatchError, merge_tables, read_table
from tokkit_cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "data"
LEGAL = DATA / "legal" / "train.jsonl"  # 304 KB of real licence texts (SPDX, CC0)
MOBY = DATA / "moby_dick_excerpt.txt"
SOURCES = [str(LEGAL), str(MOBY)]


def _count(sources=SOURCES, spec=CountSpec(), **kw):
    return count_corpus(sources, spec=spec, progress=False, **kw)[0]


def test_table_is_sorted_exact_and_round_trips(tmp_path):
    table = _count()
    assert list(table.keys) == sorted(table.keys) and len(set(table.keys)) == len(table)
    # brute-force oracle: the trainer's own pre-tokenizer over the same documents
    from collections import Counter

    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    from tokkit.formats.hf_json import bytes_to_unicode

    inv = {c: b for b, c in bytes_to_unicode().items()}
    oracle: Counter[bytes] = Counter()
    for s in parse_sources(SOURCES):
        for d in source_documents(s):
            oracle.update(bytes(inv[c] for c in p) for p, _ in pre.pre_tokenize_str(d))
    assert dict(zip(table.keys, table.counts.tolist())) == dict(oracle)
    assert table.words(byte_level=True)["Ġlicense"] == oracle[b" license"] > 50
    path = table.write(tmp_path / "t.counts")
    back = read_table(path)
    assert back.keys == table.keys and back.counts.tolist() == table.counts.tolist() and back.header == table.header
    assert back.header["pre_tokenizer"]["pattern"] == CountSpec().pattern
    assert [s["name"] for s in back.header["sources"]] == ["train.jsonl", "moby_dick_excerpt.txt"]


def test_corrupt_or_foreign_table_is_refused(tmp_path):
    path = _count().write(tmp_path / "t.counts")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad = tmp_path / "bad.counts"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CountTableError, match="checksum"):
        read_table(bad)
    bad.write_bytes(bytes(raw[:100]))
    with pytest.raises(CountTableError):
        read_table(bad)
    with pytest.raises(CountTableError, match="not a tokkit count table"):
        read_table(MOBY)


def test_tables_merge_by_summation():
    both = _count()
    parts = [_count([s]) for s in SOURCES]
    merged = merge_tables(parts)
    assert merged.keys == both.keys and merged.counts.tolist() == both.counts.tolist()
    assert merged.total == parts[0].total + parts[1].total
    lower = _count([str(MOBY)], CountSpec(lowercase=True))
    with pytest.raises(TableMismatchError, match="normalizer"):
        merge_tables([parts[1], lower])


def test_shards_cover_each_file_exactly_at_line_starts():
    ranges = line_ranges(str(LEGAL), 10_000)
    raw = LEGAL.read_bytes()
    assert ranges[0][0] == 0 and ranges[-1][1] == len(raw) and len(ranges) > 20
    assert all(a == prev_b for (_, prev_b), (a, _) in zip(ranges, ranges[1:]))
    assert all(raw[a - 1:a] == b"\n" for a, _ in ranges[1:])
    docs = [d for a, b in ranges for d in source_documents(Source(str(LEGAL)), start=a, end=b)]
    assert docs == list(source_documents(Source(str(LEGAL))))


def test_same_table_from_one_process_n_processes_and_ray(tmp_path):
    one = _count(workers=1).to_bytes()
    many = _count(workers=2, shard_bytes=20_000)
    assert len(plan_shards(parse_sources(SOURCES), shard_bytes=20_000)) > 10
    assert many.to_bytes() == one
    pytest.importorskip("ray.data", reason="Ray not installed (pip install 'tokkit[ray]')")
    ray_table = _count(engine="ray", workers=2, shard_bytes=20_000)
    assert ray_table.to_bytes() == one


@pytest.mark.parametrize("name, overrides", [
    ("legal-32k", {"vocab_size": 3000}),
    ("legal-32k", {"vocab_size": 2000, "domain_tokens": ["Section", "§", "U.S.C."], "nfkc": True}),
    ("char-4k", {"vocab_size": 1200}),
    ("char-4k", {"vocab_size": 600, "max_token_unit": "bytes"}),
])
def test_training_from_counts_equals_training_from_text(tmp_path, name, overrides):
    recipe = load_recipe(name, overrides={"held_out": 0.0, **overrides})
    text = train_tokenizer(SOURCES, out_dir=tmp_path / "text", recipe=recipe, progress=False)
    table = count_corpus(SOURCES, spec=CountSpec.from_recipe(recipe), workers=2, shard_bytes=30_000, progress=False)[0]
    counted = train_tokenizer(out_dir=tmp_path / "counts", recipe=recipe, counts=[table.write(tmp_path / "t.counts")],
                              progress=False)
    a = (tmp_path / "text" / "tokenizer.json").read_text(encoding="utf-8")
    b = (tmp_path / "counts" / "tokenizer.json").read_text(encoding="utf-8")
    assert json.loads(a)["model"]["merges"] and a == b
    assert counted.vocab_final == text.vocab_final >= recipe.vocab_size


def test_cli_count_then_train_from_counts_with_resume_and_errors(tmp_path, monkeypatch):
    run = CliRunner().invoke
    table = tmp_path / "legal.counts"
    r = run(cli, ["count", str(LEGAL), "-o", str(table), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "distinct pre-tokens" in r.output and table.is_file()
    r = run(cli, ["count", str(LEGAL), "-o", str(table), "--quiet"])
    assert r.exit_code == 2 and "already exists" in r.output
    r = run(cli, ["train-bpe", str(LEGAL), "--held-out", "0", "--vocab-size", "1500", "-o", str(tmp_path / "text"), "--quiet"])
    assert r.exit_code == 0, r.output
    # an interrupted merge loop leaves its checkpoint; --resume finishes it with the uninterrupted result
    from tokkit.train import bpe_counts

    real = bpe_counts.train_bpe_counts
    def killed(*a, **k):  # the job is killed after 300 merges (state saved every 100)
        real(*a, **{**k, "stop_after": 300, "checkpoint_every": 100})
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(bpe_counts, "train_bpe_counts", killed)
        r = run(cli, ["train-bpe", "--counts", str(table), "--vocab-size", "1500", "-o", str(tmp_path / "c"), "--quiet"])
    assert r.exit_code != 0 and not (tmp_path / "c").exists()
    ckpt = tmp_path / ".c.merges.ckpt"
    assert ckpt.exists()
    r = run(cli, ["train-bpe", "--counts", str(table), "--vocab-size", "1500", "-o", str(tmp_path / "c"), "--resume",
                  "--quiet"])
    assert r.exit_code == 0, r.output
    assert not ckpt.exists()
    assert (tmp_path / "c" / "tokenizer.json").read_text() == (tmp_path / "text" / "tokenizer.json").read_text()
    # bad input: a kind that cannot train from counts, a table for another pre-tokenizer, neither input
    r = run(cli, ["train-bpe", "--counts", str(table), "--kind", "supertoken", "-o", str(tmp_path / "s")])
    assert r.exit_code == 2 and "supertoken" in r.output and not (tmp_path / "s").exists()
    r = run(cli, ["train-bpe", "--counts", str(table), "--recipe", "legal-32k", "--vocab-size", "900",
                  "--domain-tokens", str(_domain_file(tmp_path)), "-o", str(tmp_path / "d")])
    assert r.exit_code == 2 and "another pre-tokenizer" in r.output and "--recipe" in r.output and not (tmp_path / "d").exists()
    assert len(r.output.strip().splitlines()) == 1 and len(r.output) < 400, r.output  # one short line, not the regex
    r = run(cli, ["train-bpe", "-o", str(tmp_path / "n")])
    assert r.exit_code == 2 and "either SOURCES" in r.output


def _domain_file(tmp_path: Path) -> Path:
    p = tmp_path / "domain.txt"
    p.write_text("Section\n§\n", encoding="utf-8")
    return p


def test_small_text_files_read_as_before():
    # the per-segment cutting only matters past 64 MB: a small file is one segment
    corpus = Corpus(parse_sources([str(MOBY)]))
    assert list(corpus.train_docs()) == list(source_documents(Source(str(MOBY))))
    assert line_ranges(str(MOBY), 64 << 20) == [(0, MOBY.stat().st_size)]


@pytest.mark.parametrize("pattern", ["gpt2", "domain"])
def test_ascii_fast_path_splits_exactly_like_hf(pattern):
    """Brute force: every ASCII character in many contexts, and 20,000 random ASCII strings, split by the
    `regex` fast path (findall) and by HF's own Split pre-tokenizer (the one the trainer uses)."""
    import random

    from tokenizers import Regex, pre_tokenizers

    from tokkit.train.count import _fast
    from tokkit.train.domain import GPT2_PATTERN, pretokenize_pattern

    pat = GPT2_PATTERN if pattern == "gpt2" else pretokenize_pattern(["Section", "U.S.C.", "Inc.", "'s"])
    hf = pre_tokenizers.Split(Regex(pat), behavior="isolated")
    rx = _fast(pat)
    texts = [ctx.format(c=chr(c)) for c in range(128)
             for ctx in ["a{c}b", "{c}", "{c}{c}", " {c} ", "1{c}2", "'{c}s", "{c} x", "x{c}\n", "\n{c}\n{c}", "  {c}"]]
    rng = random.Random(0)
    alphabet = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1fabcXYZ0129'.,;-_SectionU.S.C."
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(20_000)]
    for t in texts:
        parts = rx.findall(t)
        assert sum(map(len, parts)) == len(t), repr(t)  # the matches cover the text: no gap, as count_shard checks
        assert parts == [p for p, _ in hf.pre_tokenize_str(t)], repr(t)


def test_count_bad_input_exits_2_and_writes_nothing(tmp_path):
    run = CliRunner().invoke
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    for args, msg in [([str(tmp_path / "missing.txt")], "matches no file"), ([str(empty)], "holds no text"),
                      ([str(MOBY), "--engine", "spark"], "spark")]:
        r = run(cli, ["count", *args, "-o", str(tmp_path / "t.counts")])
        assert r.exit_code == 2 and msg in r.output, r.output
        assert not (tmp_path / "t.counts").exists()


def test_parquet_source_counts_like_the_same_documents_in_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in LEGAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), tmp_path / "legal.parquet", row_group_size=7)
    a = _count([str(LEGAL)])
    b = _count([str(tmp_path / "legal.parquet")])
    assert b.keys == a.keys and b.counts.tolist() == a.counts.tolist()
