"""Differential tests: every public call of the handle against the reference library on the same file.

Oracles (never tokkit's own code): tiktoken's ``Encoding`` for the OpenAI encodings, and a tiktoken
``Encoding`` built from an HF byte-level file's ranks with its added tokens as special tokens (the
special-token arguments); HF ``tokenizers`` loaded afresh from the fixture (ids, ``skip_special_tokens``,
offsets); sentencepiece (ids, decode); transformers on the exported folder (sentencepiece offsets).
Texts: real multilingual paragraphs from ``data/`` and hypothesis-made strings built from them, from
special-token strings, added tokens, and arbitrary characters. Special-token arguments: for texts
holding 0-3 special strings, every ``allowed_special`` subset (plus ``"all"``) with every
``disallowed_special`` choice (``"all"``, ``()``, each subset) — ours raises exactly when tiktoken
raises, otherwise the ids are equal.
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cached_tokenizer
from tokkit.config import tokkit_home
from tokkit.errors import SpecialTokenError
from tokkit.names import ALIASES

ROOT = Path(__file__).resolve().parents[1]
TIKTOKEN = ("gpt2", "cl100k", "o200k")
BYTE_LEVEL_HF = ("llama3", "qwen2", "smollm2")
HF = ("llama3", "qwen2", "smollm2", "llama2", "gemma3")
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@lru_cache(maxsize=1)
def paragraphs() -> tuple[str, ...]:
    out = []
    for f in sorted((ROOT / "data" / "multilingual").glob("*.txt")) + sorted((ROOT / "data" / "heldout").glob("*.txt")):
        out += [p for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()][:12]
    return tuple(out)


@lru_cache(maxsize=None)
def hf_reference(alias: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokkit_home() / ALIASES[alias].fixture))


@lru_cache(maxsize=None)
def tiktoken_reference(alias: str):
    """tiktoken on the same ranks, every added token a tiktoken special token; and the added tokens HF
    always matches (no special strings for tokkit), which the oracle must then always allow."""
    import tiktoken

    if alias in TIKTOKEN:
        return cached_tokenizer(alias).native, frozenset()
    from tokkit.formats.fast_bpe import rank_parts

    p = rank_parts(json.loads((tokkit_home() / ALIASES[alias].fixture).read_text(encoding="utf-8")))
    added = {**p.specials, **p.plain_added}
    enc = tiktoken.Encoding(name=f"oracle-{alias}", pat_str=p.pattern, mergeable_ranks=p.ranks, special_tokens=added)
    return enc, frozenset(added) - cached_tokenizer(alias).special_tokens_set


def _specials(alias: str, k: int = 3) -> list[str]:
    tok = cached_tokenizer(alias)
    texts = sorted(tok.special_tokens_set)
    return [texts[0], texts[len(texts) // 2], texts[-1]][:k]


def _with_specials(text: str, specials: list[str]) -> str:
    words = text.split(" ")
    for j, s in enumerate(specials):
        words.insert(min(len(words), 1 + 3 * j), s)
    return " ".join(words)


def _choices(specials: list[str]):
    subsets = [frozenset(c) for r in range(len(specials) + 1) for c in itertools.combinations(specials, r)]
    return [*subsets, "all"], ["all", (), *[s for s in subsets if s]]


def _oracle(enc, always, text, allowed, disallowed):
    allowed = allowed if allowed == "all" else set(allowed) | always
    try:
        return enc.encode(text, allowed_special=allowed, disallowed_special=disallowed)
    except ValueError:
        return "raises"


def _ours(tok, text, allowed, disallowed):
    try:
        return tok.encode(text, allowed_special=allowed, disallowed_special=disallowed)
    except SpecialTokenError:
        return "raises"


# ---------------------------------------------------------------------- special-token arguments
@pytest.mark.parametrize("alias", TIKTOKEN + BYTE_LEVEL_HF)
def test_every_allowed_disallowed_combination(alias):
    tok = cached_tokenizer(alias)
    enc, always = tiktoken_reference(alias)
    base = paragraphs()[3][:160]
    for k in range(4):
        specials = _specials(alias)[:k]
        text = _with_specials(base, specials)
        allowed_choices, disallowed_choices = _choices(specials)
        for allowed, disallowed in itertools.product(allowed_choices, disallowed_choices):
            want = _oracle(enc, always, text, allowed, disallowed)
            assert _ours(tok, text, allowed, disallowed) == want, (alias, k, allowed, disallowed)
            if want != "raises":
                assert tok.encode_batch([text, base], allowed_special=allowed, disallowed_special=disallowed)[0] == want


@pytest.mark.parametrize("alias", ("llama2", "gemma3", "mistral", "tekken"))
def test_combinations_decide_as_tiktoken_on_other_backends(alias):
    """Backends tiktoken cannot run: raise exactly when tiktoken's rule raises (checked on a tiktoken
    Encoding given the same special strings), and each special id appears exactly as often."""
    import tiktoken

    tok = cached_tokenizer(alias)
    gpt2 = cached_tokenizer("gpt2").native
    specials = _specials(alias)
    base = paragraphs()[1][:120]
    assert not any(s in base for s in tok.special_tokens_set)
    fake = {s: gpt2.n_vocab + j for j, s in enumerate(specials)}  # the strings in play: tiktoken's "all" is theirs
    toy = tiktoken.Encoding(name="toy", pat_str=gpt2._pat_str, mergeable_ranks=gpt2._mergeable_ranks, special_tokens=fake)
    real = {s.text: s.id for s in tok.vocab.specials}
    for k in range(4):
        text = _with_specials(base, specials[:k])
        allowed_choices, disallowed_choices = _choices(specials[:k])
        for allowed, disallowed in itertools.product(allowed_choices, disallowed_choices):
            want = _oracle(toy, frozenset(), text, allowed, disallowed)
            got = _ours(tok, text, allowed, disallowed)
            assert (got == "raises") == (want == "raises"), (alias, allowed, disallowed)
            if want != "raises":
                for s in specials[:k]:
                    assert got.count(real[s]) == want.count(fake[s]), (alias, s, allowed, disallowed)
                assert tok.encode_batch([text], allowed_special=allowed, disallowed_special=disallowed) == [got]


# ---------------------------------------------------------------------- ids on real and generated text
def _text_strategy(alias: str):
    tok = cached_tokenizer(alias)
    pieces = st.sampled_from([p[:80] for p in paragraphs()]) | st.text(max_size=30) \
        | st.sampled_from(sorted(tok.special_tokens_set)[:40]) | st.sampled_from([" ", "\n", "\u00a0", "  ", "\t"])
    return st.lists(pieces, max_size=6).map("".join)


@pytest.mark.parametrize("alias", HF)
def test_hf_ids_decode_and_offsets(alias):
    tok = cached_tokenizer(alias)
    ref = hf_reference(alias)
    added = sorted(ref.get_added_tokens_decoder())

    @FEW
    @given(text=_text_strategy(alias), extra=st.lists(st.sampled_from(added), max_size=4))
    def check(text, extra):
        enc = ref.encode(text, add_special_tokens=False)
        assert tok.encode(text, allowed_special="all") == enc.ids
        ids, offsets = tok.encode_with_offsets(text, allowed_special="all")
        assert (ids, offsets) == (enc.ids, enc.offsets)
        mixed = enc.ids + extra
        for skip in (False, True):
            assert tok.decode(mixed, skip_special_tokens=skip) == ref.decode(mixed, skip_special_tokens=skip)
        assert tok.encode_batch([text, text[:5]], allowed_special="all") == [enc.ids, ref.encode(text[:5], add_special_tokens=False).ids]
        if not any(s in text for s in tok.special_tokens_set):
            assert tok.encode_ordinary(text) == enc.ids == tok.encode(text)

    check()
    for text in paragraphs():
        enc = ref.encode(text, add_special_tokens=False)
        assert tok.encode_with_offsets(text, allowed_special="all") == (enc.ids, enc.offsets)


@pytest.mark.parametrize("alias", TIKTOKEN + ("tekken",))
def test_tiktoken_ids_decode_and_offsets(alias):
    tok = cached_tokenizer(alias)
    enc = tok.native
    specials = sorted(enc.special_tokens_set)

    @FEW
    @given(text=_text_strategy(alias))
    def check(text):
        ids = enc.encode(text, allowed_special="all")
        assert tok.encode(text, allowed_special="all") == ids
        assert tok.encode_ordinary(text) == enc.encode_ordinary(text)
        assert tok.decode(ids) == enc.decode(ids)
        plain = [i for i in ids if i not in {enc.encode_single_token(s) for s in specials}]
        assert tok.decode(ids, skip_special_tokens=True) == enc.decode(plain)
        got_ids, offsets = tok.encode_with_offsets(text, allowed_special="all")
        assert got_ids == ids
        try:
            starts = enc.decode_with_offsets(ids)[1]
        except UnicodeDecodeError:  # lone surrogates: tiktoken's own offsets refuse them
            return
        assert [s for s, _ in offsets] == starts
        assert all(0 <= s < e <= len(text) for s, e in offsets)

    check()
    docs = list(paragraphs())
    assert tok.encode_batch(docs, disallowed_special=()) == [enc.encode(d, disallowed_special=()) for d in docs]


def _spm_with_controls(sp, ids: list[int]) -> str:
    """Oracle for ``decode`` keeping control pieces: each control id is its piece's text, the ids between
    them are decoded by sentencepiece, which drops the leading space only at the start of the text."""
    out, seg = [], []
    for i in [*ids, None]:
        if i is None or sp.is_control(i):
            if seg:
                out.append(("" if not out or not sp.id_to_piece(seg[0]).startswith("\u2581") else " ") + sp.decode(seg))
            out.append("" if i is None else sp.id_to_piece(i))
            seg = []
        else:
            seg.append(i)
    return "".join(out)


@pytest.mark.parametrize("rewritten", (True, False), ids=("controls-as-text model", "segments"))
def test_sentencepiece_decode_keeps_control_text(rewritten, monkeypatch):
    """Control ids between byte pieces, unknown ids and words decode as the per-segment oracle, by the
    rewritten processor (one C call) and by the segment fallback used when the model cannot be rewritten."""
    import random

    import tokkit.formats.decoding as decoding
    from tokkit import load_tokenizer

    if not rewritten:
        monkeypatch.setattr(decoding, "_controls_as_text", lambda sp, controls: None)
    tok = load_tokenizer(str(cached_tokenizer("mistral")._src.path))
    sp, rng, docs = tok.native, random.Random(0), paragraphs()
    for _ in range(400):
        d = rng.choice(docs)
        a = rng.randrange(len(d))
        ids = sp.encode(d[a:a + rng.randrange(1, 60)])
        for _ in range(rng.randrange(4)):
            ids.insert(rng.randrange(len(ids) + 1), rng.choice([0, 1, 2, 1, 2, rng.randrange(3, 259)]))
        assert tok.decode(ids) == _spm_with_controls(sp, ids), ids
    assert tok.decode([1, 22557, 2, 1]) == "<s> Hello</s><s>"
    # skip_special_tokens: unknown ids dropped (transformers' rule) whether or not the text also spells
    # the unknown piece's mark; the mark alone (from byte pieces) stays
    mark = sp.encode("a ⁇ b")
    assert 0 not in mark and tok.decode(mark, skip_special_tokens=True) == sp.decode(mark) == "a ⁇ b"
    assert tok.decode([0, *mark, 0, 1], skip_special_tokens=True) == sp.decode(mark)


def test_sentencepiece_ids_decode_and_offsets(tmp_path):
    import transformers

    tok = cached_tokenizer("mistral")
    sp = tok.native
    hf = transformers.AutoTokenizer.from_pretrained(tok.save(tmp_path / "m"))
    unk = sp.unk_id()

    @FEW
    @given(text=_text_strategy("mistral"), extra=st.lists(st.sampled_from([0, 1, 2, 13, 243, 162]), max_size=4))
    def check(text, extra):
        ids = sp.encode(text)
        assert tok.encode_ordinary(text) == ids == tok.encode(text, disallowed_special=())
        mixed = [*extra, *ids, *extra]
        assert tok.decode([i for i in mixed if not sp.is_control(i)]) == sp.decode([i for i in mixed if not sp.is_control(i)])
        assert tok.decode(mixed, skip_special_tokens=True) == sp.decode([i for i in mixed if i != unk])
        assert tok.decode(mixed) == _spm_with_controls(sp, mixed)
        if not any(s in text for s in tok.special_tokens_set):  # transformers matches them; tokkit refuses
            got = tok.encode_with_offsets(text)
            ref = hf(text, add_special_tokens=False, return_offsets_mapping=True)
            assert got == (ref["input_ids"], [tuple(o) for o in ref["offset_mapping"]])

    check()
    docs = list(paragraphs())
    assert tok.encode_batch(docs, disallowed_special=()) == [sp.encode(d) for d in docs]


@pytest.mark.parametrize("alias,k", [("llama2", 3), ("gemma3", 2)])
def test_hf_partly_allowed_equals_hf_matching_only_those(alias, k):
    """Some special strings allowed, others text: the ids and offsets are those of ``tokenizers`` itself
    given a file in which only the allowed strings are special tokens (the others flagged special and
    not matched), with and without the file's post-processor."""
    from tokenizers import Tokenizer

    tok = cached_tokenizer(alias)
    specials = _specials(alias)[:k]
    data = json.loads(hf_reference(alias).to_str())
    text = _with_specials(paragraphs()[5][:100], specials)
    for r in range(1, k):
        for allowed in list(itertools.combinations(specials, r))[: 1 if alias == "gemma3" else None]:  # a Gemma rebuild: ~10 s
            for a in data["added_tokens"]:
                a["special"] = a["content"] in tok.special_tokens_set and a["content"] not in allowed
            ref = Tokenizer.from_str(json.dumps(data))
            ref.encode_special_tokens = True
            for add in (False, True):
                want = ref.encode(text, add_special_tokens=add)
                kw = dict(allowed_special=set(allowed), disallowed_special=(), add_special_tokens=add)
                assert tok.encode(text, **kw) == want.ids, (alias, allowed, add)
                assert tok.encode_with_offsets(text, **kw) == (want.ids, want.offsets), (alias, allowed, add)
