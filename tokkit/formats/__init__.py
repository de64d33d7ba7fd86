"""Loaders that turn every tokenizer file format our users hold into a :class:`~tokkit.vocab.TextVocab`.

One module per format: :mod:`.hf_json` (HF ``tokenizer.json``), :mod:`.spm` (sentencepiece
``.model``), :mod:`.tiktoken_file` (tiktoken rank files), :mod:`.tekken` (Mistral Tekken json) and
:mod:`.gguf_vocab` (the vocab stored in a GGUF file). :func:`load_vocab` picks one by looking at the
file. All are torch-free.
"""

from __future__ import annotations

from pathlib import Path

from tokkit.errors import FormatError, MissingFileError
from tokkit.vocab import TextVocab

__all__ = ["load_vocab", "detect_format"]

FORMATS = ("hf_json", "spm", "tiktoken", "tekken", "gguf")


def detect_format(path: str | Path) -> str:
    """Guess the format of a tokenizer file from its name and first bytes."""
    p = Path(path)
    if p.is_dir():
        for name in ("tokenizer.json", "tokenizer.model", "tekken.json"):
            if (p / name).exists():
                return detect_format(p / name)
        raise FormatError(
            f"{p} is a folder without tokenizer.json, tokenizer.model or tekken.json; "
            "point at the tokenizer file itself"
        )
    if not p.exists():
        raise MissingFileError(f"tokenizer file {p} does not exist; check the path or fetch the fixtures")
    if not p.is_file():  # a device, FIFO or socket: reading it may never end (/dev/zero) or block (a FIFO)
        raise FormatError(f"{p} is not a regular file (a device, FIFO or socket); expected a tokenizer file "
                          "(tokenizer.json, tokenizer.model, tekken.json, .tiktoken or .gguf): point at the file itself")
    if p.stat().st_size == 0:
        raise FormatError(f"tokenizer file {p} is empty (0 bytes); it was not written completely: fetch or export it again")
    with open(p, "rb") as f:
        head = f.read(4096)
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark (Windows editors) is accepted
    if head.lstrip()[:1] == b"[" and p.suffix == ".json":
        raise FormatError(f"{p} is JSON but not a tokenizer.json: its top level is a list; expected an object with the "
                          "keys version, model, pre_tokenizer, decoder and added_tokens")
    if head[:4] == b"GGUF":
        return "gguf"
    if head.lstrip()[:1] == b"{":
        return "tekken" if b'"config"' in head and b'"token_bytes"' in _peek_more(p) else "hf_json"
    if p.suffix in (".model", ".spm") or p.name.startswith("tokenizer.model") or head[:1] == b"\n":
        return "spm"
    if p.suffix == ".tiktoken" or _looks_like_ranks(head):
        return "tiktoken"
    raise FormatError(
        f"cannot tell the format of {p}: expected tokenizer.json, a sentencepiece .model, a tiktoken "
        "rank file, a Tekken json or a GGUF file"
    )


def _peek_more(p: Path) -> bytes:
    with open(p, "rb") as f:
        return f.read(1 << 16)


def _looks_like_ranks(head: bytes) -> bool:
    lines = head.splitlines()[:5]
    return bool(lines) and all(len(l.split()) == 2 and l.split()[1].isdigit() for l in lines if l)


def load_vocab(path: str | Path, *, name: str = "") -> TextVocab:
    """Load the vocabulary of any supported tokenizer file (format detected from the file).

    Args:
        path: a ``tokenizer.json``, sentencepiece ``.model``, ``.tiktoken`` rank file, Tekken
            json, GGUF file, or a folder holding one of the first three.
        name: label stored in the vocab (defaults to the file name).

    Raises:
        MissingFileError: the path does not exist.
        FormatError: the file is truncated or not a tokenizer.
    """
    fmt = detect_format(path)
    p = Path(path)
    if p.is_dir():
        p = next(p / n for n in ("tokenizer.json", "tokenizer.model", "tekken.json") if (p / n).exists())
    label = name or p.name
    if fmt == "hf_json":
        from tokkit.formats.hf_json import vocab_from_json_file

        return vocab_from_json_file(p, name=label)
    if fmt == "spm":
        from tokkit.formats.spm import vocab_from_spm_file

        return vocab_from_spm_file(p, name=label)
    if fmt == "tiktoken":
        from tokkit.formats.tiktoken_file import vocab_from_rank_file

        return vocab_from_rank_file(p, name=label)
    if fmt == "tekken":
        from tokkit.formats.tekken import vocab_from_tekken_file

        return vocab_from_tekken_file(p, name=label)
    from tokkit.formats.gguf_vocab import vocab_from_gguf_file

    return vocab_from_gguf_file(p, name=label)
