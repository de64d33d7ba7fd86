"""``extend_tokenizer``: an existing BPE tokenizer plus merges learnt on new text, checked and written.

Id layout: every existing id (ordinary *and* added/special) keeps its id; new tokens take the ids
after the last existing one (Llama 3: 128,256+, after the 256 added tokens; SmolLM2: 49,152+). HF
``tokenizers`` re-derives added-token ids on load and would renumber Llama 3's specials onto the new
ids (``../shared/reference/adapt.md`` §1.4), so every added token is also listed in ``model.vocab`` at
its own id; the result is reloaded and every added token's id is checked before anything is written.

Checks before writing (an :class:`ExtendError` and no output otherwise): the first ``n`` merges and
every old vocabulary entry are unchanged; every added token keeps its id after a reload; each
protected text (``keep_texts``) encodes to identical ids. The tokens-per-byte of the source sample
and of each protected text, before and after, go into the report.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from tokkit.formats.hf_json import unicode_to_bytes
from tokkit.tokenizer import Tokenizer, load_tokenizer
from tokkit.train.extend import ExtendSpec, NewToken, learn_merges, new_characters
from tokkit.train.extend_words import SP_SPACE, ExtendError, WordCutter
from tokkit.vocab import TextVocab

__all__ = ["Extension", "extend_tokenizer", "read_texts", "tiktoken_files", "twin_files", "write_extension", "extension_summary", "EXTEND_SAMPLE_BYTES", "TIKTOKEN_FILE"]

LOG = logging.getLogger(__name__)

#: Source bytes encoded before/after for the report's tokens-per-byte and the round-trip check.
EXTEND_SAMPLE_BYTES = 4 << 20
_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
#: The tiktoken twin written beside tokenizer.json for byte-level families (ranks; ``.json``: pattern + specials).
TIKTOKEN_FILE = "tokenizer.tiktoken"
#: The report of a tokenizer-only extension.
EXTEND_REPORT_FILE = "extend_report.json"


@dataclass(frozen=True)
class Extension:
    """An extended tokenizer, not yet written.

    Attributes:
        data: the new ``tokenizer.json`` content.
        vocab: its vocabulary (old tokens and specials, then the new tokens).
        old: the tokenizer that was extended.
        chars: new single-character pieces (SentencePiece layout with byte fallback), in id order.
        merges: new merge tokens, in id order (after ``chars``).
        report: JSON-able facts (counts, skipped candidates, tokens per byte before/after, time).
    """

    data: dict[str, Any]
    vocab: TextVocab
    old: Tokenizer
    chars: tuple[NewToken, ...]
    merges: tuple[NewToken, ...]
    report: dict[str, Any]

    #: documents encoded for the report and the tiktoken check (set by extend_tokenizer)
    sample: tuple[str, ...] = ()
    keep_texts: tuple[str, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def new_ids(self) -> list[int]:
        return [t.id for t in (*self.chars, *self.merges)]

    def hf(self) -> Any:
        """The extended tokenizer as a ``tokenizers.Tokenizer`` (built once)."""
        if "hf" not in self._cache:
            from tokenizers import Tokenizer as HF

            self._cache["hf"] = HF.from_str(json.dumps(self.data, ensure_ascii=False))
        return self._cache["hf"]


def read_texts(paths: Sequence[str | Path], *, what: str = "protected text") -> list[str]:
    """Protected texts: a plain text file whole (one text), a jsonl/parquet file document by document,
    through the corpus reader's UTF-8 policy (a non-UTF-8 file is refused with its offset). ``what`` names
    the paths in errors (the CLI passes its option, ``--keep-text``)."""
    from tokkit.text import read_text
    from tokkit.train.corpus import parse_sources, source_documents

    out: list[str] = []
    for s in parse_sources(paths, what=what):
        if Path(s.path).suffix.lower() in (".jsonl", ".ndjson", ".parquet"):
            out += list(source_documents(s))
            continue
        out.append(read_text(s.path, what=what, allow_empty=True))
    return out


def _too_few_merges(add: int, found: int, min_frequency: int, skipped: dict[str, int]) -> str:
    """What happened when the text gives fewer merges than ``--add`` asks, and the fixes that exist (``--add``
    is at least 1, so a text that gives none is fixed by the text or ``--min-frequency`` only)."""
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) or "none"
    seen = "at least once" if min_frequency == 1 else f"at least {min_frequency} times"
    fixes = ([f"ask for --add {found} or fewer"] if found else []) + \
        ([f"lower --min-frequency (now {min_frequency}; 1 takes a pair seen once)"] if min_frequency > 1 else []) + \
        ["give more text"]
    fix = fixes[0] if len(fixes) == 1 else f"{', '.join(fixes[:-1])} or {fixes[-1]}"
    if found == 0:
        return (f"--add {add}: the text gives no merge candidate: no new pair of adjacent tokens is seen {seen} "
                f"(candidates skipped: {why}), so there is nothing to add; {fix}")
    return (f"--add {add}: the text gives only {found} new merge{'s' if found > 1 else ''} seen {seen} (candidates "
            f"skipped: {why}); {fix}")


def _pair(m: Any) -> tuple[str, str]:
    if isinstance(m, str):
        a, b = m.split(" ", 1)
        return a, b
    return m[0], m[1]


def _token_bytes(s: str, byte_level: bool) -> bytes:
    if byte_level:
        table = unicode_to_bytes()
        return bytes(table[c] for c in s)
    return s.replace(SP_SPACE, " ").encode("utf-8")


def _tokens_per_byte(hf: Any, texts: Sequence[str]) -> float:
    n = sum(len(e.ids) for e in hf.encode_batch(list(texts), add_special_tokens=False))
    b = sum(len(t.encode("utf-8")) for t in texts)
    return n / b if b else 0.0


def _sample(docs: Iterable[str], limit: int) -> list[str]:
    out, size = [], 0
    for d in docs:
        if size >= limit:
            break
        out.append(d)
        size += len(d.encode("utf-8"))
    return out


def extend_tokenizer(tokenizer: str | Path | Tokenizer, sources: Sequence[str | Path] = (), *, add: int,
                     min_frequency: int = 2, keep_texts: Sequence[str] = (), counts: Sequence[str | Path] = (),
                     docs: Sequence[str] = (), progress: bool = False) -> Extension:
    """Learn ``add`` new merges on the text of ``sources`` (and ``docs``, and count tables ``counts``).

    Args:
        tokenizer: alias, file or loaded :class:`Tokenizer` (HF BPE, SentencePiece BPE, tiktoken ranks).
        sources: text/jsonl/parquet files, folders or globs (``PATH@RATE`` as for train-bpe).
        add: new merges to learn (new single-character pieces come on top, SentencePiece layout only).
        min_frequency: a pair (or a new character) must occur at least this often.
        keep_texts: protected texts whose ids must not change (candidates that would change them are skipped).
        counts: count tables (``tokkit count``) read as weighted text.
        docs: in-memory documents.

    Raises:
        ExtendError: a tokenizer that is not BPE, ``add < 1``, no text, or fewer possible merges than ``add``
            (the message says how many the text gives).
    """
    t0 = time.perf_counter()
    if add < 1:
        raise ExtendError(f"--add must be at least 1 (new merges to learn), found {add}")
    old = tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)
    old_hf = old.to_hf()
    data = json.loads(old_hf.to_str())
    model = data["model"]
    if model.get("type") != "BPE":
        raise ExtendError(f"{old.name} is a {model.get('type')} tokenizer; continued training appends BPE merges and "
                          "needs a BPE model. Train a new tokenizer (tokkit train-bpe) and move the model onto it "
                          "with tokkit transplant instead")
    if model.get("dropout"):
        raise ExtendError(f"{old.name} uses BPE dropout ({model['dropout']}); extension needs deterministic merges")
    sp = data.get("pre_tokenizer") is None and any(t.startswith(SP_SPACE) for t in model["vocab"])
    byte_level = "ByteLevel" in json.dumps(data.get("pre_tokenizer"))
    old_size = len(old.vocab)
    added = {a["content"]: a["id"] for a in data.get("added_tokens", [])}
    if max([*model["vocab"].values(), *added.values()], default=-1) + 1 != old_size:  # holes (cl100k) are fine
        raise ExtendError(f"{old.name}: its last id is not {old_size - 1}; cannot tell where new ids start")
    id_to_str = {i: s for s, i in model["vocab"].items()}
    fallback = {i for s, i in model["vocab"].items() if model.get("byte_fallback") and _BYTE_PIECE.match(s)}
    mergeable = set(id_to_str) - set(added.values()) - fallback
    ranks = {_pair(m): r for r, m in enumerate(model.get("merges", []))}
    n_old_merges = len(model.get("merges", []))

    def all_docs() -> Iterable[str]:
        yield from docs
        if sources:
            from tokkit.train.corpus import parse_sources, source_documents

            for s in parse_sources(sources):
                yield from source_documents(s)

    # 1. new characters (byte fallback: they were bytes before; the Chinese-LLaMA step)
    cutter = WordCutter(old_hf, sentencepiece=sp)
    chars: list[NewToken] = []
    if model.get("byte_fallback"):
        for k, (c, n) in enumerate(new_characters(cutter, all_docs(), known=set(model["vocab"]),
                                                  min_frequency=min_frequency, protected=keep_texts)):
            chars.append(NewToken(old_size + k, c, None, n))
            model["vocab"][c] = old_size + k
            id_to_str[old_size + k] = c
            mergeable.add(old_size + k)
        if chars:
            from tokenizers import Tokenizer as HF

            cutter = WordCutter(HF.from_str(json.dumps(data, ensure_ascii=False)), sentencepiece=sp)
    # 2. words of the new text and of the protected texts, in old ids
    words: Counter[tuple[int, ...]] = Counter()
    n_docs = n_bytes = 0
    for d in all_docs():
        n_docs += 1
        n_bytes += len(d.encode("utf-8"))
        cutter.add_text(d, words)
    if counts:
        from tokkit.train.count_table import read_table

        for path in counts:
            table = read_table(path)
            words.update(cutter.count_table(table.keys, (int(c) for c in table.counts)))
            n_bytes += sum(len(k) * int(c) for k, c in zip(table.keys, table.counts))
    if not words:
        where = ", ".join(map(str, [*sources, *counts][:3])) or "the in-memory documents"
        raise ExtendError(f"the source ({where}) holds no text to learn merges from; give non-empty UTF-8 text files "
                          "or count tables")
    prot_words: Counter[tuple[int, ...]] = Counter()
    prot_strings: Counter[str] = Counter()
    for t in keep_texts:
        cutter.add_text(t, prot_words, strings=prot_strings)
    prot_pairs = {p for w in prot_words for p in zip(w, w[1:])}
    whole_word_rule = bool(model.get("ignore_merges"))  # HF ignore_merges / tiktoken: a whole pre-token in the vocab wins
    # 3. merges
    learned = learn_merges(words, spec=ExtendSpec(add, min_frequency), id_to_str=id_to_str, next_id=old_size + len(chars),
                           mergeable=mergeable, ranks=ranks, sentencepiece=sp, protected_pairs=prot_pairs,
                           protected_strings=set(prot_strings) if whole_word_rule else set(), progress=progress)
    if len(learned.tokens) < add:
        raise ExtendError(_too_few_merges(add, len(learned.tokens), min_frequency, learned.skipped))
    # 4. the new tokenizer.json
    for tok in learned.tokens:
        model["vocab"][tok.text] = tok.id
        id_to_str[tok.id] = tok.text
    as_strings = bool(model.get("merges")) and isinstance(model["merges"][0], str)
    for tok in learned.tokens:
        a, b = id_to_str[tok.pair[0]], id_to_str[tok.pair[1]]  # type: ignore[index]
        model.setdefault("merges", []).append(f"{a} {b}" if as_strings else [a, b])
    for text, i in added.items():  # the reload trap: added tokens also live in model.vocab at their ids
        if model["vocab"].get(text, i) != i:
            raise ExtendError(f"{old.name}: added token {text!r} (id {i}) is also an ordinary token with id "
                              f"{model['vocab'][text]}; cannot keep both ids")
        model["vocab"][text] = i
    new_tokens = [*chars, *learned.tokens]
    vocab = replace(old.vocab, tokens=old.vocab.tokens + tuple(_token_bytes(t.text, byte_level) for t in new_tokens),
                    name=f"{old.name}+{len(new_tokens)}")
    sample = _sample(all_docs(), EXTEND_SAMPLE_BYTES)
    ext = Extension(data, vocab, old, tuple(chars), tuple(learned.tokens), {}, tuple(sample), tuple(keep_texts))
    # 5. checks and the report
    new_hf = ext.hf()
    moved = {t: (i, new_hf.token_to_id(t)) for t, i in added.items() if new_hf.token_to_id(t) != i}
    if moved:
        raise ExtendError(f"internal: added tokens renumbered on reload: {dict(list(moved.items())[:5])}")
    new_model = json.loads(new_hf.to_str())["model"]
    if [_pair(m) for m in new_model["merges"][:n_old_merges]] != [_pair(m) for m in json.loads(old_hf.to_str())["model"]["merges"]]:
        raise ExtendError("internal: the existing merges changed")
    changed = []
    protected = []
    for k, t in enumerate(keep_texts):
        a = old_hf.encode(t, add_special_tokens=False).ids
        b = new_hf.encode(t, add_special_tokens=False).ids
        if a != b:
            changed.append(k)
        protected.append({"bytes": len(t.encode("utf-8")), "tokens_per_byte_before": round(len(a) / max(len(t.encode()), 1), 5),
                          "tokens_per_byte_after": round(len(b) / max(len(t.encode()), 1), 5),
                          "ids_changed": sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))})
    if changed:
        raise ExtendError(f"internal: protected text(s) {changed} changed segmentation; please report this")
    top = sorted(learned.tokens, key=lambda t: -t.count)[:20]
    ext.report.update({
        "format": "tokkit-extend-report/1",
        "tokenizer": old.name, "layout": "sentencepiece" if sp else "byte_level" if byte_level else "pre_tokenized",
        "old_size": old_size, "new_size": len(vocab), "new_characters": len(chars), "merges_added": len(learned.tokens),
        "first_new_id": old_size, "min_frequency": min_frequency,
        "skipped_candidates": dict(sorted(learned.skipped.items())),
        "source": {"documents": n_docs, "bytes": n_bytes, "distinct_words": len(words), "count_tables": [str(c) for c in counts],
                   "sample_bytes": sum(len(d.encode("utf-8")) for d in sample),
                   "tokens_per_byte_before": round(_tokens_per_byte(old_hf, sample), 5),
                   "tokens_per_byte_after": round(_tokens_per_byte(new_hf, sample), 5)},
        "keep_texts": protected,
        "protected_ids_changed": sum(p["ids_changed"] for p in protected),
        "top_new_tokens": [{"id": t.id, "text": _token_bytes(t.text, byte_level).decode("utf-8", "backslashreplace"),
                            "count": t.count} for t in top],
        "new_characters_list": [{"id": t.id, "text": t.text, "count": t.count} for t in chars],
        "seconds": round(time.perf_counter() - t0, 2),
    })
    return ext


def tiktoken_files(ext: Extension) -> dict[str, str]:
    """``{TIKTOKEN_FILE: ranks, TIKTOKEN_FILE + ".json": pattern and specials}`` for a byte-level extension,
    checked to segment the source sample and the protected texts exactly as the tokenizer.json does.

    Raises:
        ExportError: the family has no exact tiktoken form (a normalizer, no pre-tokenizer pattern), or
            the check finds a difference.
    """
    import base64

    import tiktoken

    from tokkit.train.tiktoken_export import ExportError, count_differences, tiktoken_parts

    pattern, ranks, specials = tiktoken_parts(ext.data)
    enc = tiktoken.Encoding(name=ext.vocab.name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    texts = [*ext.sample, *ext.keep_texts]
    diffs = count_differences(ext.hf(), enc, texts)
    if diffs:
        raise ExportError(f"{diffs} of {len(texts)} texts segment differently in tiktoken")
    lines = "".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in sorted(ranks.items(), key=lambda kv: kv[1]))
    meta = json.dumps({"pat_str": pattern, "special_tokens": specials}, indent=2, ensure_ascii=False)
    return {TIKTOKEN_FILE: lines, TIKTOKEN_FILE + ".json": meta}


def twin_files(ext: Extension) -> dict[str, str]:
    """:func:`tiktoken_files`, or none (the reason in ``ext.report["tiktoken"]``) for a family tiktoken cannot run exactly."""
    try:
        return tiktoken_files(ext)
    except Exception as e:  # noqa: BLE001 - a normalizer (Qwen NFC), no pattern (SentencePiece): say why, write the rest
        LOG.info("no tiktoken twin: %s", e)
        ext.report["tiktoken"] = f"not written: {e}"
        return {}


def write_extension(ext: Extension, out_dir: str | Path, *, force: bool = False) -> Path:
    """A tokenizer-only extension: HF tokenizer folder, the tiktoken twin when exact, and ``extend_report.json``."""
    from tokkit.atomic import atomic_dir
    from tokkit.hf_folder import write_tokenizer_files

    files = twin_files(ext)
    with atomic_dir(out_dir, force=force) as tmp:
        write_tokenizer_files(ext.hf(), ext.vocab, tmp, chat_template=ext.old.chat_template)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / EXTEND_REPORT_FILE).write_text(json.dumps(ext.report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(out_dir)


def extension_summary(report: dict[str, Any]) -> list[str]:
    """Terminal lines for an extension report (tokenizer-only or with a model)."""
    e = report.get("extension", report)
    s = e["source"]
    chars = f", {e['new_characters']:,} new characters" if e["new_characters"] else ""
    lines = [f"extended {e['tokenizer']}: {e['old_size']:,} -> {e['new_size']:,} ids ({e['merges_added']:,} merges{chars}; "
             f"first new id {e['first_new_id']:,})",
             f"  source       {s['documents']:,} documents, {s['bytes'] / 1e6:.2f} MB: tokens/byte {s['tokens_per_byte_before']:.4f} -> "
             f"{s['tokens_per_byte_after']:.4f} ({100 * (s['tokens_per_byte_after'] / s['tokens_per_byte_before'] - 1):+.1f}%)"]
    for k, p in enumerate(e["keep_texts"]):
        lines.append(f"  keep-text {k + 1}  {p['bytes']:,} bytes: tokens/byte {p['tokens_per_byte_before']:.4f} -> "
                     f"{p['tokens_per_byte_after']:.4f}, ids changed {p['ids_changed']}")
    if e["skipped_candidates"]:
        lines.append("  skipped      " + ", ".join(f"{n:,} {why}" for why, n in e["skipped_candidates"].items()))
    lines.append("  top new      " + ", ".join(repr(t["text"]) for t in e["top_new_tokens"][:10]))
    return lines
