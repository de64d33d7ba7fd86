"""sentencepiece ``.model`` -> :class:`TextVocab` (``▁`` -> space, ``<0xNN>`` -> the byte).

Control pieces (``<s>``, ``</s>``) and the unknown piece become special tokens; unused pieces are
listed as unused; byte pieces are the byte-fallback table. Whether decoding drops the dummy-prefix
space is read off the model by encoding one character (``"a"`` -> ``["▁a"]`` when it does).
"""

from __future__ import annotations

from pathlib import Path

from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.roles import make_specials
from tokkit.vocab import TextVocab

__all__ = ["load_spm", "vocab_from_spm", "vocab_from_spm_file"]


def load_spm(path: str | Path):  # -> sentencepiece.SentencePieceProcessor
    """Open a sentencepiece model with an error that names the file when it is not one."""
    import sentencepiece as spm

    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"sentencepiece model {p} does not exist; check the path or run scripts/fetch_fixtures.py")
    sp = spm.SentencePieceProcessor()
    try:
        sp.Load(str(p))
    except (OSError, RuntimeError) as e:
        raise FormatError(f"{p} is not a readable sentencepiece model ({e}); the file is truncated or of another format") from None
    return sp


def vocab_from_spm(sp, *, name: str = "") -> TextVocab:
    """Build the vocab of a loaded ``SentencePieceProcessor``."""
    n = sp.get_piece_size()
    tokens: list[bytes] = []
    special_items: list[tuple[int, str]] = []
    roles: dict[int, str] = {}
    unused: set[int] = set()
    fallback: dict[int, int] = {}
    for i in range(n):
        piece = sp.id_to_piece(i)
        if sp.is_byte(i):
            b = int(piece[3:5], 16)
            fallback[b] = i
            tokens.append(bytes([b]))
        elif sp.is_control(i) or sp.is_unknown(i):
            special_items.append((i, piece))
            tokens.append(piece.encode("utf-8"))
        elif sp.is_unused(i):
            unused.add(i)
            tokens.append(b"")
        else:
            tokens.append(piece.replace("▁", " ").encode("utf-8"))
    for role, i in (("unk", sp.unk_id()), ("bos", sp.bos_id()), ("eos", sp.eos_id()), ("pad", sp.pad_id())):
        if i >= 0:
            roles[i] = role
    strip = bool(sp.encode("a", out_type=str)) and sp.encode("a", out_type=str)[0].startswith("▁")
    return TextVocab(
        tokens=tuple(tokens),
        specials=make_specials(special_items, roles=roles),
        family="sentencepiece",
        name=name,
        byte_fallback_ids=tuple(fallback[b] for b in range(256)) if len(fallback) == 256 else (),
        unused_ids=frozenset(unused),
        strip_leading_space=strip,
    )


def vocab_from_spm_file(path: str | Path, *, name: str = "") -> TextVocab:
    return vocab_from_spm(load_spm(path), name=name or Path(path).name)
