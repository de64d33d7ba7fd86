"""The BPE-from-counts trainer against HF ``BpeTrainer`` itself (the oracle), on tie-heavy random word counts."""

from __future__ import annotations

import random

import pytest

from tokkit.train.bpe_counts import BpeCheckpointError, BpeSpec, to_hf_model, train_bpe_counts


def _hf(word_counts: dict[str, int], spec: BpeSpec):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, show_progress=False,
                                  special_tokens=list(spec.special_tokens), initial_alphabet=list(spec.initial_alphabet),
                                  max_token_length=spec.max_token_length)
    # each word as often as its count: HF counts exactly what we hand to the port
    tok.train_from_iterator([" ".join([w] * n) for w, n in word_counts.items()], trainer=trainer)
    return tok


def _ours(word_counts: dict[str, int], spec: BpeSpec, **kw):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    vocab, merges = train_bpe_counts(word_counts, spec, progress=False, **kw)
    return to_hf_model(tok, vocab, merges, spec.special_tokens)


def _random_counts(seed: int, alphabet: str, n_words: int) -> dict[str, int]:
    rng = random.Random(seed)
    out: dict[str, int] = {}
    for _ in range(n_words):
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        out[w] = out.get(w, 0) + rng.choice([1, 1, 2, 3, 5, 8])
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("opts", [
    {"vocab_size": 120},
    {"vocab_size": 400, "min_frequency": 3},
    {"vocab_size": 300, "max_token_length": 4, "special_tokens": ("<s>", "</s>"), "initial_alphabet": ("z", "é")},
])
def test_port_matches_hf_trainer_on_random_counts(seed, opts):
    # A tiny alphabet with repeated letters makes count ties, overlapping pairs ("aaa") and pairs re-queued
    # with partial positions everywhere: the cases where a re-implementation drifts from HF.
    counts = _random_counts(seed, "aab c", 300) if seed % 2 else _random_counts(seed, "abcdeéü", 500)
    counts = {w: n for w, n in counts.items() if " " not in w}
    spec = BpeSpec(**opts)
    assert _ours(counts, spec).to_str() == _hf(counts, spec).to_str()


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    counts = _random_counts(7, "abcdefg", 800)
    spec = BpeSpec(vocab_size=350)
    full = train_bpe_counts(counts, spec, progress=False)
    ckpt = tmp_path / "merges.ckpt"
    first = train_bpe_counts(counts, spec, progress=False, checkpoint=ckpt, checkpoint_every=10, stop_after=45)
    assert len(first[1]) == 45 and ckpt.exists()
    resumed = train_bpe_counts(counts, spec, progress=False, checkpoint=ckpt, resume=True)
    assert resumed == full and len(full[1]) > 200


def test_checkpoint_of_another_run_is_refused(tmp_path):
    counts = _random_counts(1, "abcd", 100)
    ckpt = tmp_path / "m.ckpt"
    train_bpe_counts(counts, BpeSpec(vocab_size=60), progress=False, checkpoint=ckpt, stop_after=3)
    with pytest.raises(BpeCheckpointError, match="another training run"):
        train_bpe_counts(counts, BpeSpec(vocab_size=61), progress=False, checkpoint=ckpt, resume=True)
    ckpt.write_bytes(b"not a pickle")
    with pytest.raises(BpeCheckpointError, match="not a tokkit merge checkpoint"):
        train_bpe_counts(counts, BpeSpec(vocab_size=60), progress=False, checkpoint=ckpt, resume=True)


def test_a_loader_is_called_once_and_trains_the_same():
    """train_bpe_counts takes a function returning the counts (so the dictionary is dropped once the merge
    state is built, not held beside the loop): same merges as the dictionary itself."""
    counts = _random_counts(3, "aab c", 400)
    counts = {w: n for w, n in counts.items() if " " not in w}
    spec = BpeSpec(vocab_size=200)
    calls = []

    def load():
        calls.append(1)
        return dict(counts)

    assert train_bpe_counts(load, spec, progress=False) == train_bpe_counts(counts, spec, progress=False)
    assert calls == [1]


def test_counts_input_hands_the_table_over_once():
    from tokkit.train.bpe import CountsInput

    src = CountsInput("table", resume=True)
    assert src.take() == "table" and src.resume
    with pytest.raises(RuntimeError, match="already handed"):
        src.take()
