"""Name the defect of a broken ``tokenizer.json``: which entry, which id, which merge, which regex and where.

HF ``tokenizers`` reports a broken file with a serde position in (often minified) JSON; tokkit used to
say "is JSON but not a tokenizer.json" listing the very keys the file has. :func:`check_tokenizer_json`
walks the parsed file and raises one :class:`~tokkit.errors.FormatError` that says what is wrong and
where. It also bounds ids before anything is allocated (:mod:`tokkit.formats.bounds`). Torch-free.
"""

from __future__ import annotations

from typing import Any

from tokkit.errors import FormatError
from tokkit.formats.bounds import check_id

__all__ = ["check_tokenizer_json", "regex_defect"]

def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _what(v: Any) -> str:
    """``v`` shown with what kind of value it is (for a field that needed something else)."""
    if isinstance(v, bool):
        return f"{str(v).lower()} (a boolean)"
    if isinstance(v, int):
        return f"{v} (negative)"
    if isinstance(v, float):
        return f"{v} (a fraction)"
    if isinstance(v, str):
        return f"{v[:40]!r} (a string)"
    return "null" if v is None else f"a {type(v).__name__}"


def _patterns(node: Any, where: str) -> list[tuple[str, str]]:
    """(location, regex) of every ``{"Regex": ...}`` pattern inside a normalizer / pre-tokenizer tree."""
    out = []
    if isinstance(node, dict):
        pat = node.get("pattern")
        if isinstance(pat, dict) and isinstance(pat.get("Regex"), str):
            out.append((f"{where} ({node.get('type', '?')})", pat["Regex"]))
        for key in ("pretokenizers", "normalizers", "decoders"):
            for i, sub in enumerate(node.get(key) or []):
                out += _patterns(sub, f"{where}.{key}[{i}]")
    return out


def regex_defect(data: dict[str, Any], label: str) -> str | None:
    """The first pre-tokenizer/normalizer regex that does not compile, with the position of the error."""
    import regex

    for section in ("pre_tokenizer", "normalizer"):
        for where, pat in _patterns(data.get(section), section):
            try:
                regex.compile(pat)
            except regex.error as e:
                pos = getattr(e, "pos", None)
                at = f" at character {pos}: {pat[max(0, pos - 10):pos]!r} >>> {pat[pos:pos + 10]!r}" if pos is not None else ""
                return (f"{label}: the {where} regex {pat[:80]!r} does not compile ({e.msg if hasattr(e, 'msg') else e}"
                        f"{at}); fix the pattern")
    return None


def check_tokenizer_json(data: dict[str, Any], label: str, *, merges: bool = False) -> None:
    """Raise :class:`FormatError` naming the first structural defect of a parsed ``tokenizer.json``.

    ``merges``: also check every merge against the vocab (HF ``tokenizers`` checks them when it loads the
    file, so loaders call this on its failure; 0.5-1 s for Gemma's 515k merges).
    """
    model = data.get("model")
    if not isinstance(model, dict):
        keys = ", ".join(sorted(data)[:8]) or "none"
        raise FormatError(f"{label} is JSON but not a tokenizer.json: it has no 'model' object (its keys: {keys}); "
                          "expected version, model (type, vocab, merges), pre_tokenizer, decoder and added_tokens")
    mtype = model.get("type")
    vocab = model.get("vocab")
    ids: dict[int, str] = {}
    if mtype == "Unigram" or isinstance(vocab, list):
        if not isinstance(vocab, list):
            raise FormatError(f"{label}: the Unigram model.vocab is {_what(vocab)}; expected a list of [piece, score] pairs")
        for i, item in enumerate(vocab):
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
                raise FormatError(f"{label}: model.vocab[{i}] is {item!r:.60}; expected a [piece, score] pair")
            ids[i] = item[0]
    elif isinstance(vocab, dict):
        vals = list(vocab.values())
        clean = all(type(i) is int for i in vals) and (not vals or min(vals) >= 0) and len(set(vals)) == len(vals)
        if not clean:  # find and name the culprit (the fast path above costs ~20 ms on 262k entries)
            for tok, i in vocab.items():
                if not _is_id(i):
                    raise FormatError(f"{label}: model.vocab gives token {tok!r:.40} the id {_what(i)}; ids are whole "
                                      "numbers from 0: fix or remove that entry")
                if i in ids:
                    raise FormatError(f"{label}: model.vocab gives id {i} to two tokens, {ids[i]!r:.40} and "
                                      f"{tok!r:.40}; each id names one token")
                ids[i] = tok
        elif vals:
            top = max(vals)
            ids = {top: next(t for t, i in vocab.items() if i == top)}
    elif mtype is not None or vocab is not None:
        raise FormatError(f"{label}: model.vocab is {_what(vocab)}; expected an object token -> id "
                          "(BPE, WordPiece, WordLevel) or a list of [piece, score] pairs (Unigram)")
    added = data.get("added_tokens")
    if added is not None and not isinstance(added, list):
        raise FormatError(f"{label}: added_tokens is {_what(added)}; expected a list of objects with id and content")
    for k, a in enumerate(added or []):
        if not isinstance(a, dict):
            raise FormatError(f"{label}: added_tokens[{k}] is {_what(a)}; expected an object with id and content")
        content = a.get("content")
        if not isinstance(content, str):
            raise FormatError(f"{label}: added_tokens[{k}] has no text ('content' is {_what(content)}); "
                              "every added token needs its string")
        if "id" not in a:
            raise FormatError(f"{label}: added token {content!r:.40} (added_tokens[{k}]) has no id; give it the id "
                              "it has in the model")
        if not _is_id(a["id"]):
            raise FormatError(f"{label}: added token {content!r:.40} (added_tokens[{k}]) has the id {_what(a['id'])}; "
                              "ids are whole numbers from 0")
    entries = (len(vocab) if isinstance(vocab, (dict, list)) else 0) + len(added or [])
    if ids:
        top = max(ids)
        check_id(top, entries=entries, what=f"token {ids[top]!r:.40} of model.vocab", label=label)
    for k, a in enumerate(added or []):
        check_id(a["id"], entries=entries, what=f"added token {a['content']!r:.40} (added_tokens[{k}])", label=label)
    if merges and mtype == "BPE" and isinstance(vocab, dict):
        _check_merges(model, vocab, label)


def _check_merges(model: dict[str, Any], vocab: dict[str, int], label: str) -> None:
    merges = model.get("merges") or []
    if not isinstance(merges, list):
        raise FormatError(f"{label}: model.merges is {_what(merges)}; expected a list of merges")
    prefix = model.get("continuing_subword_prefix") or ""
    for k, m in enumerate(merges):
        if isinstance(m, str):
            parts = m.split(" ")
        elif isinstance(m, (list, tuple)):
            parts = list(m)
        else:
            parts = [m]
        if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise FormatError(f"{label}: model.merges[{k}] is {m!r:.60}; expected two tokens (\"a b\" or [\"a\", \"b\"])")
        a, b = parts
        for side in (a, b):
            if side not in vocab:
                raise FormatError(f"{label}: model.merges[{k}] ({a!r:.30} + {b!r:.30}) names {side!r:.40}, which is "
                                  "not a token of model.vocab; add it to the vocab or remove the merge")
        merged = a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)
        if merged not in vocab:
            raise FormatError(f"{label}: model.merges[{k}] ({a!r:.30} + {b!r:.30}) makes {merged!r:.40}, which is not a "
                              "token of model.vocab; add it to the vocab or remove the merge")
