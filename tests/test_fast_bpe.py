"""tiktoken's core for HF byte-level BPEs (tokkit.formats.fast_bpe): ids identical to HF's, or HF is used."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cached_tokenizer
from tokkit import load_tokenizer
from tokkit.formats.fast_bpe import NotExactError, rank_parts
from tokkit.formats.fast_bpe_check import SAMPLE, fast_encoder

ROOT = Path(__file__).resolve().parents[1]
#: The byte-level aliases of the default fixture set that HF tokenizers runs (gpt2/cl100k/o200k are tiktoken already).
BYTE_LEVEL = ("llama3", "qwen2", "smollm2")


def _real_texts() -> list[str]:
    texts: list[str] = list(SAMPLE)
    for f in sorted((ROOT / "data" / "heldout").glob("*.txt")) + sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = f.read_text(encoding="utf-8")
        texts.append(text)
        texts += [p for p in text.split("\n\n") if p] + [line for line in text.splitlines() if line][:400]
    for name in ("heldout.jsonl", "train.jsonl"):
        texts += [json.loads(x)["text"] for x in (ROOT / "data" / "legal" / name).read_text(encoding="utf-8").splitlines()[:150]]
    return texts


TEXTS = _real_texts()


def _hf(tok, texts, **kw):
    return [e.ids for e in tok.native.encode_batch(texts, add_special_tokens=kw.get("add_special_tokens", False))]


@pytest.mark.parametrize("alias", BYTE_LEVEL)
def test_fast_path_is_taken_and_ids_equal_hf_on_real_text(alias):
    tok = cached_tokenizer(alias)
    assert tok._fast is not None, f"{alias} fell back to HF"
    assert len(TEXTS) > 2000
    want = _hf(tok, TEXTS)
    got = tok.encode_batch(TEXTS, allowed_special="all")
    bad = [t[:60] for t, a, b in zip(TEXTS, want, got) if a != b]
    assert not bad, f"{len(bad)} texts differ, first {bad[:3]}"
    assert [tok.encode(t, allowed_special="all") for t in TEXTS[:80]] == want[:80]


@pytest.mark.parametrize("alias", BYTE_LEVEL)
def test_special_and_added_tokens_and_affixes_equal_hf(alias, monkeypatch):
    tok = cached_tokenizer(alias)
    specials = [s.text for s in tok.vocab.specials][:6]
    added = [a["content"] for a in json.loads(tok.native.to_str())["added_tokens"]]
    texts = [f"x{s}y {s}\u0338 é{s}e\u0301" for s in specials + added[-6:]] + ["Hello world", ""]
    assert tok.encode_batch(texts, allowed_special="all") == _hf(tok, texts)
    monkeypatch.setenv("TOKKIT_FAST_BPE", "0")  # the same tokenizer on the HF path: the fast path changes no id
    slow = load_tokenizer(alias)
    assert slow._fast is None
    want = slow.encode_batch(texts, allowed_special="all", add_special_tokens=True)
    assert tok.encode_batch(texts, allowed_special="all", add_special_tokens=True) == want
    assert [tok.encode(t, allowed_special="all", add_special_tokens=True) for t in texts] == want
    plain = [a["content"] for a in json.loads(tok.native.to_str())["added_tokens"] if not a["special"]]
    control = {s.text for s in tok.vocab.specials}  # control-like added tokens are refused unless allowed (issue 15)
    for p in plain:  # HF splits non-special added tokens out of any text: so must we
        allowed = {p} if p in control else frozenset()
        assert tok.encode(f"a{p}b", allowed_special=allowed) == tok.native.encode(f"a{p}b", add_special_tokens=False).ids


def test_qwen_nfc_is_applied_between_added_tokens_not_across():
    tok = cached_tokenizer("qwen2")
    assert tok._fast.parts.nfc
    for text in ["cafe\u0301 A\u030a \u1100\u1161\u11a8", "<|im_end|>\u0338 e\u0301", "=\u0338 <|im_start|>a\u0308<|im_end|>"]:
        assert tok.encode(text, allowed_special="all") == tok.native.encode(text, add_special_tokens=False).ids


_ALPHABET = st.one_of(
    st.sampled_from(list(" \t\n\r\u00a0\u2003\u3000\u0085\u2028\x0b\x0c'sStTdDmMlLrReEvV0123456789٣½²_-.,!?\"`/\\<>|{}")),
    st.characters(codec="utf-8"),
)


@pytest.mark.parametrize("alias", BYTE_LEVEL)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(_ALPHABET, max_size=40))
def test_fuzz_ids_equal_hf(alias, text):
    tok = cached_tokenizer(alias)
    want = tok.native.encode(text, add_special_tokens=False).ids
    allowed = "all" if tok._policy.found(text) else frozenset()
    assert tok.encode(text, allowed_special=allowed) == want


def test_handle_pickles_and_rebuilds_the_fast_path():
    tok = load_tokenizer("llama3")
    again = pickle.loads(pickle.dumps(tok))
    assert again._fast is not None and again.encode("naïve café 🤗") == tok.native.encode("naïve café 🤗", add_special_tokens=False).ids


def test_not_byte_level_falls_back_with_a_reason(caplog):
    tok = cached_tokenizer("gemma3")
    with caplog.at_level(logging.INFO, logger="tokkit.formats.fast_bpe_check"):
        assert tok._fast is None
    assert tok.encode("Hello world") == [9259, 1902]


def _tiny(extra: dict[str, int] | None = None, merges: list[str] | None = None):
    """A byte-level BPE on all 256 bytes (ids = byte values) plus ``extra`` tokens made by ``merges``."""
    from tokkit.formats.hf_json import unicode_to_bytes

    vocab = {ch: b for ch, b in unicode_to_bytes().items()}
    vocab.update(extra if extra is not None else {"ab": 256, "bc": 257})
    return {"version": "1.0", "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "vocab": vocab, "merges": merges if merges is not None else ["a b", "b c"]}}


def test_refusals_name_the_reason():
    rank_parts(_tiny())
    with pytest.raises(NotExactError, match="merge order"):
        rank_parts(_tiny(merges=["b c", "a b"]))
    with pytest.raises(NotExactError, match="not produced by any merge"):
        rank_parts(_tiny({"ab": 256, "bc": 257, "ca": 258}))
    nfkc = _tiny()
    nfkc["normalizer"] = {"type": "NFKC"}
    with pytest.raises(NotExactError, match="NFKC"):
        rank_parts(nfkc)
    prefix = _tiny()
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    with pytest.raises(NotExactError, match="add_prefix_space"):
        rank_parts(prefix)


def test_texts_with_a_byte_no_token_has_go_to_hf():
    """HF drops a byte that is no token (SmolLM2 lacks 0xF2 and some controls); tiktoken cannot encode it."""
    from tokenizers import Tokenizer

    data = _tiny()
    del data["model"]["vocab"]["ò"]  # byte 0xF2: the lead byte of U+80000..U+BFFFF
    del data["model"]["vocab"]["Ģ"]  # byte 0x80: a continuation byte ("Ā" is C4 80)
    hf = Tokenizer.from_str(json.dumps(data))
    fast = fast_encoder(hf, data)
    texts = ["ab \U000b9a90§ bc", "x Ā y", "abc", "\x80 plain é"]
    assert fast is not None
    want = [hf.encode(t).ids for t in texts]
    assert [fast.encode(t) for t in texts] == want
    assert fast.encode_batch(texts, with_special=[False] * 4) == want
    assert fast.encode_batch(texts, with_special=[False] * 4, add_special_tokens=True) == want


def test_unrebuilt_token_without_ignore_merges_falls_back():
    """'abc' made by merge (ab, c) while (b, c) comes first: BPE on 'abc' gives a+bc, never abc. tiktoken
    would look the whole pre-token up and return abc; HF (ignore_merges off) would not."""
    from tokenizers import Tokenizer

    data = _tiny({"bc": 256, "ab": 257, "abc": 258}, ["b c", "a b", "ab c"])
    hf = Tokenizer.from_str(json.dumps(data))
    assert hf.encode("abc").ids == [97, 256]
    assert fast_encoder(hf, data) is None
    data["model"]["ignore_merges"] = True
    hf = Tokenizer.from_str(json.dumps(data))
    assert hf.encode("abc").ids == [258]
    fast = fast_encoder(hf, data)
    assert fast is not None and fast.encode("abc") == [258]


def test_trained_outputs(tmp_path, monkeypatch):
    """A plain trained BPE runs on tiktoken with HF's ids; a two-stage supertoken one fails the self-check."""
    from tokkit.train import load_recipe, train_tokenizer

    monkeypatch.setenv("TOKKIT_HOME", str(tmp_path / "home"))
    train = ROOT / "data" / "legal" / "train.jsonl"
    plain = tmp_path / "plain"
    train_tokenizer([train], out_dir=plain, recipe=load_recipe(overrides={"vocab_size": 2048, "held_out": 0.0}), progress=False)
    tok = load_tokenizer(plain / "tokenizer.json")
    assert tok._fast is not None
    assert tok.encode_batch(TEXTS, allowed_special="all") == _hf(tok, TEXTS)
    assert list((tmp_path / "home" / "fast_bpe").glob("*.json")), "verdict not cached"
    again = load_tokenizer(plain / "tokenizer.json")  # second load: cached verdict, same ids
    assert again._fast is not None and again.encode_batch(TEXTS[:50], allowed_special="all") == _hf(tok, TEXTS[:50])
    sup = tmp_path / "sup"
    train_tokenizer([train], out_dir=sup, recipe=load_recipe("supertoken-32k", overrides={"vocab_size": 1024, "held_out": 0.0}),
                    progress=False)
    stok = load_tokenizer(sup / "tokenizer.json")
    assert stok._fast is None  # two-stage merges: tiktoken's rule reorders them, the self-check sees it
    assert stok.encode_batch(TEXTS[:100], allowed_special="all") == _hf(stok, TEXTS[:100])  # whichever path it took, HF's ids


