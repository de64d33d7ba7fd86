"""The words a continued BPE learns from: a tokenizer's own pre-tokens, segmented with its *existing* merges.

Continued training (``tokkit extend``) must count pairs exactly where the extended tokenizer will be
able to merge them, so the text is cut the way the tokenizer cuts it:

* **byte-level BPE** (GPT-2, Llama 3, Qwen2, SmolLM2, tiktoken ranks converted to HF): the
  tokenizer's normalizer and pre-tokenizer give the pre-tokens (already spelled in the GPT-2 byte
  alphabet); each distinct pre-token is segmented once by the BPE model (``ignore_merges`` included).
* **SentencePiece-style BPE** (Llama 2, Mistral: no pre-tokenizer, the whole normalized text is one
  BPE word): the normalized document is segmented by the model, then cut before every token that
  starts with ``▁``; a new merge never joins across that cut (see :mod:`tokkit.train.extend`).

A word is a tuple of old ids; words are counted, so memory grows with the distinct words, not the text.
Count tables (:mod:`tokkit.train.count_table`) are read as weighted text: each recorded pre-token is
pre-tokenized again by the tokenizer (normally into itself), so a table counted with the tokenizer's
own pattern gives exactly the counts the text would.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from tokkit.errors import TokkitError

__all__ = ["ExtendError", "WordCutter", "SP_SPACE"]

LOG = logging.getLogger(__name__)

#: SentencePiece's word-boundary marker.
SP_SPACE = "\u2581"


class ExtendError(TokkitError, ValueError):
    """A tokenizer or input that cannot be extended as asked."""


@dataclass
class WordCutter:
    """Cuts text into words of old ids for one HF BPE tokenizer (``tokenizers.Tokenizer``).

    Attributes:
        hf: the tokenizer whose merges segment the words (the old one, or the old one plus new pieces).
        sentencepiece: the SentencePiece layout (no pre-tokenizer; words start at ``▁``).
    """

    hf: Any
    sentencepiece: bool

    def __post_init__(self) -> None:
        self._model = self.hf.model
        self._norm = self.hf.normalizer
        self._pre = self.hf.pre_tokenizer
        self._seg_cache: dict[str, tuple[int, ...]] = {}
        vocab = self.hf.get_vocab(with_added_tokens=False)
        self._starts_word = {i for t, i in vocab.items() if t.startswith(SP_SPACE)}

    def segment(self, word: str) -> tuple[int, ...]:
        """Old ids of one pre-token (already normalized and in the model's alphabet)."""
        got = self._seg_cache.get(word)
        if got is None:
            got = tuple(t.id for t in self._model.tokenize(word))
            self._seg_cache[word] = got
        return got

    def pretokens(self, text: str) -> list[str]:
        """The model-alphabet strings the BPE model sees for ``text`` (byte-level families)."""
        if self._norm is not None:
            text = self._norm.normalize_str(text)
        if self._pre is None:
            return [text]
        return [p for p, _ in self._pre.pre_tokenize_str(text)]

    def add_text(self, text: str, into: Counter[tuple[int, ...]], *, weight: int = 1,
                 strings: Counter[str] | None = None) -> None:
        """Count the words of ``text`` (``weight`` times) into ``into``; pre-token strings into ``strings``."""
        if not text:
            return
        if not self.sentencepiece:
            pieces = self.pretokens(text)
            for p in pieces:
                into[self.segment(p)] += weight
            if strings is not None:
                strings.update({p: weight for p in pieces}) if weight != 1 else strings.update(pieces)
            return
        norm = self._norm.normalize_str(text) if self._norm is not None else text
        ids = [t.id for t in self._model.tokenize(norm)]
        start = 0
        for k in range(1, len(ids) + 1):
            if k == len(ids) or ids[k] in self._starts_word:
                into[tuple(ids[start:k])] += weight
                start = k

    def count(self, docs: Iterable[str]) -> Counter[tuple[int, ...]]:
        """Word counts of every document."""
        out: Counter[tuple[int, ...]] = Counter()
        for d in docs:
            self.add_text(d, out)
        return out

    def count_table(self, keys: Iterable[bytes], counts: Iterable[int]) -> Counter[tuple[int, ...]]:
        """Word counts of a count table (``keys`` are pre-token UTF-8 bytes, ``counts`` their occurrences)."""
        if self.sentencepiece:
            raise ExtendError("a SentencePiece-style tokenizer has no pre-tokenizer, so a pre-token count table cannot "
                              "stand for its words; extend it from the text files instead")
        out: Counter[tuple[int, ...]] = Counter()
        for k, n in zip(keys, counts):
            self.add_text(k.decode("utf-8"), out, weight=int(n))
        return out
