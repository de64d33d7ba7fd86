"""Random UnigramLM tokenizers drawn from a text sample (ZeTT's ``sample_tokenizer``, scaled down).

ZeTT (arXiv:2405.07883 §3.2; ``zett/collator.py``) trains its hypernetwork on a *fresh tokenizer
per batch* so it learns to embed any tokenization: count the substrings of each pre-token, score
them by ``frequency x length``, perturb the log scores with noise whose scale is itself random,
keep the top pieces, add the byte alphabet and build a UnigramLM (no EM). We do the same over a
few kilobytes of text per step, and with probability ``multiword_prob`` also count whole spans of
2..``max_words`` words as pieces and let pieces cross word boundaries, so the network also sees
the multi-word tokens of supertoken tokenizers (which ZeTT's per-word sampler never produces).
Every tokenizer covers all 256 bytes, so any text encodes and every piece has a base decomposition.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import regex

from tokkit.formats.hf_json import bytes_to_unicode

__all__ = ["SampledTokenizer", "sample_tokenizer", "WORD_RE"]

#: GPT-2-style pre-tokens (a word keeps its leading space).
WORD_RE = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
_MAX_SUBSTRING = 16  # bytes, as ZeTT


@dataclass(frozen=True)
class SampledTokenizer:
    """A sampled UnigramLM: ids 0..255 are the single bytes, then the sampled pieces.

    Attributes:
        tokens: the bytes of each id.
        multiword: whether pieces may span several words.
        hf: the ``tokenizers.Tokenizer`` that encodes text with this vocabulary.
    """

    tokens: tuple[bytes, ...]
    multiword: bool
    hf: Any

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids


def _count(texts: Sequence[str], *, span: int) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        words = [w.encode("utf-8") for w in WORD_RE.findall(text)]
        for w in words:  # every substring of every pre-token, up to 16 bytes
            n = len(w)
            for i in range(n):
                for j in range(i + 2, min(n, i + _MAX_SUBSTRING) + 1):
                    counts[w[i:j]] += 1
        for k in range(2, span + 1):  # whole spans of k words (supertokens)
            for i in range(len(words) - k + 1):
                piece = b"".join(words[i:i + k])
                if len(piece) <= 2 * _MAX_SUBSTRING:
                    counts[piece] += 1
    return counts


def _valid_utf8_or_short(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def sample_tokenizer(texts: Sequence[str], *, rng: random.Random, vocab_size: int, noise_log_sigma: float,
                     max_words: int, multiword_prob: float) -> SampledTokenizer:
    """Draw one tokenizer from ``texts``.

    The vocabulary size is uniform in ``[vocab_size/2, vocab_size]``; the noise standard deviation
    of the log scores is ``noise_log_sigma * u`` with ``u ~ U(0, 1)`` (ZeTT draws it log-normally).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    multiword = max_words > 1 and rng.random() < multiword_prob
    counts = _count(texts, span=rng.randint(2, max_words) if multiword else 1)
    sigma = noise_log_sigma * rng.random()
    total = sum(c * len(p) for p, c in counts.items()) or 1
    # sort first: Counter order depends on insertion, the noise must not
    scored = []
    for p in sorted(counts):
        if not _valid_utf8_or_short(p):
            continue
        scored.append((math.log(counts[p] * len(p) / total) + rng.gauss(0.0, sigma), p))
    n = rng.randint(vocab_size // 2, vocab_size)
    scored.sort(key=lambda t: (-t[0], t[1]))
    kept = scored[:n]
    floor = min((s for s, _ in kept), default=0.0) - 10.0
    bmap = bytes_to_unicode()
    tokens = [bytes([b]) for b in range(256)] + [p for _, p in kept]
    vocab = [(bmap[b], floor) for b in range(256)] + [("".join(bmap[x] for x in p), s) for s, p in kept]
    tok = Tokenizer(models.Unigram(vocab, unk_id=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not multiword)
    tok.decoder = decoders.ByteLevel()
    return SampledTokenizer(tuple(tokens), multiword, tok)
