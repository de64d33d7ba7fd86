"""Exact bytes in and out: bytes no token spells (SmolLM2) and added tokens that are control markers (Gemma 3,
Qwen), each checked against the reference library (transformers, from the same files)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import cached_tokenizer, need_fixture
from tokkit.config import tokkit_home
from tokkit.errors import SpecialTokenError, UnencodableBytesError

#: SmolLM2's GGUF-converted vocabulary has no token for these 21 byte values (issue 15)
SMOLLM2_MISSING = (0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100))


def _hf(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokkit_home() / folder))


@pytest.fixture(scope="module")
def smollm2():
    need_fixture("smollm2")
    return cached_tokenizer("smollm2")


def test_smollm2_unencodable_bytes_named_and_refused_in_strict_mode(smollm2):
    from tokkit.names import resolve_model

    assert smollm2.vocab.unencodable_bytes() == SMOLLM2_MISSING
    assert smollm2.vocab.report().unencodable_bytes == SMOLLM2_MISSING
    ref = _hf(str(resolve_model("smollm2").relative_to(tokkit_home())))
    for text in ["a\x16b", "x\x04y\x1dz", "tab\there"]:
        assert smollm2.encode(text) == ref.encode(text, add_special_tokens=False)  # the reference drops them too
    assert smollm2.encode("a\x16b") == [81, 82]
    with pytest.raises(UnencodableBytesError, match=r"0x16 .*first at byte 1"):
        smollm2.encode("a\x16b", strict=True)
    assert smollm2.encode("tab\there", strict=True) == smollm2.encode("tab\there")
    with pytest.raises(TypeError):
        smollm2.encode("a", True)  # strict is keyword-only


def test_cli_vocab_report_and_lint_name_the_bytes(smollm2):
    from tokkit_cli.main import cli

    r = CliRunner().invoke(cli, ["vocab", "smollm2", "--report", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output)["unencodable_bytes"] == [f"0x{b:02x}" for b in SMOLLM2_MISSING]
    r = CliRunner().invoke(cli, ["lint-tokenizer", "smollm2"])
    assert r.exit_code == 1 and "21 byte value(s) have no token" in r.output and "0x16" in r.output


@pytest.fixture(scope="module")
def gemma3():
    need_fixture("gemma3")
    return cached_tokenizer("gemma3"), _hf("tokenizers/gemma3")


def test_gemma3_mask_is_refused_unless_allowed_then_matches_transformers(gemma3):
    tok, ref = gemma3
    texts = ["a <mask> b", "x<unused0>y", "[multimodal] and <mask><mask>"]
    for text in texts:
        with pytest.raises(SpecialTokenError, match="allowed_special"):
            tok.encode(text)
        want = ref.encode(text, add_special_tokens=False)
        assert tok.encode(text, allowed_special="all") == want
    assert ref.encode("a <mask> b", add_special_tokens=False) == [236746, 236743, 4, 518]
    assert tok.encode("a <mask> b", allowed_special={"<mask>"}) == [236746, 236743, 4, 518]
    # as text when disallowed_special=(): no control id, the bytes come back
    ids = tok.encode("a <mask> b", disallowed_special=())
    assert 4 not in ids and tok.decode(ids) == "a <mask> b"
    # HTML tags are added tokens too, but text: encoded silently, as the reference does
    html = "<table><tr><td>1</td></tr></table> <h1>T</h1>"
    assert tok.encode(html) == ref.encode(html, add_special_tokens=False)


def test_control_markers_are_specials_not_text_tokens(gemma3):
    from tokkit.bytelevel.table import TokenTable  # torch-free module

    tok, _ = gemma3
    v = tok.vocab
    by_text = {s.text: s.id for s in v.specials}
    assert by_text["<mask>"] == 4 and by_text["[multimodal]"] == 5 and "<table>" not in by_text
    assert 4 not in set(TokenTable.from_vocab(v).ordinary.tolist())  # never spelled by byte-level models


def test_qwen_fim_markers_refused_unless_allowed():
    need_fixture("qwen2")
    tok, ref = cached_tokenizer("qwen2"), _hf("tokenizers/qwen")
    text = "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>"
    with pytest.raises(SpecialTokenError):
        tok.encode(text)
    assert tok.encode(text, allowed_special="all") == ref.encode(text, add_special_tokens=False)
