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

from tokkit.atomic import atomic_file, check_output
from tokkit.errors import FormatError
from tokkit.formats.fast_bpe import NotExactError, rank_parts

__all__ = ["ExportError", "tiktoken_parts", "to_tiktoken", "export_tiktoken", "count_differences"]


class ExportError(FormatError):
    """The tokenizer cannot be exported exactly."""


def tiktoken_parts(data: dict[str, Any]) -> tuple[str, dict[bytes, int], dict[str, int]]:
    """(pattern, mergeable ranks, special tokens) of a parsed byte-level BPE ``tokenizer.json``.

    The rank table and pattern come from :func:`tokkit.formats.fast_bpe.rank_parts` (the same code
    that runs HF byte-level BPEs on tiktoken's core); the export adds its own refusals.

    Raises:
        ExportError: when the result would not segment exactly like the HF tokenizer.
    """
    if data.get("normalizer"):
        raise ExportError(f"the tokenizer has a normalizer ({data['normalizer'].get('type')}); tiktoken has none, so "
                          "the export would not be exact. Train without nfkc/lowercase to export")
    try:
        parts = rank_parts(data, allow_nfc=False)
    except NotExactError as e:
        raise ExportError(str(e) + (". Train without domain tokens to export to tiktoken" if "domain tokens" in str(e) else "")) from None
    from tokkit.train.supertoken import R2_PATTERN

    if parts.pattern == R2_PATTERN:
        raise ExportError("two-stage supertoken merges are learnt over stage-1 tokens and tiktoken's rule (merge the pair "
                          "whose concatenation has the lowest rank) reorders them: 12,826 of 17,193 licence texts "
                          "segmented differently in our measurement. Use the tokenizer.json with HF tokenizers")
    if parts.plain_added:
        raise ExportError(f"non-special added tokens {sorted(parts.plain_added)[:3]} are always split out by HF; a tiktoken "
                          "file has no such tokens, so the export would not be exact")
    return parts.pattern, parts.ranks, parts.specials


def to_tiktoken(tok: Any, *, name: str = "tokkit") -> Any:
    """A ``tiktoken.Encoding`` equal to ``tok`` (a ``tokenizers.Tokenizer``) on every text."""
    import tiktoken

    pattern, ranks, specials = tiktoken_parts(json.loads(tok.to_str()))
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)


def count_differences(tok: Any, enc: Any, texts: Sequence[str]) -> int:
    """Texts that ``tok`` (HF) and ``enc`` (tiktoken) segment differently."""
    hf = [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=False)]
    return sum(a != b for a, b in zip(hf, enc.encode_ordinary_batch(list(texts))))


def _refuse_domain_tokens(manifest: Path) -> None:
    """A tokkit-trained folder with reserved domain tokens: say why tiktoken cannot hold it, and what to do."""
    import json

    if not manifest.is_file():
        return
    domain = json.loads(manifest.read_text(encoding="utf-8")).get("domain_tokens") or []
    if domain:
        raise ExportError(
            f"{manifest.parent} reserves {len(domain)} domain tokens (e.g. {domain[0]!r}): they are vocabulary entries "
            "that no merge produces, matched by a prefix of the pre-tokenizer pattern, and tiktoken builds every "
            "token by merges, so the export could not be exact. To export, train without domain tokens (the "
            "default recipe has none: tokkit train-bpe SOURCES --vocab-size N); or use the tokenizer.json with HF tokenizers")


def _check_ids(data: dict[str, Any], label: str) -> None:
    from tokkit.formats.hf_json import check_model_ids

    vocab = data["model"].get("vocab")
    model_ids = ({i: t for t, i in vocab.items()} if isinstance(vocab, dict)
                 else {i: item[0] for i, item in enumerate(vocab)} if isinstance(vocab, list) else {})
    check_model_ids(model_ids, data.get("added_tokens") or [], label)


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
    out = Path(out)
    meta = Path(str(out) + ".json")
    for o in (out, meta):  # both outputs, before any work: never an input (OUT.json beside a tokenizer.json ...)
        check_output(o, force=force, inputs=[tokenizer_json, p], kind="file")
    from tokkit.formats.hf_json import read_json

    _refuse_domain_tokens(p.parent / "tokkit_train.json")
    from tokkit.formats.hf_json_check import check_tokenizer_json

    data = read_json(p)
    check_tokenizer_json(data, str(p))  # a broken or hostile file: its defect named, ids bounded
    _check_ids(data, str(p))  # a model without tokens; an added token on an id the model gives away
    pattern, ranks, specials = tiktoken_parts(data)
    if verify:
        import tiktoken
        from tokenizers import Tokenizer

        enc = tiktoken.Encoding(name="verify", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
        diffs = count_differences(Tokenizer.from_file(str(p)), enc, verify)
        if diffs:
            raise ExportError(f"{diffs} of {len(verify)} verification texts segment differently in tiktoken; not exported")
    with atomic_file(out, force=force) as tmp, atomic_file(meta, force=force) as tmp_meta:
        with open(tmp, "w", encoding="ascii") as f:
            for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
                f.write(f"{base64.b64encode(tok).decode()} {rank}\n")
        tmp_meta.write_text(json.dumps({"pat_str": pattern, "special_tokens": specials}, indent=2, ensure_ascii=False),
                            encoding="utf-8")
    return out
