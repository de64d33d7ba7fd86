"""Error types for tokkit.

Every error a user can cause subclasses :class:`TokkitError` *and* the matching builtin, so callers
can catch either. Messages say what was expected, what was found, and how to fix it; the CLI maps
any ``TokkitError`` to one line on stderr and exit code 2.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = [
    "TokkitError",
    "UnknownNameError",
    "MissingFileError",
    "FormatError",
    "VocabMismatchError",
    "SpecialTokenError",
    "OutputExistsError",
    "OutputWriteError",
    "EmptyInputError",
    "InputTypeError",
    "ResourceError",
    "NonFiniteError",
    "native_errors",
    "checkpoint_errors",
    "FixtureError",
    "ImpossiblePrefixError",
    "UnencodableBytesError",
    "OptionError",
]


class TokkitError(Exception):
    """Base class of every error caused by bad input (exit code 2 at the CLI)."""


class UnknownNameError(TokkitError, LookupError):
    """An alias, method or recipe name that tokkit does not know."""

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else ""


class MissingFileError(TokkitError, FileNotFoundError):
    """A file or folder the user named does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FormatError(TokkitError, ValueError):
    """A file exists but is not what tokkit expected (truncated json, wrong format, bad header)."""


class VocabMismatchError(TokkitError, ValueError):
    """A vocabulary and an embedding (or two vocabularies) do not fit together."""


class SpecialTokenError(TokkitError, ValueError):
    """Text contains a special-token string that the caller did not allow."""


class OutputExistsError(TokkitError, FileExistsError):
    """An output path exists and ``force`` was not given."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ResourceError(TokkitError, ValueError):
    """Sizes asked for that cannot fit (memory estimate above what is free)."""


class NonFiniteError(TokkitError, ValueError):
    """NaN or infinity where a finite number is needed: in a model's weights, a loss, an option."""


class InputTypeError(TokkitError, TypeError):
    """An argument of the wrong Python type (``bytes`` where ``str`` is expected ...)."""


class EmptyInputError(TokkitError, ValueError):
    """An input file or text that is empty where content is needed."""


class OutputWriteError(TokkitError, OSError):
    """An output cannot be written (parent is a file, no permission, disk full, read-only)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FixtureError(TokkitError, RuntimeError):
    """A fixture could not be fetched, or its checksum does not match the manifest."""


class ImpossiblePrefixError(TokkitError, ValueError):
    """A byte prefix that the model gives probability 0 (no token sequence spells it, or the LM gives
    every continuation probability 0): there is no next-byte distribution to return."""


class UnencodableBytesError(TokkitError, ValueError):
    """Text contains bytes that no token of the vocabulary can spell (strict encoding refuses to drop them)."""


class OptionError(TokkitError, ValueError):
    """An option that the rest of the command line makes meaningless (a method's knob given to another method)."""


@contextmanager
def native_errors(path: object, what: str) -> Iterator[None]:
    """Turn any error of a native library reading ``path`` (Rust panics included) into a :class:`FormatError`.

    pyo3's ``PanicException`` derives from ``BaseException``, so a plain ``except Exception`` misses it;
    only interrupts and exits pass through unchanged. File descriptor 2 is captured during the block
    (:func:`tokkit.native_calls.captured_stderr`): a panic's raw message and backtrace never reach the terminal.
    """
    from tokkit.native_calls import captured_stderr

    try:
        with captured_stderr():
            yield
    except TokkitError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as e:  # noqa: BLE001 - native libraries raise anything, panics included
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise FormatError(f"{path} is a damaged {what} file ({type(e).__name__}: {first}); it may be truncated or "
                          "of another format: fetch or export it again") from None


@contextmanager
def checkpoint_errors(path: object, *, fix: str = "resume from an intact checkpoint, or pass --force to start over"
                      ) -> Iterator[None]:
    """Restoring a training checkpoint from ``path``: any failure of a tampered or damaged file (a wrong shape,
    an RNG state of the wrong size, a missing key, a field of the wrong type) becomes one :class:`FormatError`."""
    try:
        yield
    except TokkitError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as e:  # noqa: BLE001 - torch/safetensors/json raise many types on a tampered file
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise FormatError(f"the checkpoint in {path} is damaged or was changed ({type(e).__name__}: {first}); "
                          f"{fix}") from None
