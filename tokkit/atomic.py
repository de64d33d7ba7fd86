"""Atomic outputs that own only what they create: build in a temporary beside the target, rename into place.

Contract (README § Errors):

* **Checked before the work** (:func:`check_output`): the output is not, does not contain and does not lie
  inside an input -- by path and by inode, so hard links and symlinks count -- and its parent is a folder
  we can write in. A CLI command's inputs are every path-valued parameter plus whatever the work itself
  reads (:func:`note_input`, e.g. the file an alias resolved to); the writers check them all again.
* **``--force`` replaces only what tokkit could have written**: a regular file with a file, a folder that
  tokkit wrote (it holds :data:`MARKER`) with a folder, a symlink itself (never its target). A folder
  without the marker, a device, FIFO or socket is refused, ``force`` or not.
* **Without ``force`` creation is exclusive**: the finished temporary is renamed without replacing
  (``renameat2(RENAME_NOREPLACE)``; ``link`` + ``unlink`` or ``mkdir`` + ``rename`` where that is missing),
  so of two writers racing for one output exactly one wins and the other gets the one-line "exists" error.
* **Nothing is left behind**: an exception -- a signal included (the CLI turns SIGTERM into one) --
  removes the temporary and the parent folders this run created. A file output is written inside a
  private temporary folder, so a library that writes through its own temporary (safetensors' ``.tmpXXXX``)
  writes it there too. ``OSError`` while writing -- or a native library's ``os error N`` -- becomes one
  :class:`~tokkit.errors.OutputWriteError` naming the output.

Temporaries are named ``.NAME.tk<pid>-<random>.tmp`` (being written), ``.NAME.tk<pid>.new`` (complete,
about to replace ``NAME``) and ``.NAME.tk<pid>.old`` (the replaced output, about to be deleted). A
process killed with SIGKILL cannot clean up, so every later check of the same output removes the
temporaries whose writer is dead (:func:`recover`); a complete ``.new`` is renamed into place when
``NAME`` itself is missing (the kill fell between the two renames of a swap). Outputs get the user's
umask (0666/0777 masked), whatever the writing library chose.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Literal

from tokkit.errors import OutputExistsError, OutputWriteError
from tokkit.run_inputs import (check_not_input, note_input, reading_own_output, tracked_inputs,  # noqa: F401
                               tracking_inputs)

__all__ = ["atomic_dir", "atomic_file", "check_output", "check_not_input", "check_resumable", "recover",
           "write_error", "MARKER", "tracking_inputs", "note_input", "reading_own_output", "tracked_inputs", "mark_ours"]

_TAG = re.compile(r"^\.(?P<name>.+)\.tk(?P<pid>\d+)(?:-[0-9a-f]+\.tmp|\.new|\.old)$")

#: The file inside every folder tokkit writes: ``--force`` replaces a folder only when it holds this.
MARKER = ".tokkit-output"
_MARKER_TEXT = "This folder was written by tokkit; `--force` may replace it as a whole.\n"

Kind = Literal["file", "dir"]

# ---------------------------------------------------------------------------------------- helpers
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


_FIX = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
        errno.EFBIG: "the file system (or a file-size limit, ulimit -f) refuses a file this large: write elsewhere",
        errno.EIO: "the storage device reported an I/O error: check it, or write elsewhere",
        errno.EROFS: "choose a writable location", errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to"}
#: errno values that only writing can cause: such an error inside a writer's block is about the output.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
_NATIVE_OS_ERROR = re.compile(r"os error (\d+)|code: (\d+), kind:")


def write_error(out: Path, e: OSError) -> OutputWriteError:
    """The one-line error for an ``OSError`` met while writing ``out``."""
    what = e.strerror or str(e)
    parts = Path(str(e.filename)).parts if e.filename else ()
    ours = not parts or parts[-1] == out.name or any(_TAG.match(x) for x in parts)  # our temporaries: not news
    where = "" if ours else f" ({e.filename})"
    fix = _FIX.get(e.errno or 0, "choose another output path")
    return OutputWriteError(f"cannot write output {out}: {what}{where}; nothing was written; {fix}")


def _native_errno(e: BaseException) -> int | None:
    """The ``errno`` inside a native library's error text (tokenizers: ``(os error 28)``, safetensors: ``code: 28``)."""
    m = _NATIVE_OS_ERROR.search(str(e))
    return int(m[1] or m[2]) if m else None


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


def _kind_word(mode: int) -> str:
    return ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
            "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def is_ours(folder: str | Path) -> bool:
    """True when ``folder`` is a folder tokkit wrote (it holds :data:`MARKER`)."""
    return os.path.isfile(os.path.join(folder, MARKER))


def mark_ours(folder: str | Path) -> None:
    """Write :data:`MARKER` into ``folder`` (every :func:`atomic_dir` output gets it)."""
    p = Path(folder) / MARKER
    if not p.exists():
        p.write_text(_MARKER_TEXT, encoding="utf-8")


