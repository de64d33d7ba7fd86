"""Training text and the per-step vocabulary: corpus chunks, base decompositions (cached), row assembly.

A sampled tokenizer's token is either **shared** (its bytes are a base token: the row is copied,
exactly as ``tokkit transplant`` copies shared tokens) or **new** (the hypernetwork predicts it from
its base pieces). The auxiliary loss rebuilds shared base tokens from their *sub*-pieces (the token's
own id banned, as the held-out-anchor check does) and compares with their true rows.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

from tokkit.errors import FormatError, MissingFileError
from tokkit.input_files import regular_file
from tokkit.text import read_text
from tokkit.transplant.align import canonical_index
from tokkit.transplant.decompose import Decomposer
from tokkit.vocab import TextVocab

__all__ = ["read_corpus", "TextSampler", "PieceCache"]


def _read_file(p: Path) -> list[str]:
    if p.suffix == ".jsonl":
        out = []
        for n, line in enumerate(read_text(p, what="corpus file", allow_empty=True).splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line)["text"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise FormatError(f"{p}:{n}: expected a JSON object with a 'text' field per line") from None
        return out
    return [read_text(p, what="corpus file", allow_empty=True)]


def read_corpus(sources: Sequence[str | Path]) -> list[str]:
    """Documents from text files, .jsonl files (``text`` field) or folders of them (sorted, recursive)."""
    docs: list[str] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix in (".txt", ".jsonl") and f.is_file())
        elif p.is_file():
            files = [p]
        else:
            if p.exists():  # a device, FIFO or socket: refused by name, never read
                regular_file(p, what="corpus source", expected="pass text files, .jsonl files or folders")
            raise MissingFileError(f"corpus source {p} does not exist; pass text files, .jsonl files or folders")
        for f in files:
            docs += [d for d in _read_file(f) if d.strip()]
    if not docs:
        raise FormatError(f"the corpus {list(map(str, sources))} holds no text (.txt / .jsonl files)")
    return docs


class TextSampler:
    """Random chunks of about ``chunk_chars`` characters, starting and ending at whitespace."""

    def __init__(self, docs: Sequence[str], *, chunk_chars: int) -> None:
        self.docs = list(docs)
        self.chunk = chunk_chars
        self.weights = [len(d) for d in self.docs]

    def draw(self, rng: random.Random, n: int) -> list[str]:
        out = []
        for d in rng.choices(self.docs, weights=self.weights, k=n):
            start = rng.randrange(max(1, len(d) - self.chunk))
            if start:
                ws = d.find(" ", start)
                start = ws if 0 <= ws < start + 64 else start
            out.append(d[start:start + self.chunk])
        return out


class PieceCache:
    """Base decompositions with memoisation (a step sees thousands of tokens, many of them again)."""

    def __init__(self, vocab: TextVocab, hf_tokenizer) -> None:
        self.vocab = vocab
        self.decomposer = Decomposer(vocab, hf_tokenizer)
        self.index = canonical_index(vocab)
        self._new: dict[bytes, list[int]] = {}
        self._held: dict[int, list[int]] = {}
        self.multi = [i for i in vocab.ordinary_ids() if len(vocab.tokens[i]) >= 2]

    def base_id(self, tok: bytes) -> int | None:
        return self.index.get(tok)

    def pieces(self, tok: bytes) -> list[int]:
        got = self._new.get(tok)
        if got is None:
            got = self._new[tok] = self.decomposer.pieces(tok)
        return got

    def held_out(self, base_id: int) -> list[int]:
        """Pieces of base token ``base_id`` that never use ``base_id`` itself ([] when impossible)."""
        got = self._held.get(base_id)
        if got is None:
            got = self._held[base_id] = self.decomposer.pieces(self.vocab.tokens[base_id], banned=frozenset([base_id]))
        return got
