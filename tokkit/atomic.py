"""Atomic outputs: build into a hidden temporary folder beside the target, then rename into place.

A crash or an error mid-way leaves no partial output (the temporary folder is removed), and an
existing output is only replaced when the caller passed ``force``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tokkit.errors import OutputExistsError

__all__ = ["atomic_dir", "atomic_file", "check_output"]


def check_output(out: str | Path, *, force: bool) -> Path:
    """Refuse an existing ``out`` unless ``force`` (call before any expensive work)."""
    p = Path(out)
    if p.exists() and not force:
        raise OutputExistsError(f"output {p} already exists; pass --force (force=True) to replace it, or choose another path")
    return p


@contextmanager
def atomic_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` when the block finishes without error."""
    final = check_output(out, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old) if final.is_dir() else final.unlink()
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``out`` when the block finishes without error."""
    final = check_output(out, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the output is an ordinary file
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
