"""Input files a user names, checked before a byte is read: only a regular file is read.

A device never ends (``/dev/zero`` fills the memory) and a FIFO blocks until a writer comes, so
:func:`regular_file` refuses both (and sockets) with one line, as it refuses a folder or a missing path;
:func:`read_input_bytes` reads such a file, up to a cap where the caller gives one (the small list files,
:data:`tokkit.text.LIST_FILE_MAX_BYTES`). Torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tokkit.errors import FormatError, MissingFileError

__all__ = ["regular_file", "read_input_bytes"]

_NOT_REGULAR = "is not a regular file (a device, FIFO or socket)"


def regular_file(path: str | os.PathLike, *, what: str, expected: str) -> Path:
    """``path`` when it is a regular file (a symlink to one counts); else a one-line error naming ``what``
    (e.g. ``"--terms file"``) and ending with ``expected`` (the fix, e.g. ``"pass a text file"``)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise MissingFileError(f"{what} {p} does not exist; check the path") from None
    except OSError as e:  # not a directory on the way, too many links, no permission on a parent
        raise FormatError(f"{what} {p} cannot be read ({e.strerror}); {expected}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FormatError(f"{what} {p} is a folder; {expected}")
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f"{what} {p} {_NOT_REGULAR}; {expected}")
    return p


def read_input_bytes(path: str | os.PathLike, *, what: str, expected: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (see :func:`regular_file`); more than ``max_bytes`` is an error.

    The file is opened without blocking and checked again on the open descriptor, so a FIFO put in its
    place after the check neither blocks nor is read; at most ``max_bytes + 1`` bytes are read.
    """
    p = regular_file(path, what=what, expected=expected)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise FormatError(f"{what} {p} cannot be read ({e.strerror}); {expected}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise FormatError(f"{what} {p} {_NOT_REGULAR}; {expected}")
        raw = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(raw) > max_bytes:
        raise FormatError(f"{what} {p} is larger than {_size(max_bytes)}, the most tokkit reads for it; {expected}")
    return raw


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,} bytes"
