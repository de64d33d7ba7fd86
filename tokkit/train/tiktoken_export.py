"""Exact export of a trained byte-level BPE to tiktoken (ranks file + pattern + special tokens).

tiktoken merges the adjacent pair whose *concatenation* has the lowest rank, and looks a whole
pre-token up first; HF BPE merges by pair rank and, with ``ignore_merges=True``, also looks whole
pre-tokens up first. With ranks = ids and ids in merge order (single bytes, then each merge result
in the order it was learnt) the two agree: ``../shared/reference/training.md`` §6 measured 0
differences on 4,770 documents, and ``tests/test_train_tiktoken.py`` checks it on real text.

Refused (a clear error, no file) when the export could not be exact: a normalizer (tiktoken has
none), a model that is not byte-level BPE, vocabulary entries that no merge produces (reserved
domain tokens: tiktoken would build them from pieces where HF does not), or two-stage supertokens
(measured: most texts differ). ``verify=texts`` re-checks on the user's text before writing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Sequence

from tokkit.atomic import atomic_file
from tokkit.errors import FormatError
from tokkit.formats.hf_json import unicode_to_bytes

__all__ = ["ExportError", "tiktoken_parts", "to_tiktoken", "export_tiktoken", "count_differences"]


class ExportError(FormatError):
    """The tokenizer cannot be exported exactly."""


def tiktoken_parts(data: dict[str, Any]) -> tuple[str, dict[bytes, int], dict[str, int]]:
    """(pattern, mergeable ranks, special tokens) of a parsed byte-level BPE ``tokenizer.json``.

    Raises:
        ExportError: when the result would not segment exactly like the HF tokenizer.
    """
    model = data.get("model", {})
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(data.get("pre_tokenizer")):
        raise ExportError("tiktoken export needs a byte-level BPE tokenizer (kind bpe or supertoken); found "
                          f"model {model.get('type')!r} with pre-tokenizer {json.dumps(data.get('pre_tokenizer'))[:80]}")
    if data.get("normalizer"):
        raise ExportError(f"the tokenizer has a normalizer ({data['normalizer'].get('type')}); tiktoken has none, so "
                          "the export would not be exact. Train without nfkc/lowercase to export")
    pre = data["pre_tokenizer"]
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    split = next((s for s in steps if s.get("type") == "Split"), None)
    if split is not None:
        pattern = split["pattern"]["Regex"]
    elif steps and steps[0].get("type") == "ByteLevel" and steps[0].get("use_regex", True):
        from tokkit.train.domain import GPT2_PATTERN

        pattern = GPT2_PATTERN
    else:
        raise ExportError("the tokenizer has no pre-tokenizer pattern (random-split supertokens); tiktoken needs one")
    from tokkit.train.supertoken import R2_PATTERN

    if pattern == R2_PATTERN:
        raise ExportError("two-stage supertoken merges are learnt over stage-1 tokens and tiktoken's rule (merge the pair "
                          "whose concatenation has the lowest rank) reorders them: 12,826 of 17,193 licence texts "
                          "segmented differently in our measurement. Use the tokenizer.json with HF tokenizers")
    table = unicode_to_bytes()
    specials = {a["content"]: a["id"] for a in data.get("added_tokens", []) if a.get("special")}
    vocab: dict[str, int] = model["vocab"]
    ranks: dict[bytes, int] = {}
    for tok, i in vocab.items():
        if tok in specials:
            continue
        ranks[bytes(table[c] for c in tok)] = i
    produced = {a + b for a, b in (m if isinstance(m, list) else m.split(" ", 1) for m in model.get("merges", []))}
    seen: set[int] = set()
    last = -1
    for a, b in (m if isinstance(m, list) else m.split(" ", 1) for m in model.get("merges", [])):
        i = vocab[a + b]
        if i in seen:
            continue
        if i < last:
            raise ExportError("vocabulary ids are not in merge order; the tiktoken ranks would reorder merges")
        seen.add(i)
        last = i
    orphans = [t for t in vocab if t not in specials and len(t) > 1 and t not in produced]
    if orphans:
        shown = ", ".join(repr(bytes(table[c] for c in t).decode("utf-8", "replace")) for t in orphans[:5])
        raise ExportError(f"{len(orphans)} vocabulary entries are not produced by any merge (reserved domain tokens: {shown}); "
                          "tiktoken would build them from pieces where HF does not, so the export would not be exact. "
                          "Train without domain tokens to export to tiktoken")
    return pattern, ranks, specials


def to_tiktoken(tok: Any, *, name: str = "tokkit") -> Any:
    """A ``tiktoken.Encoding`` equal to ``tok`` (a ``tokenizers.Tokenizer``) on every text."""
    import tiktoken

    pattern, ranks, specials = tiktoken_parts(json.loads(tok.to_str()))
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)


def count_differences(tok: Any, enc: Any, texts: Sequence[str]) -> int:
    """Texts that ``tok`` (HF) and ``enc`` (tiktoken) segment differently."""
    hf = [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=False)]
    return sum(a != b for a, b in zip(hf, enc.encode_ordinary_batch(list(texts))))


def export_tiktoken(tokenizer_json: str | Path, out: str | Path, *, force: bool = False,
                    verify: Sequence[str] = ()) -> Path:
    """Write ``out`` (``<base64 token> <rank>`` lines) and ``out + '.json'`` (pattern, special tokens).

    ``verify``: texts that must segment identically (ExportError and no file otherwise).

    Load it back with ``tiktoken.Encoding(name, pat_str=meta["pat_str"], mergeable_ranks=
    tiktoken.load.load_tiktoken_bpe(out), special_tokens=meta["special_tokens"])``.
    """
    p = Path(tokenizer_json)
    if p.is_dir():
        p = p / "tokenizer.json"
    from tokkit.formats.hf_json import read_json

    pattern, ranks, specials = tiktoken_parts(read_json(p))
    if verify:
        import tiktoken
        from tokenizers import Tokenizer

        enc = tiktoken.Encoding(name="verify", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
        diffs = count_differences(Tokenizer.from_file(str(p)), enc, verify)
        if diffs:
            raise ExportError(f"{diffs} of {len(verify)} verification texts segment differently in tiktoken; not exported")
    out = Path(out)
    meta = Path(str(out) + ".json")
    with atomic_file(out, force=force) as tmp, atomic_file(meta, force=force) as tmp_meta:
        with open(tmp, "w", encoding="ascii") as f:
            for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
                f.write(f"{base64.b64encode(tok).decode()} {rank}\n")
        tmp_meta.write_text(json.dumps({"pat_str": pattern, "special_tokens": specials}, indent=2, ensure_ascii=False),
                            encoding="utf-8")
    return out
