"""Brute-force oracles for tokkit.bytelevel: toy tokenizers, toy byte sources, ideal and leaky token LMs.

Everything here is enumeration, no cleverness: the byte source is a seeded Markov chain over a tiny
alphabet truncated at ``max_len``; the *ideal* token LM is the exact pushforward of that source
through the real (HF ``tokenizers``) encoder, built by enumerating every string; the *leaky* LM mixes
it with a uniform distribution so some mass sits on non-canonical sequences.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

import tokkit
from tokkit.formats.hf_json import bytes_to_unicode

B2U = bytes_to_unicode()


def _bl(s: str) -> str:
    """Text -> GPT-2 byte-level spelling."""
    return "".join(B2U[b] for b in s.encode("utf-8"))


def _bpe_json(merges: list[tuple[str, str]], *, regex: bool) -> dict:
    base = [_bl(c) for c in "ab "]
    vocab = {"<|endoftext|>": 0}
    for t in base:
        vocab.setdefault(t, len(vocab))
    for a, b in merges:
        vocab.setdefault(_bl(a + b), len(vocab))
    return {
        "version": "1.0",
        "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": regex},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[_bl(a), _bl(b)] for a, b in merges]},
    }


#: Plain byte-level BPE: tokens may contain "a " so no boundary is stable.
BPE_MERGES = [("a", "b"), (" ", "a"), ("b", "a"), ("ab", "a"), ("a", " "), (" a", "b"), ("b", "b"), ("ba", " ")]
#: GPT-2 regex pre-tokenizer (look-ahead `\s+(?!\S)`), with a two-space token: prefix closure fails.
REGEX_MERGES = [("a", "b"), (" ", "a"), ("b", "a"), ("ab", "a"), (" ", " "), (" a", "b"), (" ", "b"), ("b", "b")]


def _spm_json() -> dict:
    pieces = ["▁", "a", "b", "▁a", "ab", "▁b", "▁ab", "ba", "▁▁", "aa"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for p in pieces:
        vocab[p] = len(vocab)
    merges = [("▁", "a"), ("a", "b"), ("▁", "b"), ("▁a", "b"), ("b", "a"), ("▁", "▁"), ("a", "a")]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                          {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }


TOYS = {
    "bpe": (lambda: _bpe_json(BPE_MERGES, regex=False), "ab "),
    "bpe_regex": (lambda: _bpe_json(REGEX_MERGES, regex=True), "ab "),
    "spm": (_spm_json, "ab c"),  # "c" is not a piece: byte fallback <0x63>
}


def toy_tokenizer(name: str, folder: Path) -> tuple[tokkit.Tokenizer, str]:
    """Write toy ``name``'s tokenizer.json into ``folder`` and load it with tokkit; also return its alphabet."""
    make, alphabet = TOYS[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(make(), ensure_ascii=False), encoding="utf-8")
    return tokkit.load_tokenizer(path), alphabet


# ---------------------------------------------------------------------- byte source
class ByteSource:
    """A seeded Markov chain over ``alphabet`` with a stop probability, cut at ``max_len`` characters."""

    def __init__(self, alphabet: str, max_len: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.alphabet = alphabet
        self.max_len = max_len
        k = len(alphabet)
        self.trans = rng.dirichlet(np.ones(k + 1) * 0.7, size=k + 1)  # row: previous (k = start); col k = stop
        self.prob: dict[str, float] = {}
        for n in range(max_len + 1):
            for chars in itertools.product(alphabet, repeat=n):
                s = "".join(chars)
                p, prev = 1.0, k
                for c in s:
                    j = alphabet.index(c)
                    p *= self.trans[prev, j]
                    prev = j
                if n < max_len:
                    p *= self.trans[prev, k]
                self.prob[s] = p  # at max_len the string stops with probability 1
        self.prefix: dict[bytes, float] = defaultdict(float)
        for s, p in self.prob.items():
            b = s.encode()
            for i in range(len(b) + 1):
                self.prefix[b[:i]] += p

    def next_byte(self, x: bytes) -> np.ndarray:
        """(257,) true next-byte probabilities after ``x`` (index 256 = end)."""
        out = np.zeros(257)
        px = self.prefix.get(x, 0.0)
        for c in self.alphabet:
            for_b = x + c.encode()
            out[for_b[len(x)]] += self.prefix.get(for_b, 0.0) if len(c.encode()) == 1 else 0.0
        try:
            out[256] = self.prob.get(x.decode(), 0.0)
        except UnicodeDecodeError:
            pass
        return out / px


# ---------------------------------------------------------------------- token LMs
class IdealLM:
    """The exact pushforward of a byte source through ``tok``: q(t|τ) = W(τt)/W(τ)."""

    def __init__(self, tok: tokkit.Tokenizer, src: ByteSource, eos_id: int) -> None:
        self.V = len(tok.vocab)
        self.eos = eos_id
        self.w: dict[tuple[int, ...], float] = defaultdict(float)
        self.end: dict[tuple[int, ...], float] = defaultdict(float)
        self.enc: dict[str, tuple[int, ...]] = {}
        self.children: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for s, p in src.prob.items():
            ids = tuple(tok.encode(s))
            self.enc[s] = ids
            self.end[ids] += p
            for j in range(len(ids) + 1):
                self.w[ids[:j]] += p
                if j < len(ids):
                    self.children[ids[:j]].add(ids[j])

    def __call__(self, ctx: tuple[int, ...]) -> np.ndarray:
        ctx = tuple(ctx)
        wc = self.w.get(ctx, 0.0)
        if wc == 0.0:
            return np.full(self.V, -math.log(self.V))
        p = np.zeros(self.V)
        for t in self.children.get(ctx, ()):
            p[t] = self.w[ctx + (t,)]
        p[self.eos] += self.end.get(ctx, 0.0)
        with np.errstate(divide="ignore"):
            return np.log(p / wc)


class LeakyLM:
    """``(1-eps)·ideal + eps·uniform``: puts mass on non-canonical sequences."""

    def __init__(self, ideal: IdealLM, eps: float = 0.1) -> None:
        self.ideal, self.eps = ideal, eps

    def __call__(self, ctx: tuple[int, ...]) -> np.ndarray:
        p = (1 - self.eps) * np.exp(self.ideal(ctx)) + self.eps / self.ideal.V
        return np.log(p)


def seq_logprob(lm, ids: tuple[int, ...], eos: int | None = None) -> float:
    """log Q(ids) (and · EOS when ``eos`` is given)."""
    lp = sum(float(lm(ids[:j])[ids[j]]) for j in range(len(ids)))
    if eos is not None:
        lp += float(lm(ids)[eos])
    return lp


def all_tokenizations(table_tokens: dict[int, bytes], x: bytes) -> list[tuple[int, ...]]:
    """Every sequence of ordinary tokens whose bytes concatenate to exactly ``x``."""
    out: list[tuple[int, ...]] = []

    def rec(pos: int, acc: tuple[int, ...]) -> None:
        if pos == len(x):
            out.append(acc)
            return
        for i, t in table_tokens.items():
            if t and x.startswith(t, pos):
                rec(pos + len(t), acc + (i,))

    rec(0, ())
    return out


def naive_next_byte(lm, tok: tokkit.Tokenizer, x: str) -> np.ndarray:
    """Token-level baseline: first byte of the next token after enc(x) (tokenization bias)."""
    q = np.exp(lm(tuple(tok.encode(x))))
    out = np.zeros(257)
    for i, t in enumerate(tok.vocab.tokens):
        if i in tok.vocab.special_ids:
            out[256] += q[i]
        elif t:
            out[t[0]] += q[i]
    return out / out.sum()
