"""Atomic outputs that own only what they create: build in a temporary beside the target, rename into place.

Contract (README § Errors); the checks before the work are :mod:`tokkit.output_checks` (re-exported here,
so ``from tokkit.atomic import check_output`` keeps working):

* **Checked before the work** (:func:`check_output`): not an input, a writable parent, and with ``--force``
  only what tokkit could have written is replaced (:func:`check_replaceable`, again right before the rename).
* **Without ``force`` creation is exclusive**: the finished temporary is renamed without replacing
  (``renameat2(RENAME_NOREPLACE)``; ``link`` + ``unlink`` or ``mkdir`` + ``rename`` where that is missing),
  so of two writers racing for one output exactly one wins and the other gets the one-line "exists" error.
* **Nothing is left behind**: an exception -- a signal included (the CLI turns SIGTERM into one) --
  removes the temporary and the parent folders this run created. A file output is written inside a
  private temporary folder, so a library that writes through its own temporary (safetensors' ``.tmpXXXX``)
  writes it there too. ``OSError`` while writing -- or a native library's ``os error N`` -- becomes one
  :class:`~tokkit.errors.OutputWriteError` naming the output.

Temporaries are named ``.NAME.tk<pid>-<nonce>-<signature>.tmp`` (being written), ``….new`` (complete,
about to replace ``NAME``) and ``….old`` (the replaced output, about to be deleted); a run killed with
SIGKILL leaves them to the next check of the same output (:func:`recover`), which touches only names
whose signature proves tokkit made them (:func:`tokkit.output_checks.is_our_temp`). Outputs get the
user's umask (0666/0777 masked), whatever the writing library chose.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tokkit.errors import OutputExistsError
from tokkit.output_checks import (MARKER, WRITE_ERRNOS, Kind, check_output, check_replaceable,  # noqa: F401
                                  check_resumable, is_ours, mark_ours, native_errno, recover, remove_path,
                                  temp_name, write_error)
from tokkit.run_inputs import (check_not_input, note_input, reading_own_output, tracked_inputs,  # noqa: F401
                               tracking_inputs)

__all__ = ["atomic_dir", "atomic_file", "rename_noreplace", "check_output", "check_replaceable", "check_not_input",
           "check_resumable", "recover", "write_error", "is_ours", "mark_ours", "MARKER", "tracking_inputs",
           "note_input", "reading_own_output", "tracked_inputs", "make_parents", "remove_created"]


# ---------------------------------------------------------------------------------------- helpers
def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _fix_modes(p: Path) -> None:
    """Give ``p`` (and everything under it) the user's umask: 0666/0777 masked. A file with other hard links
    (a source shard linked in rather than copied) keeps its mode: the inode is the source's too."""
    m = _umask()
    if p.is_dir():
        os.chmod(p, 0o777 & ~m)
        for root, dirs, files in os.walk(p):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o777 & ~m)
            for f in files:
                q = os.path.join(root, f)
                st = os.lstat(q)
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    os.chmod(q, 0o666 & ~m)
    elif p.exists():
        os.chmod(p, 0o666 & ~m)


# ---------------------------------------------------------------------------------------- renaming
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2 = None


def _libc_renameat2():
    global _renameat2
    if _renameat2 is None:
        try:
            f = ctypes.CDLL(None, use_errno=True).renameat2
            f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            f.restype = ctypes.c_int
            _renameat2 = f
        except (AttributeError, OSError):
            _renameat2 = False
    return _renameat2


