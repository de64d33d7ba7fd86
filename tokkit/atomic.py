"""Atomic outputs: build into a hidden temporary beside the target, then rename into place.

A crash or an error mid-way leaves no partial output (the temporary is removed), and an existing
output is only replaced when the caller passed ``force``. Every path is checked before the work
(:func:`check_output`: the parent is a folder we can write in, the output is not an input), and an
``OSError`` while writing becomes one :class:`~tokkit.errors.OutputWriteError`.

Temporaries are named ``.NAME.tk<pid>-<random>.tmp`` (being written), ``.NAME.tk<pid>.new`` (complete,
about to replace ``NAME``) and ``.NAME.tk<pid>.old`` (the replaced output, about to be deleted). A
process killed with SIGKILL cannot clean up, so every later check of the same output removes the
temporaries whose writer is dead (:func:`recover`); a complete ``.new`` is renamed into place when
``NAME`` itself is missing (the kill fell between the two renames of a swap). Outputs get the user's
umask (0666/0777 masked), whatever the writing library chose.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from tokkit.errors import OutputExistsError, OutputWriteError

__all__ = ["atomic_dir", "atomic_file", "check_output", "check_not_input", "check_resumable", "recover", "write_error"]

_TAG = re.compile(r"^\.(?P<name>.+)\.tk(?P<pid>\d+)(?:-[0-9a-f]+\.tmp|\.new|\.old)$")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def recover(out: str | Path) -> None:
    """Remove the temporaries of ``out`` left by dead writers (restoring a complete ``.new`` if ``out`` is gone)."""
    final = Path(out)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        return
    try:
        entries = [e for e in os.listdir(parent) if e.startswith(f".{final.name}.tk")]
    except OSError:
        return
    stale = []
    for e in entries:
        m = _TAG.match(e)
        if m and m["name"] == final.name and not _alive(int(m["pid"])):
            stale.append(parent / e)
    for p in sorted(stale, key=lambda q: not q.name.endswith(".new")):  # a complete .new first
        if p.name.endswith(".new") and not os.path.lexists(final):
            os.replace(p, final)
        else:
            _remove(p)


def write_error(out: Path, e: OSError) -> OutputWriteError:
    """The one-line error for an ``OSError`` met while writing ``out``."""
    what = e.strerror or str(e)
    name = Path(str(e.filename)).name if e.filename else ""
    where = f" ({e.filename})" if name and name != out.name and not _TAG.match(name) else ""  # not our temporaries
    fix = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
           errno.EROFS: "choose a writable location", errno.EACCES: "choose a folder you can write to",
           errno.EPERM: "choose a folder you can write to"}.get(e.errno or 0, "choose another output path")
    return OutputWriteError(f"cannot write output {out}: {what}{where}; {fix}")


def _nearest_existing(p: Path) -> Path:
    q = p.parent
    while not os.path.lexists(q) and q != q.parent:
        q = q.parent
    return q


def _probe(folder: Path, out: Path) -> None:
    """Create and remove a temporary in ``folder``: proves we can write there before any work."""
    probe = folder / f".{out.name}.tk{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise write_error(out, e) from None


def check_output(out: str | Path, *, force: bool, inputs: Iterable[str | Path] = ()) -> Path:
    """Check ``out`` before any expensive work; returns it as a Path.

    Refuses an existing ``out`` unless ``force``; an ``out`` that is, contains or lies inside one of
    ``inputs`` (``force`` or not); a parent that is a file; a parent we cannot write in. Removes the
    stale temporaries of earlier killed runs.
    """
    p = Path(out)
    check_not_input(p, inputs)
    recover(p)
    if os.path.lexists(p) and not force:
        raise OutputExistsError(f"output {p} already exists; pass --force (force=True) to replace it, or choose another path")
    anc = _nearest_existing(p)
    if not anc.is_dir():
        raise OutputWriteError(f"cannot write output {p}: {anc} is a file, not a folder; choose another output path")
    _probe(anc, p)
    return p


def check_resumable(out: str | Path, *, state: str, resume: bool, force: bool) -> bool:
    """For a training command with checkpoints in folder ``out``: True when it resumes (``resume`` and ``out/state``
    exists); else ``out`` is checked as a new output. A checkpoint there without ``resume`` or ``force`` is
    refused with ``--resume`` suggested first (``--force`` would throw the training away). Temporaries of a
    killed save are removed (or its swap finished) first."""
    p = Path(out)
    recover(p)
    if resume and (p / state).is_file():
        return True
    if (p / state).is_file() and not force:
        raise OutputExistsError(f"{p} already exists and holds a training checkpoint; pass --resume to continue it, "
                                "or --force to throw it away and start over")
    check_output(p, force=force)
    return False


def check_not_input(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output that is, contains or lies inside an input (an overwrite would lose the input)."""
    o = Path(os.path.realpath(out))
    for i in inputs:
        if not os.path.lexists(i):
            continue
        r = Path(os.path.realpath(i))
        if o == r or r.is_relative_to(o) or o.is_relative_to(r):
            rel = "is" if o == r else "contains" if r.is_relative_to(o) else "lies inside"
            raise OutputExistsError(f"output {out} {rel} the input {i}; writing it would destroy that input "
                                    "(--force does not change this): choose another output path")


def _fix_modes(p: Path) -> None:
    """Give ``p`` (and everything under it) the user's umask: 0666/0777 masked."""
    m = _umask()
    if p.is_dir():
        os.chmod(p, 0o777 & ~m)
        for root, dirs, files in os.walk(p):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777 & ~m)
            for f in files:
                q = os.path.join(root, f)
                if not os.path.islink(q):
                    os.chmod(q, 0o666 & ~m)
    elif p.exists():
        os.chmod(p, 0o666 & ~m)


def _commit(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` to ``final`` (replacing it), recoverable at every point."""
    pid = os.getpid()
    _fix_modes(tmp)
    if not os.path.lexists(final):
        os.replace(tmp, final)
        return
    new = final.with_name(f".{final.name}.tk{pid}.new")
    old = final.with_name(f".{final.name}.tk{pid}.old")
    os.replace(tmp, new)  # complete: from here a killed run is finished by recover()
    if final.is_dir() and not final.is_symlink():
        os.replace(final, old)
    else:
        final.unlink()
    os.replace(new, final)
    _remove(old)


@contextmanager
def _guard(final: Path, tmp: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        _remove(tmp)
        if e.filename is not None and str(e.filename).startswith(str(tmp)) or isinstance(e.errno, int) and e.errno in (
                errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise write_error(final, e) from None
        raise
    except BaseException:
        _remove(tmp)
        raise


def _start(out: str | Path, force: bool) -> Path:
    final = check_output(out, force=force)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(final, e) from None
    return final


@contextmanager
def atomic_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` when the block finishes without error."""
    final = _start(out, force)
    tmp = final.with_name(f".{final.name}.tk{os.getpid()}-{secrets.token_hex(4)}.tmp")
    with _guard(final, tmp):
        os.mkdir(tmp)
        yield tmp
        _commit(tmp, final)


@contextmanager
def atomic_file(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path that is renamed to ``out`` when the block finishes without error."""
    final = _start(out, force)
    tmp = final.with_name(f".{final.name}.tk{os.getpid()}-{secrets.token_hex(4)}.tmp")
    with _guard(final, tmp):
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield tmp
        _commit(tmp, final)
