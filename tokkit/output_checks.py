"""What is at an output path, and may tokkit replace it: the checks before any work is done.

The preflight half of :mod:`tokkit.atomic` (which re-exports every name here): an output is checked
before the work starts (:func:`check_output`) and again right before the rename that commits it
(:func:`check_replaceable`). The rules (README § Errors):

* the output is not, does not contain and does not lie inside an input -- by path and by inode, so hard
  links and symlinks count (:mod:`tokkit.run_inputs`) -- and its parent is a folder we can write in
  (a temporary is created and removed there: :func:`check_output`);
* ``--force`` replaces only what tokkit could have written: a regular file with a file, a folder that
  tokkit wrote (it holds :data:`MARKER`: :func:`is_ours`, :func:`mark_ours`) with a folder, a symlink
  itself (never its target); a folder without the marker, a device, FIFO or socket is refused;
* the temporaries of a writer killed with SIGKILL (``.NAME.tk<pid>-<nonce>-<signature>.tmp|.new|.old``)
  are removed by the next check of the same output, a complete ``.new`` renamed into place when
  ``NAME`` is missing (:func:`recover`). Only names whose signature proves tokkit made them are touched:
  an HMAC of (name, pid, nonce, kind) under a key kept in ``$TOKKIT_HOME/output-key`` (created once,
  mode 0600), so a user's file that merely looks like a temporary is never deleted or renamed;
* an ``OSError`` met while writing becomes one :class:`~tokkit.errors.OutputWriteError` that names the
  output and the fix (:func:`write_error`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Iterable, Literal

from tokkit.errors import OutputExistsError, OutputWriteError
from tokkit.run_inputs import check_not_input, tracked_inputs

__all__ = ["check_output", "check_replaceable", "check_resumable", "recover", "write_error", "is_ours", "mark_ours",
           "native_errno", "remove_path", "temp_name", "is_our_temp", "MARKER", "TEMP_NAME", "WRITE_ERRNOS", "Kind"]

#: The shape of tokkit's temporaries beside an output ``NAME`` (module docstring); :func:`is_our_temp`
#: also checks the signature.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tk(?P<pid>\d+)-(?P<nonce>[0-9a-f]{8})-(?P<sig>[0-9a-f]{16})\.(?P<kind>tmp|new|old)$")
_KEYS: dict[str, bytes] = {}


def _key() -> bytes:
    """The key that signs temporary names: ``$TOKKIT_HOME/output-key``, created once (0600). Where the
    home cannot be written, a key of this process only: its temporaries are then never recovered by
    another process, which only leaves them in place."""
    from tokkit.config import tokkit_home

    path = tokkit_home() / "output-key"
    if str(path) not in _KEYS:
        try:
            key = path.read_bytes()
        except OSError:
            key = b""
        if len(key) != 32:
            key = secrets.token_bytes(32)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".output-key.{os.getpid()}-{secrets.token_hex(4)}")
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key)
                try:
                    os.link(tmp, path)  # the first writer wins; everyone then reads its key
                except FileExistsError:
                    pass
                finally:
                    os.unlink(tmp)
                key = path.read_bytes() if len(path.read_bytes()) == 32 else key
            except OSError:
                pass
        _KEYS[str(path)] = key
    return _KEYS[str(path)]


def _signature(name: str, pid: int, nonce: str, kind: str) -> str:
    return hmac.new(_key(), f"{name}\0{pid}\0{nonce}\0{kind}".encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()[:16]


def temp_name(final: Path, kind: Literal["tmp", "new", "old"] = "tmp", *, pid: int | None = None) -> Path:
    """A fresh, signed temporary beside ``final``: ``.NAME.tk<pid>-<nonce>-<signature>.<kind>``."""
    pid = os.getpid() if pid is None else pid
    nonce = secrets.token_hex(4)
    return final.with_name(f".{final.name}.tk{pid}-{nonce}-{_signature(final.name, pid, nonce, kind)}.{kind}")


def is_our_temp(entry: str, name: str) -> re.Match[str] | None:
    """The match of ``entry`` as a temporary tokkit made for the output ``name`` (signature checked), else None."""
    m = TEMP_NAME.match(entry)
    if m is None or m["name"] != name:
        return None
    return m if hmac.compare_digest(m["sig"], _signature(name, int(m["pid"]), m["nonce"], m["kind"])) else None


#: The file inside every folder tokkit writes: ``--force`` replaces a folder only when it holds this.
MARKER = ".tokkit-output"
_MARKER_TEXT = "This folder was written by tokkit; `--force` may replace it as a whole.\n"

Kind = Literal["file", "dir"]


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


def remove_path(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def recover(out: str | Path) -> bool:
    """Remove the temporaries of ``out`` left by dead writers (restoring a complete ``.new`` if ``out`` is gone);
    True when it restored one. Only signed names are touched (:func:`is_our_temp`)."""
    final = Path(out)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        return False
    try:
        entries = [e for e in os.listdir(parent) if e.startswith(f".{final.name}.tk")]
    except OSError:
        return False
    stale = []
    for e in entries:
        m = is_our_temp(e, final.name)
        if m and not _alive(int(m["pid"])):
            stale.append(parent / e)
    restored = False
    for p in sorted(stale, key=lambda q: not q.name.endswith(".new")):  # a complete .new first
        if p.name.endswith(".new") and not os.path.lexists(final):
            os.replace(p, final)
            restored = True
        else:
            remove_path(p)
    return restored


_FIX = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
        errno.EFBIG: "the file system (or a file-size limit, ulimit -f) refuses a file this large: write elsewhere",
        errno.EIO: "the storage device reported an I/O error: check it, or write elsewhere",
        errno.EROFS: "choose a writable location", errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to"}
#: errno values that only writing can cause: such an error inside a writer's block is about the output.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
_NATIVE_OS_ERROR = re.compile(r"os error (\d+)|code: (\d+), kind:")


def write_error(out: Path, e: OSError) -> OutputWriteError:
    """The one-line error for an ``OSError`` met while writing ``out``."""
    what = e.strerror or str(e)
    parts = Path(str(e.filename)).parts if e.filename else ()
    ours = not parts or parts[-1] == out.name or any(TEMP_NAME.match(x) for x in parts)  # our temporaries: not news
    where = "" if ours else f" ({e.filename})"
    fix = _FIX.get(e.errno or 0, "choose another output path")
    return OutputWriteError(f"cannot write output {out}: {what}{where}; nothing was written; {fix}")


def native_errno(e: BaseException) -> int | None:
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
    probe = temp_name(folder / out.name)
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
    restored = recover(p)
    if os.path.lexists(p) and not exists_ok:
        if not force:
            how = " (restored from a run that was killed while replacing it)" if restored else ""
            raise OutputExistsError(f"output {p} already exists{how}; pass --force (force=True) to replace it, "
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
