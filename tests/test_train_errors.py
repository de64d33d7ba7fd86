"""Bad input to train-bpe: clear error (expected / found / fix), exit code 2, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tokkit_cli.main import cli

from tokkit.train import load_recipe
from tokkit.train.recipe import known_recipes

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "legal" / "train.jsonl"


def _run(args):
    return CliRunner().invoke(cli, ["train-bpe", *map(str, args), "--quiet"])


def _assert_failed(r, out: Path, *needles: str):
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") or "Error:" in r.output, r.output
    for n in needles:
        assert n in r.output, r.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]  # no temporary folder left


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "o"
    _assert_failed(_run([empty, "--vocab-size", "300", "-o", out]), out, "no training text", "empty.txt")


def test_non_utf8_file_names_file_and_offset(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"good text\n" * 10 + "na\u00efve caf\u00e9\n".encode("latin-1"))
    out = tmp_path / "o"
    _assert_failed(_run([bad, "--vocab-size", "300", "-o", out]), out, "latin1.txt", "byte offset 102", "0xef", "--skip-bad-utf8")


def test_non_utf8_skipped_with_count(tmp_path):
    bad = tmp_path / "mixed.jsonl"
    good = TRAIN.read_bytes().splitlines(keepends=True)[:10]
    bad.write_bytes(b"".join(good) + b'{"text": "caf\xe9"}\n')
    out = tmp_path / "o"
    r = _run([bad, "--vocab-size", "300", "--skip-bad-utf8", "-o", out])
    assert r.exit_code == 0, r.output
    assert "(1 non-UTF-8 skipped)" in r.output
    assert (out / "tokenizer.json").exists()


def test_vocab_smaller_than_alphabet(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--vocab-size", "200", "-o", out]), out, "smaller than the alphabet", "269")


def test_char_vocab_smaller_than_alphabet(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", "char-4k", "--vocab-size", "150", "-o", out]), out, "smaller than the alphabet")


def test_recipe_with_unknown_key(tmp_path):
    rec = tmp_path / "r.yaml"
    rec.write_text("kind: bpe\nvocab_sise: 1000\n")
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", rec, "-o", out]), out, "vocab_sise", "Extra inputs are not permitted", "Known keys")


def test_domain_tokens_only_for_bpe(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", "legal-32k", "--kind", "supertoken", "-o", out]), out, "domain tokens")


def test_unknown_recipe_name_lists_known(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", "legal-99k", "-o", out]), out, "unknown recipe", "legal-32k")


def test_missing_source(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([tmp_path / "nope.txt", "-o", out]), out, "matches no file")


def test_whitespace_domain_token_refused(tmp_path):
    toks = tmp_path / "toks.txt"
    toks.write_text("§\n \n")
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--domain-tokens", toks, "--vocab-size", "500", "-o", out]), out, "whitespace only")


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = _run([TRAIN, "--vocab-size", "300", "-o", out])
    assert r.exit_code == 2 and "--force" in r.output
    assert (out / "keep.txt").exists()
    r = _run([TRAIN, "--vocab-size", "300", "-o", out, "--force"])  # a folder tokkit did not write: never replaced
    assert r.exit_code == 2 and "did not write" in r.output and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    out.rmdir()
    assert _run([TRAIN, "--vocab-size", "300", "-o", out]).exit_code == 0
    (out / "extra.txt").write_text("x")
    r = _run([TRAIN, "--vocab-size", "320", "-o", out, "--force"])  # tokkit's own folder: replaced as a whole
    assert r.exit_code == 0 and (out / "tokenizer.json").exists() and not (out / "extra.txt").exists()


def test_jsonl_without_text_column(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text('{"body": "hello"}\n')
    out = tmp_path / "o"
    _assert_failed(_run([f, "-o", out]), out, "no text column 'text'", "body", "--text-column")


@pytest.mark.parametrize("name", known_recipes())
def test_every_builtin_recipe_validates(name):
    rec = load_recipe(name)
    assert rec.vocab_size >= 4096
    first = (ROOT / "recipes" / f"{name}.yaml").read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20  # the one-line description the README lists


def test_unopenable_dataset_source(tmp_path):
    out = tmp_path / "o"
    _assert_failed(_run([f"hf:{tmp_path / 'no-such-dataset'}", "--vocab-size", "300", "-o", out]), out, "could not be opened")


def test_special_token_not_utf8_names_the_token_and_byte(tmp_path):
    """argv bytes that are not UTF-8 reach Python as surrogates (PEP 383): they used to reach HF's trainer, a
    TypeError traceback; YAML's "\\ud800" escape too."""
    import os

    from tokkit.train.recipe import RecipeError

    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--vocab-size", "400", "--special-token", os.fsdecode(b"<\xff>"), "-o", out]), out,
                   "--special-token", "not UTF-8", "byte 0xff at character 1")
    rec = tmp_path / "sur.yaml"
    rec.write_text('vocab_size: 400\nspecial_tokens: ["\\ud800"]\n')
    _assert_failed(_run([TRAIN, "--recipe", rec, "-o", out]), out, "special_tokens", "lone surrogate U+D800", "UTF-8")
    with pytest.raises(RecipeError, match=r"surrogate pair U\+D83D U\+DE00 .*\\U0001F600"):
        load_recipe(overrides={"domain_tokens": ["a\ud83d\ude00"], "vocab_size": 400})
    with pytest.raises(RecipeError, match=r"--special-token .*byte 0xff"):
        load_recipe(overrides={"special_tokens": ["\udcff"]})
    assert load_recipe(overrides={"special_tokens": ["<é>", "<😀>"]}).special_tokens == ("<é>", "<😀>")


