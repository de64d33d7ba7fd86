"""What a run reads, so that no output of it may replace an input: path and inode comparisons.

A CLI command's inputs are its path-valued parameters plus whatever the work itself reads
(:func:`note_input`, e.g. the file an alias resolved to, within :func:`tracking_inputs`);
:func:`check_not_input` refuses an output that is, contains or lies inside one of them. The writers of
:mod:`tokkit.atomic` check every output against these before the work and again at commit.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterable, Iterator

from tokkit.errors import OutputExistsError

__all__ = ["tracking_inputs", "reading_own_output", "note_input", "tracked_inputs", "check_not_input"]

_INPUTS: ContextVar[tuple[str, ...] | None] = ContextVar("tokkit_inputs", default=None)


@contextmanager
def tracking_inputs(paths: Iterable[str | os.PathLike] = ()) -> Iterator[None]:
    """Within the block every output is also checked against ``paths`` and each :func:`note_input` path."""
    token = _INPUTS.set(tuple(os.fspath(p) for p in paths))
    try:
        yield
    finally:
        _INPUTS.reset(token)


@contextmanager
def reading_own_output() -> Iterator[None]:
    """Within the block :func:`note_input` records nothing: a resumed run reading its own checkpoint (the
    output it will replace) is not reading an input of the user's."""
    saved = _INPUTS.get()
    try:
        yield
    finally:
        _INPUTS.set(saved)


def note_input(*paths: str | os.PathLike | None) -> None:
    """Record paths the work reads (no-op outside :func:`tracking_inputs`)."""
    cur = _INPUTS.get()
    if cur is not None:
        _INPUTS.set(cur + tuple(os.fspath(p) for p in paths if p is not None))


def tracked_inputs() -> tuple[str, ...]:
    return _INPUTS.get() or ()


def _ident(p: str | Path, *, follow: bool = True) -> tuple[int, int] | None:
    try:
        st = os.stat(p) if follow else os.lstat(p)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _ancestors_ids(p: Path) -> set[tuple[int, int]]:
    out = set()
    for q in p.parents:
        i = _ident(q)
        if i is not None:
            out.add(i)
    return out


def check_not_input(out: str | Path, inputs: Iterable[str | Path], *, inside_ok: bool = False) -> None:
    """Refuse an output that is, contains or lies inside an input (an overwrite would lose the input).

    Compared by resolved path and by inode (device, inode), so a hard link or a symlink to an input, or a
    folder reached through another mount, is recognised too. ``inside_ok``: an output inside an input
    folder passes (a file a command adds to a model folder, e.g. ``image fit-prior``).
    """
    o = Path(os.path.realpath(out))
    o_id = _ident(out)
    o_up = None
    for i in inputs:
        if not os.path.lexists(i):
            continue
        r = Path(os.path.realpath(i))
        i_id = _ident(i)
        if o == r or o_id is not None and o_id == i_id:
            rel = "is"
        elif r.is_relative_to(o) or o_id is not None and o_id in _ancestors_ids(r):
            rel = "contains"
        elif inside_ok:
            continue
        else:
            o_up = _ancestors_ids(o) if o_up is None else o_up
            if o.is_relative_to(r) or i_id is not None and i_id in o_up:
                rel = "lies inside"
            else:
                continue
        via = "" if rel != "is" or (o == r and not os.path.islink(out)) else " (the same file by inode: a link to it)"
        raise OutputExistsError(f"output {out} {rel} the input {i}{via}; writing it would destroy that input "
                                "(--force does not change this): choose another output path")
