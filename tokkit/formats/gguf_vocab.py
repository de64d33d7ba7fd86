"""The vocab stored in a GGUF file's metadata -> :class:`TextVocab`.

``tokenizer.ggml.model`` says the spelling: ``gpt2`` (byte-level, GPT-2 map) or ``llama``
(sentencepiece, ``▁`` and ``<0xNN>``). ``tokenizer.ggml.token_type`` marks control (3), unknown
(2), user-defined (4), unused (5) and byte (6) tokens; bos/eos/pad/unk ids come from the metadata.
"""

from __future__ import annotations

from pathlib import Path

from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.hf_json import _token_bytes
from tokkit.formats.roles import make_specials
from tokkit.vocab import TextVocab

__all__ = ["vocab_from_gguf_file", "read_gguf_fields", "open_gguf"]

_NORMAL, _UNKNOWN, _CONTROL, _USER, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


def _field(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


def open_gguf(path: str | Path):  # -> gguf.GGUFReader
    """Open (memory-map) a GGUF file with an error that names the file when it is not one."""
    import gguf

    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"GGUF file {p} does not exist; check the path or run scripts/fetch_fixtures.py")
    try:
        return gguf.GGUFReader(str(p))
    except Exception as e:  # gguf raises ValueError/struct.error/IndexError on truncated files
        size = p.stat().st_size
        raise FormatError(f"{p} is a truncated or damaged GGUF file ({size} bytes; it ends before the data its "
                          f"header announces, {type(e).__name__}); fetch it again") from None


def read_gguf_fields(reader, keys: tuple[str, ...]) -> dict[str, object]:
    """Some metadata fields of an open GGUF file (None where absent)."""
    return {k: _field(reader, k) for k in keys}


def vocab_from_gguf_file(path: str | Path, *, name: str = "", reader=None) -> TextVocab:
    """The vocab in a GGUF file's metadata (pass ``reader`` to reuse an open file)."""
    reader = reader if reader is not None else open_gguf(path)
    f = read_gguf_fields(reader, (
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_space_prefix",
    ))
    model, pieces, types = f["tokenizer.ggml.model"], f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"]
    if pieces is None:
        raise FormatError(f"{path} has no tokenizer.ggml.tokens; it is a GGUF file without a vocab")
    family = {"gpt2": "byte_level", "llama": "sentencepiece", "gemma4": "sentencepiece"}.get(str(model))
    if family is None:
        raise FormatError(f"{path}: GGUF tokenizer model {model!r} is not supported; expected 'gpt2' or 'llama'")
    types = list(types) if types is not None else [_NORMAL] * len(pieces)
    tokens, special_items, unused, fallback = [], [], set(), {}
    for i, (piece, t) in enumerate(zip(pieces, types)):
        if t in (_CONTROL, _UNKNOWN):
            special_items.append((i, piece))
            tokens.append(piece.encode("utf-8"))
        elif t == _UNUSED:
            unused.add(i)
            tokens.append(b"")
        elif t == _BYTE and family == "sentencepiece":
            b = int(piece[3:5], 16)
            fallback[b] = i
            tokens.append(bytes([b]))
        else:
            tokens.append(_token_bytes(piece, family, True, ""))
    roles = {}
    for role in ("unk", "pad", "bos", "eos"):
        key = {"unk": "unknown_token_id", "pad": "padding_token_id"}.get(role, f"{role}_token_id")
        i = f[f"tokenizer.ggml.{key}"]
        if i is not None and 0 <= int(i) < len(tokens):
            roles[int(i)] = role
            if int(i) not in {j for j, _ in special_items}:
                special_items.append((int(i), pieces[int(i)]))
                tokens[int(i)] = pieces[int(i)].encode("utf-8")
    add_space = f["tokenizer.ggml.add_space_prefix"]
    return TextVocab(
        tokens=tuple(tokens),
        specials=make_specials(special_items, roles=roles),
        family=family,
        name=name or Path(path).name,
        byte_fallback_ids=tuple(fallback[b] for b in range(256)) if len(fallback) == 256 else (),
        unused_ids=frozenset(unused),
        strip_leading_space=family == "sentencepiece" and add_space is not False,
    )
