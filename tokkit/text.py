"""The one UTF-8 policy for text inputs: every command reads text files through :func:`read_text`.

Text must be UTF-8; a bad byte is an error naming the file and the byte offset (``tokkit train-bpe``'s
corpus reader applies the same :func:`decode_utf8`, where ``--skip-bad-utf8`` may skip documents
instead). An empty text is an error too: no command has anything to measure or learn from it.
Only a regular file is read (:mod:`tokkit.input_files`: a device never ends, a FIFO blocks), and a list
file (:func:`read_list_file`: ``--domain-tokens``, ``--terms``) at most :data:`LIST_FILE_MAX_BYTES`.
Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from tokkit.errors import EmptyInputError, FormatError
from tokkit.input_files import read_input_bytes

__all__ = ["NotUtf8Error", "decode_utf8", "read_text", "read_list_file", "LIST_FILE_MAX_BYTES", "FIX_OR_SKIP"]

_ICONV = "convert the file to UTF-8 (iconv -t utf-8)"
#: The fix a non-UTF-8 document's error names where the command has ``--skip-bad-utf8`` (train-bpe, count, encode);
#: elsewhere only the conversion is named (a message must be true for the command that prints it).
FIX_OR_SKIP = f"{_ICONV} or pass --skip-bad-utf8 to skip such documents"
#: The most bytes read from a list file of one entry per line (``--domain-tokens``, ``--terms``): generous for
#: any real list, and a device, a FIFO or a wrong multi-GB file is refused instead of filling the memory.
LIST_FILE_MAX_BYTES = 64 << 20


class NotUtf8Error(FormatError):
    """A text input is not UTF-8."""


def decode_utf8(raw: bytes, where: str, offset: int = 0, *, skip: bool = False,
                fix: str = _ICONV) -> str | None:
    """``raw`` decoded as UTF-8; None when ``skip`` and it is not UTF-8, else a :class:`NotUtf8Error`
    naming ``where``, the first bad byte and its offset (``offset`` = where ``raw`` starts in the file)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if skip:
            return None
        raise NotUtf8Error(f"{where} is not UTF-8: invalid byte 0x{raw[e.start]:02x} at byte offset "
                           f"{offset + e.start}; {fix}") from None


def read_text(path: str | Path, *, what: str = "text file", allow_empty: bool = False, max_bytes: int | None = None,
              expected: str = "pass a text file") -> str:
    """The UTF-8 text of ``path``: missing, a folder, a device/FIFO/socket, over ``max_bytes``, not UTF-8, or
    empty is a one-line error (``expected``: the fix named for a wrong kind of file)."""
    p = Path(path)
    text = decode_utf8(read_input_bytes(p, what=what, expected=expected, max_bytes=max_bytes), f"{what} {p}")
    assert text is not None
    if not allow_empty and not text:
        raise EmptyInputError(f"{what} {p} is empty: expected some UTF-8 text; pass a file with text in it")
    return text


def read_list_file(path: str | Path, *, what: str, entry: str = "entry") -> list[str]:
    """The lines of a small list file (one ``entry`` per line; ``what`` names the option, e.g. ``"--terms file"``):
    as :func:`read_text`, capped at :data:`LIST_FILE_MAX_BYTES`. Which lines count (blank, ``#`` comments) is
    the caller's rule."""
    return read_text(path, what=what, max_bytes=LIST_FILE_MAX_BYTES,
                     expected=f"pass a UTF-8 text file with one {entry} per line").splitlines()