def test_recipe_with_a_key_twice_is_refused(tmp_path):
    from tokkit.train.recipe import RecipeError

    rec = tmp_path / "dup.yaml"
    rec.write_text("vocab_size: 400\nmin_frequency: 2\nvocab_size: 500\nsupertoken:\n  max_words: 3\n")
    with pytest.raises(RecipeError, match=r"key 'vocab_size' appears twice in one mapping \(line 1 and line 3\)"):
        load_recipe(rec)
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", rec, "-o", out]), out, "'vocab_size' appears twice", "remove one")
    rec.write_text("vocab_size: 400\nsupertoken:\n  max_words: 3\n  max_words: 4\n")
    with pytest.raises(RecipeError, match=r"key 'max_words' appears twice .*line 3 and line 4"):
        load_recipe(rec)
    rec.write_text("vocab_size: 400\nsupertoken: &s {max_words: 3}\n")  # anchors and one key each: fine
    assert load_recipe(rec).supertoken.max_words == 3


def test_recipe_with_a_python_tag_says_plain_yaml_only(tmp_path):
    from tokkit.train.recipe import RecipeError

    rec = tmp_path / "py.yaml"
    rec.write_text('vocab_size: !!python/object/apply:os.system ["touch PWNED"]\n')
    with pytest.raises(RecipeError, match=r"!!python/object/apply:os\.system at line 1, column 13 constructs a Python "
                                          r"object; tags that construct Python objects are not allowed \(plain YAML only"):
        load_recipe(rec)
    out = tmp_path / "o"
    _assert_failed(_run([TRAIN, "--recipe", rec, "-o", out]), out, "constructs a Python object", "plain YAML only")
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
    rec.write_text("vocab_size: !custom 400\n")
    with pytest.raises(RecipeError, match=r"the tag !custom at line 1, column 13 is not a plain YAML type"):
        load_recipe(rec)
    rec.write_text("vocab_size: [1, 2\n")  # a real syntax error keeps its message
    with pytest.raises(RecipeError, match=r"not valid YAML at line 2"):
        load_recipe(rec)


def test_held_out_byte_cap_of_0_is_named_in_the_summary(tmp_path):
    """held_out_max_bytes: 0 holds out no document; the summary used to blame too few documents and suggest
    --held-out 0.1 (which changes nothing)."""
    rec = tmp_path / "cap.yaml"
    rec.write_text("vocab_size: 400\nheld_out_max_bytes: 0\nheld_out: 0.5\n")
    r = _run([TRAIN, "--recipe", rec, "-o", tmp_path / "o"])
    assert r.exit_code == 0, r.output
    assert "held_out_max_bytes is 0" in r.output and "too few documents" not in r.output, r.output
    r = _run([TRAIN, "--vocab-size", "400", "--held-out", "0.001", "-o", tmp_path / "o2"])  # 47 documents: none held out
    assert r.exit_code == 0 and "too few documents for the held-out share 0.001: pass --held-out 0.1" in r.output
