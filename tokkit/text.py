"""The one UTF-8 policy for text inputs: every command reads text files through :func:`read_text`.

Text must be UTF-8; a bad byte is an error naming the file and the byte offset (``tokkit train-bpe``'s
corpus reader applies the same :func:`decode_utf8`, where ``--skip-bad-utf8`` may skip documents
instead). An empty text is an error too: no command has anything to measure or learn from it.
Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from tokkit.errors import EmptyInputError, FormatError, MissingFileError

__all__ = ["NotUtf8Error", "decode_utf8", "read_text"]

_ICONV = "convert the file to UTF-8 (iconv -t utf-8)"


class NotUtf8Error(FormatError):
    """A text input is not UTF-8."""


def decode_utf8(raw: bytes, where: str, offset: int = 0, *, skip: bool = False,
                fix: str = f"{_ICONV} or pass --skip-bad-utf8 to skip such documents") -> str | None:
    """``raw`` decoded as UTF-8; None when ``skip`` and it is not UTF-8, else a :class:`NotUtf8Error`
    naming ``where``, the first bad byte and its offset (``offset`` = where ``raw`` starts in the file)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if skip:
            return None
        raise NotUtf8Error(f"{where} is not UTF-8: invalid byte 0x{raw[e.start]:02x} at byte offset "
                           f"{offset + e.start}; {fix}") from None


def read_text(path: str | Path, *, what: str = "text file", allow_empty: bool = False) -> str:
    """The UTF-8 text of ``path``: missing, a folder, not UTF-8, or empty is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{what} {p} does not exist; check the path")
    if p.is_dir():
        raise FormatError(f"{what} {p} is a folder; pass a text file")
    text = decode_utf8(p.read_bytes(), f"{what} {p}", fix=_ICONV)
    assert text is not None
    if not allow_empty and not text:
        raise EmptyInputError(f"{what} {p} is empty: expected some UTF-8 text; pass a file with text in it")
    return text