def check_replaceable(out: str | Path, kind: Kind | None) -> None:
    """Refuse to replace an existing ``out`` that ``--force`` must not destroy (see module docstring).

    ``kind``: what the command writes there (``file``/``dir``; None: not known yet -- then a regular
    file and a tokkit folder both pass, and the writer checks again with its kind).
    """
    p = Path(out)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    rule = "--force replaces only a regular file with a file, a folder tokkit wrote with a folder, or a symlink itself"
    if stat.S_ISLNK(st.st_mode):
        return  # the link itself is replaced; its target is never touched
    if stat.S_ISREG(st.st_mode):
        if kind == "dir":
            raise OutputExistsError(f"output {p} is a file but this command writes a folder there; {rule}: "
                                    "remove it yourself or choose another path")
        return
    if stat.S_ISDIR(st.st_mode):
        if not is_ours(p):
            raise OutputExistsError(f"output {p} is a folder that tokkit did not write (no {MARKER} inside); {rule}: "
                                    "remove it yourself or choose another path")
        if kind == "file":
            raise OutputExistsError(f"output {p} is a folder (written by tokkit) but this command writes a file "
                                    f"there; {rule}: choose another path")
        return
    raise OutputExistsError(f"output {p} is {_kind_word(st.st_mode)}, not a file; {rule}: choose another path")


def check_output(out: str | Path, *, force: bool, inputs: Iterable[str | Path] = (), kind: Kind | None = None,
                 exists_ok: bool = False) -> Path:
    """Check ``out`` before any expensive work; returns it as a Path.

    Refuses an ``out`` that is, contains or lies inside one of ``inputs`` or of the run's tracked inputs
    (``force`` or not); an existing ``out`` unless ``force`` (``exists_ok``: the caller judges existence
    itself, e.g. to resume); with ``force``, an existing ``out`` it must not replace (:func:`check_replaceable`);
    a parent that is a file; a parent we cannot write in. Removes the stale temporaries of earlier killed runs.
    """
    p = Path(out)
    check_not_input(p, inputs)
    check_not_input(p, tracked_inputs(), inside_ok=True)  # a side output may be added inside an input folder
    recover(p)
    if os.path.lexists(p) and not exists_ok:
        if not force:
            raise OutputExistsError(f"output {p} already exists; pass --force (force=True) to replace it, "
                                    "or choose another path")
        check_replaceable(p, kind)
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
    check_not_input(p, tracked_inputs(), inside_ok=True)
    recover(p)
    if resume and (p / state).is_file():
        return True  # the caller marks the folder ours (mark_ours) once its checkpoint has loaded, never before
    if (p / state).is_file() and not force:
        raise OutputExistsError(f"{p} already exists and holds a training checkpoint; pass --resume to continue it, "
                                "or --force to throw it away and start over")
    check_output(p, force=force, kind="dir")
    return False


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
    pid = os.getpid()
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
def _guard(final: Path, tmp: Path, created: list[Path]) -> Iterator[None]:
    """Remove ``tmp`` and the ``created`` parent folders on any exception; an I/O error becomes one line."""
    try:
        yield
    except OSError as e:
        _cleanup(tmp, created)
        mine = e.filename is not None and str(e.filename).startswith(str(tmp))
        if mine or e.errno in _WRITE_ERRNOS or e.errno == errno.EIO and e.filename is None:
            raise write_error(final, e) from None
        raise
    except BaseException as e:
        _cleanup(tmp, created)
        code = None if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)) else _native_errno(e)
        if code is not None and (code in _WRITE_ERRNOS or code == errno.EIO):
            raise write_error(final, OSError(code, os.strerror(code))) from None
        raise


def _cleanup(tmp: Path, created: list[Path]) -> None:
    _remove(tmp)
    for d in reversed(created):  # the deepest first; only while empty (another writer may use it)
        try:
            os.rmdir(d)
        except OSError:
            break


def _start(out: str | Path, force: bool, kind: Kind) -> tuple[Path, list[Path]]:
    final = check_output(out, force=force, kind=kind)
    missing = []
    q = final.parent
    while not os.path.lexists(q) and q != q.parent:
        missing.append(q)
        q = q.parent
    created = []
    try:
        for d in reversed(missing):
            try:
                os.mkdir(d)
                created.append(d)
            except FileExistsError:
                pass
    except OSError as e:
        _cleanup(Path("/nonexistent/tokkit"), created)
        raise write_error(final, e) from None
    return final, created


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tk{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_dir(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` (marked as tokkit's) when the block finishes without error."""
    final, created = _start(out, force, "dir")
    tmp = _tmp_name(final)
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
    box = _tmp_name(final)
    with _guard(final, box, created):
        os.mkdir(box, 0o700)
        tmp = box / final.name
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield tmp
        _commit_as(tmp, final, force, "file")
        _remove(box)
