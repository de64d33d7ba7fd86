"""The input contracts of the encoding calls: text, lists of text, and tiktoken's special-token arguments.

Each check raises :class:`~tokkit.errors.InputTypeError` with what was expected, what was found and the
fix, instead of a bare ``TypeError`` from deep inside a library, or of a silently different reading
(a ``dict`` encoded as its keys, ``allowed_special="<|endoftext|>"`` read as a set of characters).

``allowed_special`` / ``disallowed_special`` follow ``tiktoken.Encoding.encode``: ``"all"`` or a
collection of special strings; ``disallowed_special`` may also be empty or None (nothing disallowed:
tiktoken tests it for truth). A str other than ``"all"`` is refused (tiktoken raises ``TypeError``),
and so is ``allowed_special=None``. :data:`NO_SPECIAL` and :data:`ALL` are the defaults of every
encoding call: ``encode``'s hot path checks the arguments only when they are not these very objects.
"""

from __future__ import annotations

from typing import Any, Iterable

from tokkit.errors import InputTypeError

__all__ = ["NO_SPECIAL", "ALL", "need_str", "text_list", "check_special_args"]

#: The default ``allowed_special`` (nothing allowed) and ``disallowed_special`` (every special string).
NO_SPECIAL: frozenset[str] = frozenset()
ALL = "all"

_COLLECTIONS = (set, frozenset, list, tuple, dict)


def need_str(text: object, call: str = "encode") -> None:
    """Refuse anything but a str as one text."""
    if not isinstance(text, str):
        hint = " or decode your bytes first (data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise InputTypeError(f"{call} takes text as str, found {type(text).__name__}; pass a str{hint}")


def text_list(texts: Any, call: str = "encode_batch", expected: str = "a list of str") -> list[str]:
    """``texts`` (a list, tuple or other ordered iterable of str) as a list; one text, None, a mapping or a
    set is refused."""
    if isinstance(texts, (str, bytes, bytearray)):
        raise InputTypeError(f"{call} takes a list of str, found a single {type(texts).__name__}; "
                             "wrap it in a list or call encode()")
    if texts is None or isinstance(texts, (dict, set, frozenset)) or not isinstance(texts, Iterable):
        raise InputTypeError(f"{call} takes {expected}, found {type(texts).__name__}; pass e.g. ['first text', "
                             "'second text']")
    out = list(texts)
    for t in out:
        need_str(t, call)
    return out


def _spec_error(arg: str, value: Any) -> InputTypeError:
    if isinstance(value, str):
        fix = f"pass {{{value!r}}} (a set) or 'all'"
    else:
        fix = "pass a set of special strings such as {'<|endoftext|>'}, or 'all'" + (
            ", or () for nothing" if arg == "disallowed_special" else ", or frozenset() for none")
    return InputTypeError(f"{arg} takes 'all' or a set of special-token strings (as tiktoken), found "
                          f"{type(value).__name__} {value!r:.60}; {fix}")


_EXACT = frozenset(_COLLECTIONS)


def _well_formed(value: Any) -> bool:
    """``"all"``, or a set, list, tuple or dict of str (``"".join``: one C-level pass over the items)."""
    cls = value.__class__
    if cls is str:
        return value == ALL
    if cls not in _EXACT and not isinstance(value, _COLLECTIONS):
        return False
    if not value:
        return True
    try:
        "".join(value)
    except TypeError:
        return False
    return True


def check_special_args(allowed: Any, disallowed: Any) -> Any:
    """Refuse special-token arguments tiktoken refuses; returns ``disallowed`` with None read as ``()``.
    (Called per ``encode`` with non-default arguments: the usual values leave after one or two tests.)"""
    cls = allowed.__class__
    if cls is frozenset or cls is set:
        if allowed:
            try:
                "".join(allowed)  # every item a str: one C-level pass
            except TypeError:
                raise _spec_error("allowed_special", allowed) from None
    elif not (cls is str and allowed == ALL) and not _well_formed(allowed):
        raise _spec_error("allowed_special", allowed)
    if disallowed is ALL or disallowed == ():
        return disallowed
    if disallowed is None:
        return ()
    if not _well_formed(disallowed):
        raise _spec_error("disallowed_special", disallowed)
    return disallowed
