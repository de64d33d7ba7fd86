"""Very long pre-tokens: which merge loop trains them in time linear in their length, with HF's merges.

HF ``tokenizers``' ``BpeTrainer`` merges a pair inside a word in place (``Word::merge``: a ``Vec`` insert
and two removes per occurrence), so one pre-token of L symbols costs about L² per merge that touches it
(``'a' * 100_000``, a single pre-token under GPT-2's regex: 3.4 s; 200k: 14 s; 400k: 60 s; normal text of
the same size: 0.1 s). tokkit's port of the trainer (:mod:`tokkit.train.bpe_counts`) gives the same merges
in the same order, and merges a long word by copying it once (linear), so a corpus whose long pre-tokens
would dominate HF's time is trained by the port instead. **The result is the same tokenizer either way**
(byte for byte; tests/test_train_long_pretokens.py); the rule below only decides which is faster.

The rule. While HF counts the training documents, :class:`Watch` looks for pre-tokens of at least
:data:`LONG` symbols (bytes for byte-level BPE, characters for char BPE), cheaply: only a document with a
run of ``LONG`` non-space (or whitespace) bytes can hold one, and only such a document is pre-tokenized
again, with the trainer's own normaliser and pre-tokenizer (the run is looked for in the text before
normalisation, and whitespace that mixes ASCII and other spaces is not a run: such rare pre-tokens are left to
HF, slower, with the same result). HF counts first and merges only once the
documents are exhausted, so the choice is made at the end of the stream: if the sum of L² over the long
pre-tokens exceeds :data:`RATIO` times the corpus' characters, HF is stopped before it merges and the
documents are read again (the corpus yields the same training documents on every pass), counted here
and trained by the port. ``RATIO`` compares measured costs: HF's merge loop spends about 3.5e-10 s per
L² on a run of one character (its worst case: 3.4 s at 100k, 57 s at 400k), the port up to about 1e-6 s per
character of corpus (counting in Python: 0.3 us on 20 MB of data/legal, plus a merge loop that grows with the
distinct pre-tokens), so one 100k-symbol run decides for the port in a corpus of under ~3 MB,
and a 10 GB corpus with one such run stays with HF (3 s more). Shorter pre-tokens cost HF little
(a 10k run: 0.04 s) and are not looked at. Supertoken stage 2 (whitespace-joined chunks) is not watched.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, Iterable, Iterator

__all__ = ["LONG", "RATIO", "Watch", "UseLinearTrainer", "count_pretokens"]

LOG = logging.getLogger(__name__)

#: Pre-tokens of at least this many symbols are looked at (HF's extra cost below it is at most ~0.04 s each).
LONG = 10_000
#: The port trains the corpus when sum(L²) over its long pre-tokens exceeds RATIO x its characters.
RATIO = 3_000

# Each byte of a UTF-8 document as b" " (ASCII whitespace) or b"x" (anything else, multi-byte characters too):
# a pre-token of LONG symbols is a run of LONG whitespace bytes or of LONG - 1 other bytes (after one space).
_CLASS = bytes(0x20 if chr(b).isspace() else 0x78 for b in range(128)) + b"x" * 128
_SPACES, _OTHER = b" " * LONG, b"x" * (LONG - 1)


class UseLinearTrainer(Exception):
    """Raised into HF's trainer at the end of the documents: train them with the port instead."""


class Watch:
    """The document batches for HF's trainer, unchanged, measuring their long pre-tokens on the way.

    ``split(doc)`` gives a document's pre-tokens as the trainer counts them (normalised, pre-tokenized,
    spelled). At the end of the batches it raises :class:`UseLinearTrainer` when the rule says so.
    """

    def __init__(self, batches: Iterable[list[str]], split: Callable[[str], list[str]]) -> None:
        self._batches = batches
        self._split = split
        self.chars = 0
        self.cost = 0  # sum of L² over the pre-tokens of at least LONG symbols
        self.longest = 0

    def _measure(self, doc: str) -> None:
        marks = doc.encode("utf-8", "surrogatepass").translate(_CLASS)
        if _OTHER not in marks and _SPACES not in marks:
            return
        for piece in self._split(doc):
            if len(piece) >= LONG:
                self.cost += len(piece) ** 2
                self.longest = max(self.longest, len(piece))

    def __iter__(self) -> Iterator[list[str]]:
        short = LONG // 4  # a character is at most 4 bytes
        for batch in self._batches:
            for doc in batch:
                n = len(doc)
                self.chars += n
                if n >= short:
                    self._measure(doc)
            yield batch
        if self.linear():
            raise UseLinearTrainer

    def linear(self) -> bool:
        """True when the long pre-tokens seen would cost HF's merge loop more than the port costs on the corpus."""
        return self.cost > RATIO * max(self.chars, 1)


def splitter(tok: Any) -> Callable[[str], list[str]]:
    """The pre-tokens HF's trainer counts for ``tok``: its normaliser, then its pre-tokenizer (spelled)."""
    norm, pre = tok.normalizer, tok.pre_tokenizer

    def split(doc: str) -> list[str]:
        text = norm.normalize_str(doc) if norm is not None else doc
        return [p for p, _ in pre.pre_tokenize_str(text)] if pre is not None else [text]

    return split


def count_pretokens(batches: Iterable[list[str]], split: Callable[[str], list[str]]) -> Counter[str]:
    """``{pre-token: count}`` of the documents, as HF's trainer counts them (what the port trains on)."""
    counts: Counter[str] = Counter()
    for batch in batches:
        for doc in batch:
            counts.update(split(doc))
    return counts
