"""Toy models of both tokenizer families trained in-process on the real texts of data/multilingual/.

* ``byte_level``: HF byte-level BPE with the GPT-2 regex pre-tokenizer (look-ahead at whitespace),
  every byte a token, ~600 ids: rare characters stay split into 1-3 byte tokens, as 首 is in SmolLM2.
* ``sentencepiece``: SentencePiece-style BPE (``▁`` for space, dummy prefix, no pre-tokenizer) with
  ``<0xNN>`` byte fallback for the characters outside its 150-character alphabet, as Llama-2/Gemma.

The token LM is a seeded random bigram model over the whole vocabulary (every token, special ones
included, has mass everywhere), so canonical covers leak and ``log Z_n < 0`` is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import tokkit

TEXTS_DIR = Path(__file__).resolve().parents[1] / "data" / "multilingual"
SCRIPTS = ("ja", "zh", "ru", "fa", "emoji", "code")


def texts() -> dict[str, str]:
    """The six real texts (Japanese, Chinese, Cyrillic, Arabic script, emoji, Python), ~1,000 bytes each."""
    return {name: (TEXTS_DIR / f"{name}.txt").read_text(encoding="utf-8") for name in SCRIPTS}


def _train(tk, vocab_size: int, **kw):
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, **kw)
    tk.train_from_iterator(list(texts().values()), trainer)
    return json.loads(tk.to_str())


def byte_level_json(vocab_size: int = 600) -> dict:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    return _train(tk, vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def sentencepiece_json(vocab_size: int = 500, alphabet: int = 150) -> dict:
    """Train pieces on ``▁``-normalised text, then lay the vocabulary out as Llama-2 does:
    ``<unk> <s> </s>``, the 256 byte-fallback tokens, then the pieces."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    # trained word by word as SentencePiece does (pieces never cross a "▁"); used without a pre-tokenizer
    tk.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trained = _train(tk, vocab_size, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=alphabet,
                     initial_alphabet=["▁"])
    pieces = sorted((i, p) for p, i in trained["model"]["vocab"].items() if p not in ("<unk>", "<s>", "</s>"))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for _, p in pieces:
        vocab.setdefault(p, len(vocab))
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": trained["normalizer"], "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": trained["model"]["merges"]},
    }


FAMILIES = {"byte_level": byte_level_json, "sentencepiece": sentencepiece_json}


def toy_tokenizer(family: str, folder: Path) -> tokkit.Tokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{family}.json"
    path.write_text(json.dumps(FAMILIES[family](), ensure_ascii=False), encoding="utf-8")
    return tokkit.load_tokenizer(path)


class BigramLM:
    """``log q(t | τ) = log_softmax(W[last(τ)])`` with seeded Gaussian ``W`` (row V: empty context)."""

    def __init__(self, vocab_size: int, *, seed: int = 0, scale: float = 2.0) -> None:
        rng = np.random.default_rng(seed)
        w = rng.normal(0.0, scale, size=(vocab_size + 1, vocab_size))
        self.table = w - np.logaddexp.reduce(w, axis=1, keepdims=True)
        self.V = vocab_size

    def __call__(self, ctx: tuple[int, ...]) -> np.ndarray:
        return self.table[ctx[-1] if ctx else self.V]

    def seq_logprob(self, ids, eos: int | None = None) -> float:
        """log Q(ids) (· EOS when given), summed token by token: independent of the byte engine."""
        prev = [self.V] + list(ids)
        lp = float(sum(self.table[p, t] for p, t in zip(prev, ids)))
        if eos is not None:
            lp += float(self.table[prev[-1], eos])
        return lp
