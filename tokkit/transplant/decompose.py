"""Split a destination token's bytes into source-tokenizer pieces (the input of FVT and the heuristic).

The source tokenizer's *model* segments the token (no pre-tokenizer, no normalizer, no dummy
prefix), as ZeTT's surface forms do: the token's bytes are spelled in the source's alphabet (GPT-2
byte map, or ``▁`` for spaces in SentencePiece-style vocabularies) and the BPE/Unigram model splits
them. The pieces must concatenate to exactly the token's bytes; when they do not (a partial UTF-8
token in a SentencePiece vocab, a tokenizer whose model rejects the spelling) a greedy
longest-match over the source's byte strings is used instead, which always succeeds when the
source covers all 256 bytes (byte-level BPE and byte-fallback vocabularies do).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from tokkit.formats.hf_json import bytes_to_unicode
from tokkit.vocab import TextVocab

__all__ = ["Decomposer"]


class Decomposer:
    """Source-tokenizer pieces of arbitrary byte strings.

    Args:
        src_vocab: the source vocabulary (bytes per id).
        hf_tokenizer: the source as a ``tokenizers.Tokenizer`` (``Tokenizer.to_hf()``), or None to use
            greedy longest-match only.
    """

    def __init__(self, src_vocab: TextVocab, hf_tokenizer: Any | None) -> None:
        self.vocab = src_vocab
        self._model = hf_tokenizer.model if hf_tokenizer is not None else None
        self._bmap = bytes_to_unicode()
        from tokkit.transplant.align import canonical_index

        self._index = canonical_index(src_vocab)  # a real piece before its <0xNN> twin
        self._maxlen = max((len(t) for t in self._index), default=1)

    def _spellings(self, tok: bytes) -> Iterable[str]:
        yield "".join(self._bmap[b] for b in tok)
        try:
            yield tok.decode("utf-8").replace(" ", "\u2581")
        except UnicodeDecodeError:
            return

    def _model_split(self, tok: bytes) -> list[int] | None:
        if self._model is None:
            return None
        for s in self._spellings(tok):
            try:
                ids = [t.id for t in self._model.tokenize(s)]
            except Exception:  # noqa: BLE001 - a model that rejects a spelling: try the next one
                continue
            if ids and all(0 <= i < len(self.vocab) for i in ids) and b"".join(self.vocab.tokens[i] for i in ids) == tok:
                return ids
        return None

    def greedy(self, tok: bytes, *, banned: frozenset[int] = frozenset()) -> list[int]:
        """Longest-match-first pieces of ``tok`` (ids in ``banned`` are skipped); [] when impossible."""
        out, pos = [], 0
        while pos < len(tok):
            for n in range(min(self._maxlen, len(tok) - pos), 0, -1):
                i = self._index.get(tok[pos:pos + n])
                if i is not None and i not in banned:
                    out.append(i)
                    pos += n
                    break
            else:
                return []
        return out

    def pieces(self, tok: bytes, *, banned: frozenset[int] = frozenset()) -> list[int]:
        """Source ids whose bytes concatenate to ``tok``; never a ``banned`` id ([] when impossible)."""
        ids = self._model_split(tok)
        if ids is not None and not (banned and banned.intersection(ids)):
            return ids
        return self.greedy(tok, banned=banned)

    def pieces_of(self, tokens: Sequence[bytes], *, banned: Sequence[frozenset[int]] | None = None) -> list[list[int]]:
        """:meth:`pieces` for many byte strings (``banned[i]`` per string, e.g. a held-out token's own id)."""
        if banned is None:
            return [self.pieces(t) for t in tokens]
        return [self.pieces(t, banned=b) for t, b in zip(tokens, banned)]
