"""Check a ``.safetensors`` file before a library maps it: a truncated or foreign file is one clear error,
and so is a float tensor holding NaN or infinity.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
``data_offsets`` into the byte buffer that follows, then that buffer. Reading the header alone
(no tensor data) tells whether the file holds every byte its header announces. The finiteness check
reads each float tensor's bytes once through a memory map, in chunks, and tests the exponent bits
(all ones: NaN or +-inf) -- bfloat16 included, which numpy has no type for. Torch-free.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tokkit.errors import FormatError, NonFiniteError

__all__ = ["check_safetensors", "check_weights_folder", "check_finite_safetensors", "safetensors_header", "read_index",
           "INDEX", "FLOAT_DTYPES"]

#: The index of a sharded safetensors model.
INDEX = "model.safetensors.index.json"
#: safetensors dtypes of floating-point tensors (weights a model computes with).
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})

#: dtype -> numpy view of its bytes (bfloat16: its bits, with the exponent mask in _BF16).
_VIEW = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
_BF16 = 0x7F80  # every exponent bit set: NaN or +-inf
_CHUNK = 1 << 22  # elements per read


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


def safetensors_header(path: str | Path) -> tuple[int, dict]:
    """(start of the data buffer, the JSON header) of a checked safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return 8 + n, json.loads(f.read(n))


def check_finite_safetensors(path: str | Path) -> None:
    """Raise :class:`NonFiniteError` naming the first float tensor of ``path`` that holds NaN or infinity."""
    import numpy as np

    p = Path(path)
    start, header = safetensors_header(p)
    if p.stat().st_size <= start:
        return
    data = np.memmap(p, dtype=np.uint8, mode="r")
    for name, info in header.items():
        if name == "__metadata__" or info.get("dtype") not in _VIEW:
            continue
        a, b = (int(x) for x in info["data_offsets"])
        values = data[start + a:start + b].view(_VIEW[info["dtype"]])
        bf16 = info["dtype"] == "BF16"
        mask = np.uint16(_BF16)
        bad = 0
        for i in range(0, len(values), _CHUNK):
            c = values[i:i + _CHUNK]
            if bf16:
                bad += int(np.count_nonzero((c & mask) == mask))
            elif not np.isfinite(c).all():
                bad += int(np.count_nonzero(~np.isfinite(c)))
        if bad:
            raise NonFiniteError(f"{p}: tensor {name} holds {bad:,} NaN or infinite value(s) of {len(values):,}; "
                                 "the weights are damaged (a diverged training run or a bad conversion): fetch, "
                                 "convert or save them again")


_CHECKED: dict[tuple[str, int, int], None] = {}


def read_index(folder: str | Path) -> dict[str, str] | None:
    """The ``weight_map`` (tensor -> shard file) of ``folder``'s :data:`INDEX`, or None without one. Refused in
    one line: an index that is no JSON object with a ``weight_map``, a shard name that is not a plain
    ``.safetensors`` file name in the folder (``sub/x``, ``../x``: never a path out of it), a shard that is
    missing. Read as a regular file of at most 64 MB (:mod:`tokkit.input_files`)."""
    from tokkit.input_files import read_input_bytes

    d = Path(folder)
    index = d / INDEX
    if not index.exists() and not index.is_symlink():
        return None
    raw = read_input_bytes(index, what="safetensors index", expected="pass a model folder whose index is a JSON file",
                           max_bytes=64 << 20)
    try:
        weight_map = json.loads(raw.decode("utf-8-sig"))["weight_map"]
        assert isinstance(weight_map, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise FormatError(f"{index} is not a safetensors index (JSON with a 'weight_map' object); re-save the "
                          "model, or remove the index if the folder holds one model.safetensors") from None
    bad = sorted({repr(v) for v in weight_map.values()
                  if not isinstance(v, str) or Path(v).name != v or v.startswith(".") or not v.endswith(".safetensors")})
    if bad:  # a shard name is joined to the model folder and to the output folder: never a path out of them
        raise FormatError(f"{index} names shard files that are not plain file names in the folder ({bad[0]}); "
                          "expected names like 'model-00001-of-00002.safetensors': fix the index or re-save the model")
    missing = sorted(v for v in set(weight_map.values()) if not (d / v).is_file())
    if missing:
        raise FormatError(f"{index} names shard {missing[0]}, which is not a file in {d} ({len(missing)} missing); the "
                          "model is incomplete: fetch or copy the missing shards, or re-save the model")
    return weight_map


def check_weights_folder(folder: str | Path, *, finite: bool = True) -> None:
    """Check the index (:func:`read_index`) and every ``*.safetensors`` file directly in ``folder``: complete, and
    (``finite``) no NaN/inf in a float tensor. A file already checked unchanged (path, size, mtime) in this
    process is not read again."""
    read_index(folder)
    for p in sorted(Path(folder).glob("*.safetensors")):
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key in _CHECKED:
            continue
        check_safetensors(p)
        if finite:
            check_finite_safetensors(p)
            _CHECKED[key] = None
