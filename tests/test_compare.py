"""tokkit compare: metric definitions against brute-force oracles, lossy tokenizers flagged, JSON/CSV output."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import need_fixture
from tokkit_cli.main import cli

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train.metrics import renyi_efficiency, word_stats

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"
HELDOUT = ROOT / "data" / "legal" / "heldout.jsonl"


def test_renyi_matches_definition():
    counts = Counter({1: 5, 2: 3, 3: 1, 9: 1})
    p = [5 / 10, 3 / 10, 1 / 10, 1 / 10]
    h = 1 / (1 - 2.5) * math.log2(sum(x ** 2.5 for x in p))
    assert renyi_efficiency(counts, 16) == pytest.approx(h / 4)
    assert renyi_efficiency([7] * 8, 8) == pytest.approx(1.0)  # uniform over V: efficiency 1


def test_word_stats_exact():
    doc = b"the cat sat"
    # tokens: "the", " c", "at", " sat"  -> words: the(1), cat(2, continued), sat(1)
    assert word_stats(doc, [b"the", b" c", b"at", b" sat"]) == (3, 4, 1)
    # a supertoken spanning two words counts once for each word, neither is continued
    assert word_stats(doc, [b"the cat", b" sat"]) == (3, 3, 0)
    # SentencePiece dummy prefix: tokens hold one extra leading space
    assert word_stats(doc, [b" the", b" cat", b" s", b"at"]) == (3, 4, 1)
    assert word_stats(doc, [b"the", b"dog"]) is None


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("cmp")
    plain = load_recipe(overrides={"vocab_size": 1024, "held_out": 0.0})
    train_tokenizer([TRAIN], out_dir=base / "plain", recipe=plain, progress=False)
    lossy = load_recipe(overrides={"vocab_size": 1024, "held_out": 0.0, "nfkc": True, "lowercase": True})
    train_tokenizer([TRAIN], out_dir=base / "lossy", recipe=lossy, progress=False)
    return base


def test_compare_cli_json_csv_and_lossy_flag(folders, tmp_path):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), str(folders / "lossy"), "--text", str(HELDOUT),
                                 "--json", str(js), "--csv", str(cs)])
    assert r.exit_code == 0, r.output
    assert "LOSSY" in r.output and "not compared, lossy is LOSSY" in r.output
    rep = json.loads(js.read_text())
    rows = {d["name"]: d for d in rep["tokenizers"]}
    assert rows["plain"]["lossless"] and rows["plain"]["roundtrip_failures"] == 0
    assert not rows["lossy"]["lossless"] and rows["lossy"]["tokens_vs_first_pct"] is None
    # the numbers are the definitions: bytes/token over the raw text
    held = [json.loads(x)["text"] for x in HELDOUT.read_text(encoding="utf-8").splitlines()]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folders / "plain" / "tokenizer.json"))
    ntok = sum(len(e.ids) for e in tok.encode_batch(held, add_special_tokens=False))
    assert rows["plain"]["tokens"] == ntok
    assert rows["plain"]["bytes_per_token"] == pytest.approx(sum(len(d.encode()) for d in held) / ntok)
    assert rows["plain"]["tokens_per_char"] == pytest.approx(ntok / sum(map(len, held)))
    table = list(csv.DictReader(io.StringIO(cs.read_text())))
    assert [t["name"] for t in table] == ["plain", "lossy"]
    # no domain-term table: neither --terms nor a recipe that defines terms
    assert rep["terms"] == {} and "tokens per domain term" not in r.output


def test_term_table_only_with_terms_or_a_recipe_that_defines_them(folders, tmp_path):
    from tokenizers import Tokenizer

    termed = load_recipe(overrides={"vocab_size": 1024, "held_out": 0.0, "terms": ["certiorari", "habeas corpus"]})
    train_tokenizer([TRAIN], out_dir=tmp_path / "termed", recipe=termed, progress=False)
    tok = Tokenizer.from_file(str(tmp_path / "termed" / "tokenizer.json"))
    run = CliRunner().invoke
    r = run(cli, ["compare", str(tmp_path / "termed"), str(folders / "plain"), "--text", str(HELDOUT), "--json", "-"])
    assert r.exit_code == 0, r.output
    terms = json.JSONDecoder().raw_decode(r.stdout[r.stdout.index('{\n  "tokenizers"'):])[0]["terms"]
    assert list(terms) == ["certiorari", "habeas corpus"]  # the first tokenizer's recipe
    assert terms["habeas corpus"]["termed"] == len(tok.encode("habeas corpus", add_special_tokens=False).ids)
    assert "tokens per domain term" in r.output
    r = run(cli, ["compare", str(folders / "plain"), str(tmp_path / "termed"), "--text", str(HELDOUT)])
    assert r.exit_code == 0 and "tokens per domain term" not in r.output  # the reference's recipe has none
    (tmp_path / "t.txt").write_text("EBITDA\nres judicata\n\n", encoding="utf-8")
    r = run(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--terms", str(tmp_path / "t.txt")])
    assert r.exit_code == 0 and "EBITDA" in r.output and "res judicata" in r.output
    r = run(cli, ["compare", str(tmp_path / "termed"), "--text", str(HELDOUT), "--no-terms"])
    assert r.exit_code == 0 and "tokens per domain term" not in r.output


def test_compare_against_real_aliases_prints_percentages(folders):
    for alias in ("gpt2", "llama3", "mistral"):
        need_fixture(alias)
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "gpt2", "llama3", "mistral", "--text", str(HELDOUT), "--no-terms"])
    assert r.exit_code == 0, r.output
    for alias in ("gpt2", "llama3", "mistral"):
        assert f"tokens than {alias} (" in r.output
    assert "LOSSY" not in r.output  # gpt2/llama3/mistral round-trip licence text exactly


def test_compare_parity_and_bad_inputs(folders, tmp_path):
    en, de = tmp_path / "en.txt", tmp_path / "de.txt"
    en.write_text("The licensor grants you a licence.\n")
    de.write_text("Der Lizenzgeber gewährt Ihnen eine Lizenz.\n")
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--parallel", str(en), str(de), "--no-terms"])
    assert r.exit_code == 0, r.output
    assert "parity" in r.output
    r = CliRunner().invoke(cli, ["compare", "no-such-tokenizer", "--text", str(HELDOUT)])
    assert r.exit_code == 2 and "known aliases" in r.output
    out = tmp_path / "exists.json"
    out.write_text("{}")
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--json", str(out)])
    assert r.exit_code == 2 and "--force" in r.output and out.read_text() == "{}"


def test_compare_plot(folders, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "cmp.png"
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), str(folders / "lossy"), "--text", str(HELDOUT),
                                 "--no-terms", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--no-terms", "--plot", str(png)])
    assert r.exit_code == 2 and "--force" in r.output and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--no-terms", "--plot",
                                 str(png), "--force"])
    assert r.exit_code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["cmp.png"], r.output


def test_two_reports_into_one_file_are_refused_before_any_work(folders, tmp_path, monkeypatch):
    """--json and --csv naming one file used to write the JSON, then fail ('already exists'); with --force the
    CSV silently replaced the JSON. Refused first, by the path with its folder resolved."""
    import tokkit.train.compare as cmp
    from tokkit_cli.train import _distinct_outputs

    from tokkit.errors import OptionError

    monkeypatch.setattr(cmp, "compare_tokenizers", lambda *a, **k: pytest.fail("the work started"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    for args, needle in (
        (["--json", "r.out", "--csv", "r.out"], "--json and --csv both name"),
        (["--json", "r.out", "--csv", "d/../r.out", "--force"], "--json and --csv both name"),
        (["--json", "d/r.png", "--plot", str(tmp_path / "d" / "." / "r.png"), "--force"], "--json and --plot both name"),
    ):
        r = CliRunner().invoke(cli, ["compare", str(folders / "plain"), "--text", str(HELDOUT), "--no-terms", *args])
        assert r.exit_code == 2 and needle in r.stderr and "give" in r.stderr, r.output
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["d"], args  # nothing written
    with pytest.raises(OptionError, match=r"--json and --csv both name .*r\.out; each report needs its own file"):
        _distinct_outputs({"--json": Path("r.out"), "--csv": Path("./r.out"), "--plot": None})
    _distinct_outputs({"--json": Path("-"), "--csv": Path("-"), "--plot": Path("r.png")})  # stdout twice is fine
    _distinct_outputs({"--json": Path("r.json"), "--csv": Path("r.csv"), "--plot": Path("r.png")})
