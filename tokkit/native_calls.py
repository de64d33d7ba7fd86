"""Calling native libraries safely: interruptible long calls, and their raw stderr kept off the terminal.

* :func:`interruptible` runs a long native call (HF ``tokenizers``' trainer holds no GIL while it merges)
  in a daemon thread while the main thread waits in short steps, so Python's signal handlers run at once:
  Ctrl-C or SIGTERM end the command within a fraction of a second instead of after the training (25 s
  measured on a 30k-merge run). The abandoned thread dies with the process (``tokkit_cli.main`` exits
  without waiting for it).
* :func:`captured_stderr` points file descriptor 2 at a temporary file around a native call: a Rust panic
  writes its message and backtrace straight to fd 2, below Python's ``sys.stderr``, so catching the
  ``PanicException`` alone still leaves 100+ raw lines on the terminal. On success whatever was captured
  is passed on to the real stderr unchanged; on an exception it is dropped (the caller turns the
  exception into one ``error:`` line) and its first line is available to the caller.

Torch-free; no tokkit imports beyond the standard library.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, TypeVar

__all__ = ["interruptible", "captured_stderr", "Captured"]

T = TypeVar("T")

_LOCK = threading.Lock()  # fd 2 is process-wide: one capture at a time (nested calls pass through)
_DEPTH = threading.local()


def interruptible(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a daemon thread; the calling (main) thread stays responsive to signals.

    Outside the main thread it is a plain call. The result or exception of ``fn`` is returned or re-raised
    here; an interrupt raised in the main thread while waiting propagates at once (the worker is abandoned).
    """
    if threading.current_thread() is not threading.main_thread():
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, name=f"tokkit-native-{getattr(fn, '__name__', 'call')}", daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.05)
    if "error" in box:
        raise box["error"]
    return box["value"]


class Captured:
    """What a :func:`captured_stderr` block wrote to fd 2 (filled in when the block ends)."""

    def __init__(self) -> None:
        self.text = ""

    @property
    def first_line(self) -> str:
        """The first line that says something (a panic's ``thread '...' panicked at ...:`` is followed by its message)."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        for i, ln in enumerate(lines):
            if " panicked at " in ln and i + 1 < len(lines):
                return lines[i + 1]
        return lines[0] if lines else ""


@contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Capture fd 2 during the block (see module docstring); nested blocks and failures to redirect pass through."""
    cap = Captured()
    if getattr(_DEPTH, "n", 0) or not _LOCK.acquire(blocking=False):
        yield cap
        return
    _DEPTH.n = 1
    saved = None
    try:
        try:
            sys.stderr.flush()
            tmp = tempfile.TemporaryFile()
            saved = os.dup(2)
            os.dup2(tmp.fileno(), 2)
        except (OSError, ValueError, AttributeError):  # no fd 2 (embedded interpreter) or no temp space
            saved = None
            yield cap
            return
        failed = True
        try:
            yield cap
            failed = False
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            raw = tmp.read()
            tmp.close()
            cap.text = raw.decode("utf-8", "replace")
            if raw and not failed:
                try:
                    os.write(2, raw)
                except OSError:
                    pass
    finally:
        _DEPTH.n = 0
        _LOCK.release()


def encode_failure(e: BaseException, name: str) -> BaseException:
    """What to raise when a native encoder fails on a text: a Rust panic (pyo3's ``PanicException``, a
    ``BaseException`` that ``except Exception`` misses) becomes one :class:`~tokkit.errors.FormatError`
    naming the cause -- a tokenizer file's split regex that backtracks without end (Oniguruma's
    ``retry-limit-in-match``) is the file's defect --; anything else is returned unchanged."""
    if type(e).__name__ != "PanicException":
        return e
    from tokkit.errors import FormatError

    first = (str(e).strip().splitlines() or [""])[0][:160]
    if "retry-limit" in first or "Regex" in first:
        return FormatError(f"{name}: the tokenizer's split regex (pre_tokenizer) backtracks without end on this text "
                           f"({first}); expected a pattern the regex engine can run: fix the pattern in the file "
                           "(nested quantifiers such as (a+)+ are the usual cause)")
    return FormatError(f"{name}: the native tokenizer library failed on this text ({first}); the tokenizer file "
                       "may be damaged: export or fetch it again")


def raise_clearly(e: BaseException, name: str) -> NoReturn:
    """Raise :func:`encode_failure`'s error for ``e`` (``e`` itself, unchanged, when it is no native panic)."""
    err = encode_failure(e, name)
    if err is e:
        raise e
    raise err from None
