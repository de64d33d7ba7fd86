"""Assemble a final ``tokenizer.json`` from a trained BPE model: id order, truncation, reserved padding.

Stock HF ``tokenizers`` trains the merges; this module only re-lays the result out so that

* special tokens take ids ``0..S-1`` and reserved domain tokens the next ids (reserved before the
  trained tokens, so the id of ``§`` does not depend on the corpus);
* the vocabulary is cut to exactly the asked size by dropping the *last* merges (a valid BPE: no
  earlier merge depends on a later one);
* padding adds special ``<|reserved_N|>`` tokens (never runs of spaces; KL3M pitfall 3) up to a
  multiple or the next power of two (not doubling a size that already is one);
* padding, truncation and left-padding are never left enabled in the output (KL3M pitfall 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

__all__ = ["Layout", "relayout", "padded_size", "added_token"]


def added_token(tid: int, content: str, *, special: bool) -> dict[str, Any]:
    return {"id": tid, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": not special, "special": special}


def padded_size(size: int, pad_to: int | Literal["pow2"] | None) -> int:
    """The smallest size >= ``size`` that is a multiple of ``pad_to`` (or a power of two)."""
    if pad_to is None:
        return size
    if pad_to == "pow2":
        p = 1
        while p < size:
            p *= 2
        return p
    return -(-size // pad_to) * pad_to


@dataclass(frozen=True)
class Layout:
    """What :func:`relayout` did: sizes for the summary."""

    trained: int  # model tokens before truncation (specials and alphabet included)
    reached: int  # size before padding
    final: int  # size after padding
    reserved: int  # number of reserved padding ids
    dropped_merges: int


def _merge_pair(m: Any) -> tuple[str, str]:
    if isinstance(m, str):  # old "a b" format
        a, b = m.split(" ", 1)
        return a, b
    return m[0], m[1]


def relayout(data: dict[str, Any], *, specials: Sequence[str], reserved_entries: Sequence[str],
             vocab_size: int, pad_to: int | Literal["pow2"] | None, head_entries: Sequence[str] = ()) -> Layout:
    """Rewrite ``data`` (a parsed ``tokenizer.json`` of a trained BPE) in place.

    Args:
        data: the trained tokenizer's JSON; ``model.vocab`` / ``model.merges`` are replaced.
        specials: special tokens, ids ``0..S-1`` (must already be in the vocab).
        reserved_entries: vocabulary strings (model spelling) placed right after ``head_entries``.
        vocab_size: the size to cut the vocabulary to (before padding).
        pad_to: padding rule (see :func:`padded_size`).
        head_entries: model strings placed right after the specials (byte-fallback tokens).
    """
    model = data["model"]
    old: dict[str, int] = model["vocab"]
    ordered = [t for t, _ in sorted(old.items(), key=lambda kv: kv[1])]
    front = list(dict.fromkeys([*specials, *head_entries, *reserved_entries]))
    in_front = set(front)
    rest = [t for t in ordered if t not in in_front]
    keep = front + rest[: max(0, vocab_size - len(front))]
    vocab = {t: i for i, t in enumerate(keep)}
    merges = []
    dropped = 0
    for m in model["merges"]:
        a, b = _merge_pair(m)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append([a, b])
        else:
            dropped += 1
    model["vocab"] = vocab
    model["merges"] = merges
    size = len(vocab)
    final = padded_size(size, pad_to)
    added = [added_token(vocab[s], s, special=True) for s in specials]
    for k in range(final - size):
        added.append(added_token(size + k, f"<|reserved_{k}|>", special=True))
    data["added_tokens"] = added
    data["padding"] = None
    data["truncation"] = None
    return Layout(trained=len(ordered), reached=size, final=final, reserved=final - size, dropped_merges=dropped)
