"""tiktoken rank files (``<base64 token> <rank>`` per line) -> :class:`TextVocab`.

The rank is the id. Ids no rank uses (cl100k's 100256, 100261-100275) are unused unless a special
token sits there. Named OpenAI encodings take their pattern and special tokens from the installed
``tiktoken_ext.openai_public`` (never hard-coded here).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Mapping

from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.bounds import check_id
from tokkit.formats.roles import make_specials
from tokkit.vocab import TextVocab

__all__ = ["read_ranks", "vocab_from_ranks", "vocab_from_rank_file"]


def read_ranks(path: str | Path) -> dict[bytes, int]:
    """Parse a rank file into ``{token bytes: rank}`` with errors that name the bad line."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"tiktoken rank file {p} does not exist; check the path or run scripts/fetch_fixtures.py")
    ranks: dict[bytes, int] = {}
    with open(p, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                tok, rank = line.split()
                ranks[base64.b64decode(tok, validate=True)] = int(rank)
            except ValueError:
                raise FormatError(
                    f"{p}:{lineno}: expected '<base64 token> <rank>', found {line[:60]!r}; "
                    "the file is truncated or not a tiktoken rank file"
                ) from None
    if not ranks:
        raise FormatError(f"{p} holds no ranks; expected a tiktoken rank file")
    for what, i in (("the largest rank", max(ranks.values())), ("the smallest rank", min(ranks.values()))):
        check_id(i, entries=len(ranks), what=what, label=str(p))
    return ranks


def vocab_from_ranks(
    ranks: Mapping[bytes, int],
    *,
    specials: Mapping[str, int] | None = None,
    n_vocab: int | None = None,
    name: str = "",
    family: str = "tiktoken",
) -> TextVocab:
    """Build a vocab from ranks and special tokens (``{text: id}``)."""
    specials = dict(specials or {})
    entries = len(ranks) + len(specials)
    label = name or "rank file"
    for what, i in (("the largest rank", max(ranks.values(), default=0)), ("the largest special token",
                                                                          max(specials.values(), default=0)),
                    ("the declared vocabulary size", (n_vocab or 1) - 1), ("the smallest rank", min(ranks.values(), default=0))):
        check_id(i, entries=entries, what=what, label=label)  # before the table is allocated
    top = max([*ranks.values(), *specials.values()]) + 1
    size = max(top, n_vocab or 0)
    tokens = [b""] * size
    used = set()
    for tok, r in ranks.items():
        tokens[r] = tok
        used.add(r)
    for text, i in specials.items():
        tokens[i] = text.encode("utf-8")
        used.add(i)
    return TextVocab(
        tokens=tuple(tokens),
        specials=make_specials((i, t) for t, i in specials.items()),
        family=family,
        name=name,
        unused_ids=frozenset(range(size)) - used,
    )


def vocab_from_rank_file(path: str | Path, *, name: str = "", specials: Mapping[str, int] | None = None) -> TextVocab:
    return vocab_from_ranks(read_ranks(path), specials=specials, name=name or Path(path).name)
