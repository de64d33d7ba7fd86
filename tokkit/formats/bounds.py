"""Declared sizes checked against what declares them, before anything is allocated.

A vocabulary table is as long as its largest id. Ids may leave gaps (cl100k leaves 100256 and
100261-100275 unused), but a file with ``E`` entries may not use an id at or above ``2 * E + 1024``:
tables then stay within about twice what the file itself holds. Without the bound a 9 KB
``tokenizer.json`` declaring id 300,000,000 (or a rank file with that rank) grew to 22 GB.
Torch-free.
"""

from __future__ import annotations

from tokkit.errors import FormatError

__all__ = ["id_bound", "check_id"]


def id_bound(entries: int) -> int:
    """The smallest id a vocabulary of ``entries`` entries may not use."""
    return 2 * entries + 1024


def check_id(i: int, *, entries: int, what: str, label: str) -> None:
    """Refuse id ``i`` (of ``what``, in file ``label``) when it is negative or beyond :func:`id_bound`."""
    if i < 0:
        raise FormatError(f"{label}: {what} has the negative id {i}; ids are whole numbers from 0: fix that entry")
    bound = id_bound(entries)
    if i >= bound:
        raise FormatError(f"{label}: {what} has id {i:,}, far beyond the {entries:,} entries the file holds (ids may "
                          f"leave gaps but must stay below 2 x entries + 1024 = {bound:,}); the file is damaged or "
                          "hand-edited: fix that id")