def rename_noreplace(src: str | Path, dst: str | Path) -> None:
    """Rename ``src`` to ``dst``; ``FileExistsError`` when ``dst`` exists (atomically: never replaces it)."""
    f = _libc_renameat2()
    if f:
        if f(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # else: the file system lacks the flag
            raise OSError(err, os.strerror(err), os.fspath(dst))
    if os.path.isdir(src) and not os.path.islink(src):
        os.mkdir(dst)  # FileExistsError for the loser; then the rename replaces our own empty folder
        os.rename(src, dst)
    else:
        os.link(src, dst)  # FileExistsError for the loser
        os.unlink(src)


#: How each pending temporary is committed: ``(replace, kind)``, set by the writer (``_commit(tmp, final)`` keeps its
#: two-argument form: tests wrap it to kill a process at its N-th commit).
_MODES: dict[str, tuple[bool, "Kind | None"]] = {}


def _commit_as(tmp: Path, final: Path, replace: bool, kind: Kind) -> None:
    _MODES[str(tmp)] = (replace, kind)
    try:
        _commit(tmp, final)
    finally:
        _MODES.pop(str(tmp), None)


def _commit(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` to ``final``: exclusively unless the writer allows replacing; recoverable at
    every point."""
    replace, kind = _MODES.pop(str(tmp), (True, None))
    _fix_modes(tmp)
    if not replace:
        try:
            rename_noreplace(tmp, final)
        except FileExistsError:
            raise OutputExistsError(f"output {final} was created by another process while this one worked; "
                                    "pass --force (force=True) to replace it, or choose another path") from None
        return
    check_replaceable(final, kind)  # again: something may have appeared there during the work
    if not os.path.lexists(final):
        os.replace(tmp, final)
        return
    new = temp_name(final, "new")
    old = temp_name(final, "old")
    os.replace(tmp, new)  # complete: from here a killed run is finished by recover()
    if final.is_dir() and not final.is_symlink():
        os.replace(final, old)
    else:
        final.unlink()
    os.replace(new, final)
    remove_path(old)


@contextmanager
def _guard(final: Path, tmp: Path, created: list[Path]) -> Iterator[None]:
    """Remove ``tmp`` and the ``created`` parent folders on any exception; an I/O error becomes one line."""
    try:
        yield
    except OSError as e:
        _cleanup(tmp, created)
        mine = e.filename is not None and str(e.filename).startswith(str(tmp))
        if mine or e.errno in WRITE_ERRNOS or e.errno == errno.EIO and e.filename is None:
            raise write_error(final, e) from None
        raise
    except BaseException as e:
        _cleanup(tmp, created)
        code = None if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)) else native_errno(e)
        if code is not None and (code in WRITE_ERRNOS or code == errno.EIO):
            raise write_error(final, OSError(code, os.strerror(code))) from None
        raise


def _cleanup(tmp: Path, created: list[Path]) -> None:
    remove_path(tmp)
    remove_created(created)


def make_parents(final: Path) -> list[Path]:
    """Create the missing parent folders of ``final``; returns those created, outermost first (a failure
    removes them again and is one :class:`~tokkit.errors.OutputWriteError`)."""
    missing = []
    q = final.parent
    while not os.path.lexists(q) and q != q.parent:
        missing.append(q)
        q = q.parent
    created: list[Path] = []
    try:
        for d in reversed(missing):
            try:
                os.mkdir(d)
                created.append(d)
            except FileExistsError:
                pass
    except OSError as e:
        remove_created(created)
        raise write_error(final, e) from None
    return created


def remove_created(created: list[Path]) -> None:
    """Remove the folders of :func:`make_parents`, the deepest first, while empty (another writer may use one)."""
    for d in reversed(created):
        try:
            os.rmdir(d)
        except OSError:
            break


def _start(out: str | Path, force: bool, kind: Kind) -> tuple[Path, list[Path]]:
    final = check_output(out, force=force, kind=kind)
    return final, make_parents(final)


@contextmanager
def atomic_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` (marked as tokkit's) when the block finishes without error."""
    final, created = _start(out, force, "dir")
    tmp = temp_name(final)
    with _guard(final, tmp, created):
        os.mkdir(tmp)
        yield tmp
        mark_ours(tmp)
        _commit_as(tmp, final, force, "dir")


@contextmanager
def atomic_file(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary file path (named like ``out``, inside a private temporary folder beside it) that is
    renamed to ``out`` when the block finishes without error."""
    final, created = _start(out, force, "file")
    box = temp_name(final)
    with _guard(final, box, created):
        os.mkdir(box, 0o700)
        tmp = box / final.name
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield tmp
        _commit_as(tmp, final, force, "file")
        remove_path(box)
