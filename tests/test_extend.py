"""``tokkit extend``: continued BPE on real tokenizers (byte-level and SentencePiece-style), its guarantee
against a brute-force BPE oracle, protected texts, the added-token reload trap, the tiktoken twin, and the
model part (old rows bit-exact, FVT rows, loads in transformers)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cached_tokenizer, tiny_llama

DATA = Path(__file__).resolve().parents[1] / "data"
GERMAN = (DATA / "extend" / "de_reference_sample.txt").read_text(encoding="utf-8")
ENGLISH = (DATA / "moby_dick_excerpt.txt").read_text(encoding="utf-8")
MIXED = ["Grüße aus Köln: die Größe der Übersetzung ist maßgeblich.", "naïve café 🤗 — 東京 2024", "  indent\n\ttab\r\n",
         "Ärger über Ölpreise; STRASSE & straße", "def f(x):\n    return x ** 2  # Kommentar"]


@functools.lru_cache(maxsize=None)
def _extension(alias: str, add: int, keep: bool):
    from tokkit.train.extend_tokenizer import extend_tokenizer

    return extend_tokenizer(cached_tokenizer(alias), docs=[GERMAN], add=add, keep_texts=[ENGLISH] if keep else [])


@functools.lru_cache(maxsize=None)
def _old_hf(alias: str):
    return cached_tokenizer(alias).to_hf()


def _bpe_oracle(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Textbook BPE (independent of HF and of tokkit): merge the lowest-ranked adjacent pair, leftmost first."""
    parts = list(word)
    while True:
        cands = [(ranks[(a, b)], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if (a, b) in ranks]
        if not cands:
            return parts
        _, i = min(cands)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def _ranks(data: dict) -> dict[tuple[str, str], int]:
    out = {}
    for r, m in enumerate(data["model"]["merges"]):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        out.setdefault((a, b), r)
    return out


@pytest.mark.parametrize("alias", ["smollm2", "gpt2"])
def test_guarantee_against_brute_force_bpe(alias):
    """Every pre-token: the new segmentation is the oracle's; it differs from the old one only where the old
    segmentation holds an adjacent pair that a new merge joins (or, under ignore_merges, it is a new token)."""
    ext = _extension(alias, 200, False)
    old_hf, new_hf = ext.old.to_hf(), ext.hf()
    new_pairs = {(ext.hf().id_to_token(t.pair[0]), ext.hf().id_to_token(t.pair[1])) for t in ext.merges}
    new_strings = {t.text for t in ext.merges}
    ranks = _ranks(ext.data)
    ignore = bool(ext.data["model"].get("ignore_merges"))
    words = {w for text in [GERMAN, ENGLISH, *MIXED] for w, _ in old_hf.pre_tokenizer.pre_tokenize_str(text)}
    changed = 0
    for w in sorted(words):
        old = [t.value for t in old_hf.model.tokenize(w)]
        new = [t.value for t in new_hf.model.tokenize(w)]
        oracle = [w] if ignore and w in ext.data["model"]["vocab"] else _bpe_oracle(w, ranks)
        assert new == oracle, w
        trigger = any(p in new_pairs for p in zip(old, old[1:])) or (ignore and w in new_strings)
        if not trigger:
            assert new == old, w
        changed += new != old
    assert changed > 50  # the German words did change


@pytest.mark.parametrize("alias", ["smollm2", "mistral"])
def test_keep_text_ids_identical_and_new_language_shorter(alias, tmp_path):
    from tokenizers import Tokenizer as HF
    from transformers import AutoTokenizer

    from tokkit import load_tokenizer
    from tokkit.train.extend_tokenizer import write_extension

    ext = _extension(alias, 300, True)
    old = ext.old
    out = write_extension(ext, tmp_path / "tok")
    new = load_tokenizer(out / "tokenizer.json")
    assert new.encode(ENGLISH) == old.encode(ENGLISH)
    assert ext.report["protected_ids_changed"] == 0
    de = (DATA / "heldout" / "gnome_help_de_net.txt").read_text(encoding="utf-8")
    assert len(new.encode(de)) < (0.9 if alias == 'smollm2' else 0.97) * len(old.encode(de))
    auto = AutoTokenizer.from_pretrained(str(out))
    hf = HF.from_file(str(out / "tokenizer.json"))
    for text in [de, ENGLISH, *MIXED]:
        ids = new.encode(text)
        assert new.decode_bytes(ids) == text.encode("utf-8") or alias == "mistral" and text != text.lstrip(" ")
        assert hf.encode(text, add_special_tokens=False).ids == ids
        assert auto(text, add_special_tokens=False)["input_ids"] == ids
    assert [old.vocab.tokens[i] for i in range(len(old.vocab))] == list(new.vocab.tokens[:len(old.vocab)])
    assert len(new.vocab) == len(old.vocab) + len(ext.new_ids)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
       | st.text(alphabet="aäoöuüßeinrstdh ÄÖÜ.,\n", max_size=60))