@pytest.mark.parametrize("alias", ["smollm2", "cl100k"])
def test_chunked_batch_on_threads_equals_one_by_one(alias, monkeypatch):
    """encode_batch runs contiguous runs on a pool (tokkit.formats.batching); forced onto the pool for
    a mixed batch (real documents, one-token strings, special tokens), every id and the order hold."""
    import tokkit.formats.batching as batching

    tok = cached_tokenizer(alias)
    special = tok.vocab.specials[0].text
    words = [tok.vocab[i].decode("utf-8", "replace") for i in range(0, len(tok.vocab), 97)]
    texts = TEXTS[:300] + words + [f"{w}{special}{w}" for w in words[:50]]
    want = [tok.encode(t, allowed_special="all") for t in texts]
    monkeypatch.setattr(batching, "SERIAL_CHARS", 0)
    monkeypatch.setattr(batching.os, "cpu_count", lambda: 4)
    assert tok.encode_batch(texts, allowed_special="all") == want
    specials = [s.text for s in tok.vocab.specials]
    plain = [t for t in texts if not any(s in t for s in specials)]
    assert tok.encode_batch(plain) == [tok.encode(t) for t in plain]


def test_chunk_cuts_cover_every_item_once_in_order():
    from tokkit.formats.batching import _cuts, map_chunked

    assert _cuts([1, 1, 1, 1], 2) == [0, 2, 4]
    assert _cuts([100, 1, 1, 1], 4) == [0, 1, 2, 3, 4]
    assert _cuts([], 3) == [0]
    assert _cuts([0, 0, 5], 2) == [0, 3]
    items = [str(i) * (i % 7) for i in range(1000)]
    assert map_chunked(lambda s: s[::-1], items, sizes=[70_000] * 1000, num_threads=3) == [s[::-1] for s in items]


@pytest.mark.parametrize("alias", ["cl100k", "llama3", "smollm2"])
def test_lone_surrogate_takes_the_wrappers_replacement(alias):
    """encode's hot path calls the Rust core directly, which refuses lone surrogates; such text goes the
    long way and gets tiktoken's replacement character, as before."""
    tok = cached_tokenizer(alias)
    assert tok.encode("caf\ud800 bar") == tok.encode("caf\ufffd bar")
    assert tok.encode_batch(["caf\ud800 bar"]) == [tok.encode("caf\ufffd bar")]
