"""The merge-loop checkpoint of :mod:`tokkit.train.bpe_counts`: its whole state in one ``.npz``.

Words, pair counts, heap and merges are stored as plain integer arrays (ragged rows as values plus
offsets) and the rest as JSON, loaded with ``allow_pickle=False``: a crafted file can never run code.
The file is written through a signed temporary and renamed into place; a tampered one fails the array
checks here (:func:`_check_arrays`), not as an IndexError deep in the merge loop, and a checkpoint of
another run (other options or counts) is refused naming what differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tokkit.errors import FormatError
from tokkit.output_checks import temp_name

if TYPE_CHECKING:
    from tokkit.train.bpe_counts import BpeSpec, _State

__all__ = ["BpeCheckpointError", "save_state", "load_state", "is_merge_state"]

_CKPT_VERSION = 2  # 2: arrays + JSON in an .npz (1 was a pickle, never read again)


class BpeCheckpointError(FormatError):
    """A merge-loop checkpoint that does not belong to this training run."""


def _ragged(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints -> (flat int64 values, int64 offsets of length len(rows) + 1)."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter((x for r in rows for x in r), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def _unragged(flat: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    vals, offs = flat.tolist(), offsets.tolist()
    return [vals[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]


def save_state(st: "_State", path: Path) -> None:
    """Write the merge-loop state as plain arrays and JSON in one ``.npz`` (no pickle: loading runs no code)."""
    meta = {"format": "tokkit-bpe-merge-state", "version": _CKPT_VERSION,
            "spec": {k: getattr(st.spec, k) for k in st.spec.__dataclass_fields__},
            "fingerprint": list(st.fingerprint), "id_to_word": st.id_to_word, "seq": st.seq, "done": st.done}
    words, word_offsets = _ragged(st.words)
    lens, lens_offsets = _ragged(st.lens)
    heap_pos, heap_offsets = _ragged([sorted(e[4]) for e in st.heap])
    pairs = np.array(list(st.pair_counts.keys()), dtype=np.int64).reshape(-1, 2)
    arrays = {
        "meta": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
        "words": words, "word_offsets": word_offsets, "lens": lens, "lens_offsets": lens_offsets,
        "counts": np.array(st.counts, dtype=np.int64),
        "pairs": pairs, "pair_counts": np.array(list(st.pair_counts.values()), dtype=np.int64),
        "heap": np.array([e[:4] for e in st.heap], dtype=np.int64).reshape(-1, 4),
        "heap_pos": heap_pos, "heap_offsets": heap_offsets,
        "merges": np.array([(a, b, n) for (a, b), n in st.merges], dtype=np.int64).reshape(-1, 3),
    }
    tmp = temp_name(path)  # a killed save leaves what the next check of this output removes
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_merge_state(path: Path) -> bool:
    """True when ``path`` is a merge-loop checkpoint tokkit wrote (its ``meta`` header; only that member is read)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(z["meta"].tobytes().decode("utf-8")).get("format") == "tokkit-bpe-merge-state"
    except Exception:  # not an npz, no meta, not JSON: not ours
        return False


def _read(path: Path) -> "_State":
    from tokkit.train.bpe_counts import BpeSpec, _State

    with np.load(path, allow_pickle=False) as z:  # a pickled object array is refused, never unpickled
        a = {k: z[k] for k in z.files}
    meta = json.loads(a["meta"].tobytes().decode("utf-8"))
    if meta.get("format") != "tokkit-bpe-merge-state":
        raise ValueError("no tokkit-bpe-merge-state header")
    _check_arrays(a, len(meta["id_to_word"]))
    spec = dict(meta["spec"])
    for k in ("special_tokens", "initial_alphabet"):
        spec[k] = tuple(spec[k])
    id_to_word = list(meta["id_to_word"])
    heap_pos = _unragged(a["heap_pos"], a["heap_offsets"])
    st = _State(BpeSpec(**spec), tuple(meta["fingerprint"]), id_to_word, {w: i for i, w in enumerate(id_to_word)},
                _unragged(a["words"], a["word_offsets"]), _unragged(a["lens"], a["lens_offsets"]),
                a["counts"].tolist(),
                {(int(x), int(y)): int(c) for (x, y), c in zip(a["pairs"].tolist(), a["pair_counts"].tolist())},
                [(int(n), int(x), int(y), int(q), set(pos)) for (n, x, y, q), pos in zip(a["heap"].tolist(), heap_pos)],
                [((int(x), int(y)), int(n)) for x, y, n in a["merges"].tolist()], int(meta["seq"]), bool(meta["done"]))
    st._version = int(meta["version"])  # type: ignore[attr-defined]
    return st


def _check_arrays(a: dict[str, np.ndarray], n_sym: int) -> None:
    """A tampered state must fail here, not as an IndexError deep in the merge loop: offsets, ids, positions."""
    def ragged(flat: str, offsets: str) -> int:
        off = a[offsets]
        if off.ndim != 1 or len(off) == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] != len(a[flat]):
            raise ValueError(f"{offsets} do not cut {flat} into pieces")
        return len(off) - 1

    n_words = ragged("words", "word_offsets")
    n_lens = ragged("lens", "lens_offsets")  # empty unless a length cap is set
    if n_lens not in (0, n_words) or len(a["counts"]) != n_words:
        raise ValueError("words, lens and counts disagree in length")
    for name, arr in (("words", a["words"]), ("pairs", a["pairs"]), ("heap", a["heap"][:, 1:3]),
                      ("merges", a["merges"][:, :2])):
        if arr.size and (arr.min() < 0 or arr.max() >= n_sym):
            raise ValueError(f"{name} name a symbol outside 0..{n_sym - 1}")
    ragged("heap_pos", "heap_offsets")
    if len(a["heap_offsets"]) - 1 != len(a["heap"]) or len(a["pairs"]) != len(a["pair_counts"]):
        raise ValueError("heap or pair arrays disagree in length")
    if a["heap_pos"].size and (a["heap_pos"].min() < 0 or a["heap_pos"].max() >= n_words):
        raise ValueError(f"heap positions outside 0..{n_words - 1}")


def load_state(path: Path, spec: "BpeSpec", fingerprint: tuple[int, int]) -> "_State":
    """The state saved at ``path`` for this run (``spec`` and count ``fingerprint`` must match), or one error."""
    try:
        st = _read(path)
        version = st._version  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - a truncated, foreign or pickled file: never executed, always refused
        with open(path, "rb") as f:
            head = f.read(2)
        why = ("it is a Python pickle, which tokkit never loads (unpickling can run code)" if head[:1] == b"\x80"
               else f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'unreadable'}")
        raise BpeCheckpointError(f"{path} is not a tokkit merge checkpoint ({why}); delete it to start from "
                                 "the beginning") from None
    if version != _CKPT_VERSION or st.spec != spec or st.fingerprint != fingerprint:
        diffs = [f"{k}: expected {_short(getattr(spec, k))}, found {_short(getattr(st.spec, k))}"
                 for k in spec.__dataclass_fields__ if getattr(spec, k) != getattr(st.spec, k)]
        if st.fingerprint != fingerprint:
            diffs.append(f"counts: expected {fingerprint[0]} pre-tokens / {fingerprint[1]} occurrences, found "
                         f"{st.fingerprint[0]} / {st.fingerprint[1]}")
        raise BpeCheckpointError(f"{path} belongs to another training run ({'; '.join(diffs) or 'format version'}); "
                                 "delete it or train with the same counts and options")
    return st


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
