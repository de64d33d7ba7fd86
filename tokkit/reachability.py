"""Which ids a tokenizer can actually emit for their own bytes (unreachable-token report).

BPE vocabularies can hold tokens no merge sequence produces (the reference's toy ``cab``; Qwen's
pairs of full-width digits that its pre-tokenizer always splits). A token is *reachable* when
encoding its own text yields exactly that id. With a SentencePiece dummy prefix, a word-start token
``" in"`` is checked as ``encode("in")`` and a mid-word token ``"in"`` is encoded without the prefix.
Byte-fallback ids and partial UTF-8 pieces are not checked (they only occur inside longer text).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokkit.tokenizer import Tokenizer

__all__ = ["unreachable_ids", "without_dummy_prefix"]


def unreachable_ids(tok: "Tokenizer") -> tuple[int, ...]:
    """Sorted ids whose own text does not encode to ``[id]``."""
    v = tok.vocab
    fallback = set(v.byte_fallback_ids)
    with_prefix, without_prefix = [], []
    for i in v.ordinary_ids():
        if i in fallback:
            continue
        try:
            text = v.tokens[i].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not v.strip_leading_space:
            with_prefix.append((i, text))
        elif text == " ":
            continue  # the bare prefix piece: appears before a piece that cannot take it, never alone
        elif text.startswith(" "):
            with_prefix.append((i, text[1:]))
        else:
            without_prefix.append((i, text))
    out = []
    for group, encode in ((with_prefix, tok.encode_batch), (without_prefix, tok._encode_batch_no_prefix)):
        if group:
            encoded = encode([t for _, t in group])
            out += [i for (i, _), e in zip(group, encoded) if e != [i]]
    return tuple(sorted(out))


def without_dummy_prefix(hf_tokenizer: Any) -> Any:
    """A copy of an HF tokenizer whose normalizer / pre-tokenizer adds no ``▁`` prefix."""
    from tokenizers import Tokenizer as HFTokenizer

    data = json.loads(hf_tokenizer.to_str())
    norm = data.get("normalizer") or {}
    if norm.get("type") == "Sequence":
        norm["normalizers"] = [n for n in norm["normalizers"] if n.get("type") != "Prepend"]
    elif norm.get("type") == "Prepend":
        data["normalizer"] = None
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") == "Metaspace":
        pre["prepend_scheme"] = "never"
    return HFTokenizer.from_str(json.dumps(data))
