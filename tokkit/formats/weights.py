"""Check a ``.safetensors`` file before a library maps it: a truncated or foreign file is one clear error.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
``data_offsets`` into the byte buffer that follows, then that buffer. Reading the header alone
(no tensor data) tells whether the file holds every byte its header announces. Torch-free.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tokkit.errors import FormatError

__all__ = ["check_safetensors", "check_weights_folder"]


def check_safetensors(path: str | Path) -> None:
    """Raise :class:`FormatError` when ``path`` is not a complete safetensors file."""
    p = Path(path)
    size = p.stat().st_size
    fix = "fetch, convert or save it again"
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FormatError(f"{p} is not a safetensors file ({size} bytes, shorter than its 8-byte header length); {fix}")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise FormatError(f"{p} is truncated or not a safetensors file: its header says {n:,} header bytes, the "
                              f"file has {size:,} bytes in all; {fix}")
        try:
            header = json.loads(f.read(n))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise FormatError(f"{p} is not a safetensors file: its header is not the expected JSON; {fix}") from None
    if 8 + n + end > size:
        raise FormatError(f"{p} is truncated: its header announces {8 + n + end:,} bytes, the file has {size:,}; {fix}")


def check_weights_folder(folder: str | Path) -> None:
    """Check every ``*.safetensors`` file directly in ``folder``."""
    for p in sorted(Path(folder).glob("*.safetensors")):
        check_safetensors(p)
