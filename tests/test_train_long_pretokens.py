"""A corpus with very long pre-tokens ('a' * 400_000 is one pre-token under GPT-2's regex) trains in time linear in
their length, into the tokenizer HF's trainer makes (quadratic there: 3.4 s at 100k, 57 s at 400k). The rule that
picks the merge loop is in tokkit.train.long_pretokens; these tests check that either choice gives the same bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tokkit.train import load_recipe, train_tokenizer
from tokkit.train import long_pretokens as lp
from tokkit.train.bpe_counts import BpeSpec, train_bpe_counts

LEGAL = Path(__file__).resolve().parents[1] / "data" / "legal" / "train.jsonl"
RULE = lp.Watch.linear


def _legal(n: int) -> list[str]:
    with open(LEGAL) as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def _train(tmp_path: Path, name: str, docs: list[str], monkeypatch, *, hf_only: bool, **over):
    """(tokenizer.json text, whether the linear merge loop trained it)."""
    routes: list[bool] = []

    def linear(self):
        routes.append(False if hf_only else RULE(self))
        return routes[-1]

    monkeypatch.setattr(lp.Watch, "linear", linear)
    rec = load_recipe(overrides={"vocab_size": 400, **over})
    res = train_tokenizer(out_dir=tmp_path / name, recipe=rec, iterables=[iter(docs)], progress=False)
    return (res.out_dir / "tokenizer.json").read_text(), routes == [True]


@pytest.mark.parametrize("case", ["run", "whitespace", "cjk", "dna", "specials+domain+held-out", "nfkc+lowercase",
                                  "char", "char-bytes"])
def test_long_pretokens_train_the_tokenizer_hf_trains(tmp_path, monkeypatch, case):
    rng = random.Random(0)
    docs, over = _legal(8), {}
    if case == "run":
        docs += ["b" * 20_000 + "c" * 9_000, "=" * 25_000]
    elif case == "whitespace":
        docs += ["x" + "\n" * 20_000 + "y", " \t" * 12_000]
    elif case == "cjk":
        docs += ["漢字" * 6_000]  # 12k characters, 36k byte-level symbols
    elif case == "dna":
        docs += ["".join(rng.choice("ACGT") for _ in range(30_000))]
    elif case == "specials+domain+held-out":
        docs = _legal(60) + ["q" * 30_000]
        over = {"special_tokens": ("<s>", "</s>"), "domain_tokens": ("§", "U.S.C."), "held_out": 0.2, "min_frequency": 3}
    elif case == "nfkc+lowercase":
        docs += ["ﬁ" * 6_000 + "A" * 6_000]  # NFKC makes 'ﬁ' two characters
        over = {"nfkc": True, "lowercase": True}
    else:
        docs += ["ab" * 15_000, "é" * 12_000]
        over = {"kind": "char", "vocab_size": 900, "max_token_length": 4 if case == "char" else 6,
                "max_token_unit": "chars" if case == "char" else "bytes"}
    hf, hf_route = _train(tmp_path, "hf", docs, monkeypatch, hf_only=True, **over)
    ours, linear = _train(tmp_path, "ours", docs, monkeypatch, hf_only=False, **over)
    assert not hf_route and linear, "the rule should pick the linear merge loop for this small corpus"
    assert ours == hf


def test_normal_text_stays_with_hf(tmp_path, monkeypatch):
    _, linear = _train(tmp_path, "legal", _legal(200), monkeypatch, hf_only=False)
    assert not linear


def test_the_rule_weighs_the_long_pretokens_against_the_corpus():
    split = lambda doc: [doc]  # noqa: E731 - one pre-token per document
    w = lp.Watch([["a" * 100_000, "short", "x" * (lp.LONG - 1)]], split)
    with pytest.raises(lp.UseLinearTrainer):
        list(w)
    assert (w.longest, w.cost) == (100_000, 100_000 ** 2)  # pre-tokens under LONG symbols are not counted
    w.chars = 10 ** 10  # the same pre-token in 10 GB of text: HF's extra seconds are cheaper than reading it again
    assert not w.linear()
    quiet = lp.Watch([["word " * 10_000]], lambda doc: pytest.fail("a document without a long run is not split"))
    assert len(list(quiet)) == 1 and quiet.cost == 0


def test_one_long_run_is_trained_by_the_linear_port(tmp_path, monkeypatch):
    """400k of one character: 57 s in HF's trainer, about 1 s in the port (timings: no assertion here;
    the rule sends it to the port, which this checks)."""
    seen = []
    real = lp.Watch.linear
    monkeypatch.setattr(lp.Watch, "linear", lambda self: seen.append(real(self)) or seen[-1])
    res = train_tokenizer(out_dir=tmp_path / "o", recipe=load_recipe(overrides={"vocab_size": 300}),
                          iterables=[["a" * 400_000]], progress=False)
    assert seen and seen[-1] is True
    vocab = json.loads((res.out_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert "a" * 2 ** 18 in vocab and "a" * 2 ** 19 not in vocab


@pytest.mark.parametrize("seed", range(12))
def test_long_word_merge_matches_hf_trainer(seed, monkeypatch):
    """The port's linear merge of a long word (every word taken that way here) against HF's BpeTrainer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    import tokkit.train.bpe_counts as bc

    monkeypatch.setattr(bc, "_LONG_WORD", 0)
    rng = random.Random(seed)
    alphabet = rng.choice(["a", "ab", "aab", "abc", "aaab"])
    counts: dict[str, int] = {}
    for _ in range(rng.randint(1, 12)):
        n = rng.choice([1, 5, 40, 600])
        w = rng.choice(alphabet) * n if rng.random() < 0.3 else "".join(rng.choice(alphabet) for _ in range(n))
        counts[w] = counts.get(w, 0) + rng.choice([1, 2, 3])
    spec = BpeSpec(**rng.choice([{"vocab_size": 60}, {"vocab_size": 150, "min_frequency": 2},
                                 {"vocab_size": 120, "max_token_length": 5, "special_tokens": ("<s>",)}]))
    vocab, merges = train_bpe_counts(counts, spec, progress=False)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join([w] * n) for w, n in counts.items()], trainer=trainers.BpeTrainer(
        vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, show_progress=False,
        special_tokens=list(spec.special_tokens), max_token_length=spec.max_token_length))
    hf = json.loads(tok.to_str())["model"]
    assert vocab == hf["vocab"] and [list(m) for m in merges] == hf["merges"]
