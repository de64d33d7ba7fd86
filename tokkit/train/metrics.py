"""Intrinsic tokenizer metrics on raw text, computed from token ids and the exact bytes of each token.

Definitions (stated, because papers differ):

* bytes/token and tokens/char on the raw UTF-8 text (no normalization, so a lossy tokenizer cannot
  look better by dropping whitespace -- and it is flagged by the round trip anyway);
* fertility = tokens per whitespace-separated word, a token counting for every word it overlaps;
  continued words = share of words with a token boundary strictly inside them (Rust et al., 2021);
  words inside one supertoken are not continued;
* Rényi efficiency = H_α(p) / log2 V with α = 2.5 and V = the vocabulary size (Zouhar et al., ACL
  2023; ``tokenization-scorer`` defaults to α = 3 and the observed types -- we do not);
* round trip: ``decode(encode(doc)) == doc`` per document.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["TokenizerMetrics", "renyi_efficiency", "token_byte_table", "word_stats", "measure"]

_BYTE_TOKEN = re.compile(rb"^<0x([0-9A-Fa-f]{2})>$")
_WORD = re.compile(rb"\S+")


@dataclass(frozen=True)
class TokenizerMetrics:
    """Metrics of one tokenizer on one set of documents."""

    name: str
    vocab_size: int
    documents: int
    bytes: int
    chars: int
    tokens: int
    words: int
    word_tokens: int  # sum over words of the tokens overlapping them
    continued_words: int
    renyi_efficiency: float
    roundtrip_failures: int
    seconds: float

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else float("nan")

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars if self.chars else float("nan")

    @property
    def fertility(self) -> float:
        return self.word_tokens / self.words if self.words else float("nan")

    @property
    def continued_share(self) -> float:
        return self.continued_words / self.words if self.words else float("nan")

    @property
    def lossless(self) -> bool:
        return self.roundtrip_failures == 0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")


def renyi_efficiency(counts: Counter[int] | Sequence[int], vocab_size: int, alpha: float = 2.5) -> float:
    """H_α(p) / log2(V) of the unigram distribution ``counts`` (Zouhar et al., ACL 2023).

    Example:
        >>> round(renyi_efficiency([1, 1, 1, 1], 4), 6)   # uniform over the whole vocabulary
        1.0
    """
    values = list(counts.values()) if isinstance(counts, Counter) else list(counts)
    total = sum(values)
    if total == 0 or vocab_size < 2:
        return float("nan")
    s = sum((c / total) ** alpha for c in values if c)
    h = math.log2(s) / (1 - alpha)
    return h / math.log2(vocab_size)


def token_byte_table(tok: Any) -> tuple[bytes, ...]:
    """The exact bytes of every id of a :class:`tokkit.Tokenizer` (``<0xNN>`` byte-fallback tokens as bytes)."""
    v = tok.vocab
    if v.family == "sentencepiece" or v.family == "byte_level":
        return v.tokens
    native = getattr(tok, "native", None)
    fallback = False
    if tok.backend in ("hf", "gguf") and native is not None:
        import json

        fallback = bool(json.loads(native.to_str()).get("model", {}).get("byte_fallback"))
    if not fallback:
        return v.tokens
    specials = v.special_ids
    return tuple(bytes([int(m.group(1), 16)]) if i not in specials and (m := _BYTE_TOKEN.match(t)) else t
                 for i, t in enumerate(v.tokens))


def word_stats(doc: bytes, pieces: Sequence[bytes]) -> tuple[int, int, int] | None:
    """(words, tokens overlapping words, continued words) of ``doc`` split into ``pieces``; None if they do not tile it."""
    joined = b"".join(pieces)
    shift = 0
    if joined != doc:
        if joined[:1] == b" " and joined[1:] == doc:  # SentencePiece dummy prefix
            shift = 1
        else:
            return None
    ends = []
    pos = -shift
    for p in pieces:
        pos += len(p)
        ends.append(pos)
    words = wt = cont = 0
    for m in _WORD.finditer(doc):
        s, e = m.span()
        first = bisect.bisect_right(ends, s)  # first token ending after s
        last = bisect.bisect_left(ends, e)  # token containing byte e-1
        words += 1
        wt += last - first + 1
        inner = bisect.bisect_left(ends, e) - bisect.bisect_right(ends, s)
        cont += inner > 0
    return words, wt, cont


def measure(tok: Any, docs: Sequence[str], *, name: str) -> TokenizerMetrics:
    """Encode ``docs`` with ``tok`` (a :class:`tokkit.Tokenizer`) and compute every metric."""
    import time

    tok.encode_batch(list(docs[:4]))  # warm-up: lazy native initialisation is not encoding speed
    t0 = time.perf_counter()
    encoded = tok.encode_batch(docs)
    seconds = time.perf_counter() - t0
    table = token_byte_table(tok)
    counts: Counter[int] = Counter()
    fails = words = wt = cont = 0
    nbytes = 0
    for doc, ids in zip(docs, encoded):
        raw = doc.encode("utf-8")
        nbytes += len(raw)
        counts.update(ids)
        if tok.decode(ids) != doc:
            fails += 1
            continue
        st = word_stats(raw, [table[i] for i in ids])
        if st is not None:
            words, wt, cont = words + st[0], wt + st[1], cont + st[2]
    return TokenizerMetrics(
        name=name, vocab_size=len(tok.vocab), documents=len(docs), bytes=nbytes, chars=sum(map(len, docs)),
        tokens=sum(counts.values()), words=words, word_tokens=wt, continued_words=cont,
        renyi_efficiency=renyi_efficiency(counts, len(tok.vocab)), roundtrip_failures=fails, seconds=seconds)