def test_round_trip_fuzz(text):
    """The extended tokenizer spells exactly the bytes the old one spells (the old one round-trips except for
    the bytes its vocabulary lacks: SmolLM2's GGUF vocab has no token for 21 byte values)."""
    for alias in ("smollm2", "mistral"):
        ext = _extension(alias, 300, True)
        ids = ext.hf().encode(text, add_special_tokens=False).ids
        got = b"".join(ext.vocab.tokens[i] for i in ids)
        old = b"".join(ext.old.vocab.tokens[i] for i in _old_hf(alias).encode(text, add_special_tokens=False).ids)
        assert got == old
        if alias == "mistral":  # byte fallback: every text, plus SentencePiece's dummy-prefix space
            assert got == (b" " + text.encode("utf-8") if text else b"")


def test_llama3_added_tokens_keep_ids_after_reload(tmp_path):
    from tokenizers import Tokenizer as HF
    from transformers import AutoTokenizer

    from tokkit.train.extend_tokenizer import write_extension

    ext = _extension("llama3", 50, False)
    assert min(ext.new_ids) == 128256 and len(ext.new_ids) == 50
    out = write_extension(ext, tmp_path / "l3")
    hf = HF.from_file(str(out / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(out))
    for s in ext.old.vocab.specials:
        assert hf.token_to_id(s.text) == s.id
        assert auto.convert_tokens_to_ids(s.text) == s.id
    assert hf.get_vocab_size() == 128256 + 50
    assert hf.encode("<|begin_of_text|>Grüße", add_special_tokens=False).ids[0] == 128000


@pytest.mark.parametrize("alias", ["gpt2", "cl100k"])
def test_tiktoken_twin_is_exact(alias, tmp_path):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from tokkit.train.extend_tokenizer import TIKTOKEN_FILE, write_extension

    ext = _extension(alias, 100, True)
    out = write_extension(ext, tmp_path / "t")
    meta = json.loads((out / (TIKTOKEN_FILE + ".json")).read_text())
    enc = tiktoken.Encoding("ext", pat_str=meta["pat_str"], mergeable_ranks=load_tiktoken_bpe(str(out / TIKTOKEN_FILE)),
                            special_tokens=meta["special_tokens"])
    hf = ext.hf()
    de = (DATA / "heldout" / "gnome_help_de_net.txt").read_text(encoding="utf-8")
    for text in [de, ENGLISH, GERMAN, *MIXED]:
        assert enc.encode_ordinary(text) == hf.encode(text, add_special_tokens=False).ids
    assert max(enc._mergeable_ranks.values()) == max(ext.new_ids)


def test_sentencepiece_new_characters_first():
    """Characters the vocabulary lacks (bytes before) become pieces; only text holding them changes."""
    from tokkit.train.extend_tokenizer import extend_tokenizer

    # Inuktitut syllabics: Mistral v1 has no pieces for these letters (they fall back to three bytes each)
    kartuli = "ᐃᓄᒃᑎᑐᑦ ᐅᖃᐅᓯᖅ ᓄᓇᕗᒥ ᐊᑐᖅᑕᐅᔪᖅ. " * 3 + "ᐃᖃᓗᐃᑦ ᓄᓇᕗᑦ ᐊᖓᔪᖅᑳᖏᑦ. " * 3
    tok = cached_tokenizer("mistral")
    ext = extend_tokenizer(tok, docs=[kartuli], add=5, keep_texts=[ENGLISH])
    assert ext.chars and all(len(t.text) == 1 for t in ext.chars)
    assert [t.id for t in ext.chars] == list(range(32000, 32000 + len(ext.chars)))
    hf = ext.hf()
    assert len(hf.encode(kartuli, add_special_tokens=False).ids) < len(tok.encode(kartuli)) / 2
    assert hf.encode(ENGLISH, add_special_tokens=False).ids == tok.encode(ENGLISH)


def test_count_table_source_equals_text(tmp_path):
    from tokkit.train.count import CountSpec, count_corpus
    from tokkit.train.extend_tokenizer import extend_tokenizer

    src = tmp_path / "de.txt"
    src.write_text(GERMAN, encoding="utf-8")
    table = tmp_path / "de.counts"
    count_corpus([src], spec=CountSpec(), workers=1, progress=False)[0].write(table)
    tok = cached_tokenizer("smollm2")  # its pre-tokenizer is GPT-2's regex, the default of `tokkit count`
    from_text = extend_tokenizer(tok, [src], add=100)
    from_table = extend_tokenizer(tok, counts=[table], add=100)
    assert [(t.text, t.pair) for t in from_table.merges] == [(t.text, t.pair) for t in from_text.merges]


def test_unsupported_and_exhausted(tmp_path):
    from tokenizers import Tokenizer as HF, models, pre_tokenizers, trainers

    from tokkit import load_tokenizer
    from tokkit.train.extend_tokenizer import extend_tokenizer
    from tokkit.train.extend_words import ExtendError

    wp = HF(models.WordPiece(unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.train_from_iterator([GERMAN], trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    wp.save(str(tmp_path / "wp.json"))
    with pytest.raises(ExtendError, match="WordPiece tokenizer.*tokkit transplant"):
        extend_tokenizer(load_tokenizer(tmp_path / "wp.json"), docs=[GERMAN], add=10)
    with pytest.raises(ExtendError, match=r"--add 100000: the text gives only \d+ new merges"):
        extend_tokenizer(cached_tokenizer("gpt2"), docs=["Grüße Grüße Grüße aus aus Köln"], add=100000)
    with pytest.raises(ExtendError, match="no text"):
        extend_tokenizer(cached_tokenizer("gpt2"), docs=[""], add=10)


# ---------------------------------------------------------------------------------------------- the model
def test_extend_model_rows_bit_exact_fvt_and_loads(tmp_path):
    import torch
    import transformers
    from safetensors.torch import load_file

    from tokkit.train.extend_tokenizer import extend_tokenizer
    from tokkit.transplant.extend import run_extend
    from tokkit.transplant.report import REPORT_FILE, built_ids

    tok = cached_tokenizer("gpt2")
    base = tiny_llama(tmp_path / "base", tok, tied=False)
    ext = extend_tokenizer(tok, docs=[GERMAN], add=40, keep_texts=[ENGLISH])
    res = run_extend(base, ext, tmp_path / "out")
    old = load_file(base / "model.safetensors")
    new = load_file(res.out_dir / "model.safetensors")
    n = len(tok.vocab)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert new[name].dtype == old[name].dtype
        assert torch.equal(new[name][:n], old[name])
        assert new[name].shape[0] == n + 40
    for t in ext.merges[:10]:  # FVT: the mean of the rows of the token's old segmentation
        pieces = tok.encode(bytes(ext.vocab.tokens[t.id]).decode("utf-8", "surrogateescape"))
        want = old["model.embed_tokens.weight"][pieces].float().mean(0)
        assert torch.allclose(new["model.embed_tokens.weight"][t.id].float(), want, atol=1e-6)
    assert built_ids(res.out_dir) == ext.new_ids
    report = json.loads((res.out_dir / REPORT_FILE).read_text())
    assert report["extension"]["merges_added"] == 40 and report["extension"]["protected_ids_changed"] == 0
    assert report["config"]["src"] == str(base)
    m = transformers.AutoModelForCausalLM.from_pretrained(res.out_dir)
    at = transformers.AutoTokenizer.from_pretrained(res.out_dir)
    ids = at("Grüße aus Köln", return_tensors="pt").input_ids
    out = m.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3


def test_extend_model_refuses_short_embedding_and_foreign_tokenizer(tmp_path):
    from tokkit.errors import VocabMismatchError
    from tokkit.train.extend_tokenizer import extend_tokenizer
    from tokkit.transplant.extend import run_extend

    tok = cached_tokenizer("gpt2")
    short = tiny_llama(tmp_path / "short", tok, rows=1000)
    ext = extend_tokenizer(tok, docs=[GERMAN], add=5)
    with pytest.raises(VocabMismatchError):
        run_extend(short, ext, tmp_path / "o1")
    other = extend_tokenizer(cached_tokenizer("smollm2"), docs=[GERMAN], add=5)
    ok = tiny_llama(tmp_path / "ok", tok)
    with pytest.raises(VocabMismatchError, match="another tokenizer"):
        run_extend(ok, other, tmp_path / "o2")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_cli_extend_and_bad_input(tmp_path):
    from click.testing import CliRunner

    from tokkit_cli.main import cli

    tok = cached_tokenizer("gpt2")
    base = tiny_llama(tmp_path / "base", tok)
    de = tmp_path / "de.txt"
    de.write_text(GERMAN, encoding="utf-8")
    en = DATA / "moby_dick_excerpt.txt"
    r = CliRunner().invoke(cli, ["extend", "--model", str(base), str(de), "--add", "30", "--keep-text", str(en),
                                 "-o", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "ids changed 0" in r.output and (tmp_path / "out" / "model.safetensors").exists()
    before = sorted(p.name for p in tmp_path.iterdir())
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["--model", str(base), str(de), "--add", "30", "-o", str(tmp_path / "out")], "already exists"),
        (["--model", str(base), str(de), "--add", "100000", "-o", str(tmp_path / "x")], "the text gives only"),
        (["--model", str(base), str(empty), "--add", "3", "-o", str(tmp_path / "x")], "no text"),
        (["--tokenizer", "gpt2", str(tmp_path / "missing.txt"), "--add", "3", "-o", str(tmp_path / "x")], "matches no file"),
        (["--tokenizer", "gpt2", str(de), "--add", "0", "-o", str(tmp_path / "x")], "--add"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(cli, ["extend", *args, "--quiet"])
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output, (args, r.output)
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_heal_trains_the_rows_extend_built_and_keeps_the_rest(tmp_path):
    """extend -> heal: the report names the built rows and the teacher (the original model); ALM + LM
    training changes only the new rows."""
    import torch
    from safetensors.torch import load_file

    from tokkit.train.extend_tokenizer import extend_tokenizer
    from tokkit.transplant.extend import run_extend
    from tokkit.transplant.heal import HealConfig, plan_heal, run_heal

    tok = cached_tokenizer("gpt2")
    base = tiny_llama(tmp_path / "base", tok, tied=False)
    ext = extend_tokenizer(tok, docs=[GERMAN], add=40)
    extended = run_extend(base, ext, tmp_path / "ext").out_dir
    src = tmp_path / "de.txt"
    src.write_text(GERMAN, encoding="utf-8")
    cfg = HealConfig(model=str(extended), sources=(str(src),), steps=3, batch_size=2, seq_bytes=256, device="cpu")
    plan = plan_heal(cfg, tmp_path / "healed")
    assert Path(plan.teacher) == base  # the teacher is the original model, from the extension's report
    run_heal(plan, progress=False)
    before = load_file(extended / "model.safetensors")
    after = load_file(tmp_path / "healed" / "model.safetensors")
    n = len(tok.vocab)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(after[name][:n], before[name][:n])
        assert not torch.equal(after[name][n:], before[name][n:])
