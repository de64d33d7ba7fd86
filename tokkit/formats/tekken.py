"""Mistral "Tekken" json (NeMo, Pixtral) -> :class:`TextVocab` and a tiktoken ``Encoding``.

Layout (mistral-common ``Tekkenizer``): ids ``0..S-1`` are special tokens (S =
``default_num_special_tokens``, 1000), then the first ``default_vocab_size - S`` ranks of
``vocab`` at ids ``rank + S``. Files without a ``special_tokens`` list use mistral-common's
deprecated default list, and the remaining special ids are ``<SPECIAL_{id}>`` fillers.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tokkit.errors import FormatError
from tokkit.formats.hf_json import read_json
from tokkit.formats.tiktoken_file import vocab_from_ranks
from tokkit.vocab import TextVocab

__all__ = ["read_tekken", "vocab_from_tekken_file", "tekken_encoding"]

# mistral-common 1.13.1 Tekkenizer.DEPRECATED_SPECIAL_TOKENS, ranks 0..19
_DEFAULT_SPECIALS = (
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
)


def read_tekken(path: str | Path) -> tuple[dict[bytes, int], dict[str, int], str]:
    """(ranks shifted to ids, specials ``{text: id}``, pre-tokenizer pattern)."""
    p = Path(path)
    data: dict[str, Any] = read_json(p)
    try:
        cfg = data["config"]
        n_special = int(cfg["default_num_special_tokens"])
        n_total = int(cfg["default_vocab_size"])
        pattern = cfg["pattern"]
        entries = data["vocab"]
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{p}: not a Tekken tokenizer (missing {e}); expected config + vocab as in mistral-common") from None
    if not isinstance(entries, list) or not 0 <= n_special <= n_total:
        raise FormatError(f"{p}: config declares {n_special:,} special tokens of a {n_total:,}-token vocabulary and "
                          "vocab is not a list; expected a Tekken file as mistral-common writes it")
    from tokkit.formats.bounds import check_id

    check_id(n_total - 1, entries=len(entries) + len(data.get("special_tokens") or []),
             what="config.default_vocab_size", label=str(p))  # declared sizes against the entries listed
    n_ranks = n_total - n_special
    ranks = {base64.b64decode(e["token_bytes"]): e["rank"] + n_special for e in entries[:n_ranks]}
    listed = data.get("special_tokens")
    if listed:
        named = {s["rank"]: s["token_str"] for s in listed}
    else:
        named = dict(enumerate(_DEFAULT_SPECIALS))
    specials = {named.get(i, f"<SPECIAL_{i}>"): i for i in range(n_special)}
    return ranks, specials, pattern


def vocab_from_tekken_file(path: str | Path, *, name: str = "") -> TextVocab:
    ranks, specials, _ = read_tekken(path)
    return vocab_from_ranks(ranks, specials=specials, name=name or Path(path).name, family="tekken")


def tekken_encoding(path: str | Path):  # -> tiktoken.Encoding
    """A native tiktoken encoder for a Tekken file (ids already shifted past the specials)."""
    import tiktoken

    ranks, specials, pattern = read_tekken(path)
    return tiktoken.Encoding(name=Path(path).stem, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
