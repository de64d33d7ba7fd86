"""The fastest exact core for plain text: fastokens or quicktok, where its ids equal the reference's on the self-check.

Two native encoders on PyPI beat tiktoken's core on one text per call (``benchmarks/encode_speed.py``):

* **fastokens** (Apache-2.0; :mod:`tokkit.formats.fastokens_core`): reads the ``tokenizer.json`` itself
  or tiktoken ranks; about 2x quicktok on cl100k/o200k/qwen2 and 7-9x tiktoken's core on Llama 3 and
  SmolLM2, whose patterns quicktok gets wrong or has no scanner for. Preferred.
* **quicktok-v1** (MIT): hand-compiled scanners for the cl100k, o200k, Llama 3, Qwen and Tekken
  patterns; it is not exact everywhere (its Llama 3 encodes ``"ューション"`` as 2 tokens where HF and
  tiktoken give 5); :mod:`tokkit.formats.quicktok_core` writes the ranks in its format once under
  ``$TOKKIT_HOME/quicktok/<key>`` and keeps its self-check verdict beside them.

Either is used only behind the load-time self-check that guards tiktoken's core
(:data:`tokkit.formats.fast_bpe_check.SAMPLE`, which holds the cases where one was found to differ):
every id on the sample must equal the reference core's. Anything else (not installed, a pattern it
cannot build, a self-check difference, ``TOKKIT_FAST_CORE=0``) leaves the text on tiktoken's core.

Only the hot path uses them: text that holds no special or added token (``Tokenizer.encode`` and
``encode_ordinary``; lone surrogates fall back as on tiktoken's core). Batches stay on tiktoken's core,
whose calls release the GIL for :func:`tokkit.formats.batching.map_chunked`'s threads.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from tokkit.tokenizer import Tokenizer

__all__ = ["quick_mode", "hot_path", "native_call", "quick_for", "long_run_encoder", "AUTO_CHARS", "CORES"]

log = logging.getLogger(__name__)

#: ``TOKKIT_FAST_CORE=auto`` (the default) switches to the fast core once this many characters went
#: through ``encode``'s plain-text path: loading it takes seconds (fastokens 0.5-2 s, quicktok 2.5-7 s
#: for o200k), which a corpus loop earns back and a one-off call never should pay. ``1``: at the first
#: call; ``0``: never; ``fastokens`` / ``quicktok``: that core only, from the first call.
AUTO_CHARS = 8_000_000

#: The fast cores in the order they are tried (the first that builds and passes the self-check wins).
CORES = ("fastokens", "quicktok")


def quick_mode() -> str:
    """``0``, ``1``, ``auto``, ``fastokens`` or ``quicktok`` from ``TOKKIT_FAST_CORE`` (module docstring);
    ``TOKKIT_QUICKTOK``, its name before fastokens joined, is read when it is unset."""
    v = os.environ.get("TOKKIT_FAST_CORE", os.environ.get("TOKKIT_QUICKTOK", "auto")).lower()
    if v in CORES:
        return v
    return "0" if v in ("0", "false", "no") else "1" if v in ("1", "true", "yes") else "auto"


def _wanted(core: str) -> bool:
    mode = quick_mode()
    return mode != "0" and (mode not in CORES or mode == core)


def _checked(encoder: Callable[[str], list[int]] | None, reference: Callable[[str], list[int]], core: str,
             name: str, may_refuse: tuple[str, ...] = (), sample: tuple[str, ...] | None = None
             ) -> Callable[[str], list[int]] | None:
    """``encoder`` if its ids equal ``reference``'s on every self-check text (``sample``, by default
    :data:`tokkit.formats.fast_bpe_check.SAMPLE`; a raise counts as a difference) and, on each of
    ``may_refuse``, equal them or raise ``ValueError`` (``encode`` then takes the long way, as for
    lone surrogates)."""
    if encoder is None:
        return None
    texts = _sample() if sample is None else sample

    bad = []
    for t in texts + may_refuse:
        try:
            same = encoder(t) == reference(t)
        except ValueError:
            same = t in may_refuse
        except Exception:  # noqa: BLE001 - any failure of a candidate core only means "not this core"
            same = False
        if not same:
            bad.append(t)
    if bad:
        log.info("%s: plain text not on %s: self-check: %d of %d sample texts differ (first %r)",
                 name, core, len(bad), len(texts) + len(may_refuse), bad[0][:40])
        return None
    return encoder


def _fastokens_for(tok: "Tokenizer") -> Callable[[str], list[int]] | None:
    """fastokens for a loaded tokenizer: from its ``tokenizer.json`` (HF files: the same normalizer and
    pre-tokenizer), or from its tiktoken ranks (no normalizer to apply), behind the self-check."""
    from tokkit.formats import fastokens_core as fk

    if not _wanted("fastokens") or not fk.fastokens_available():
        return None
    fast, n = tok._fast, tok.native
    if fast is not None:
        if tok.backend == "hf":  # HF's semantics, phantom bytes included: fastokens refuses a byte no token spells
            enc = fk.fastokens_from_file(tok._src.path)
            return _checked(enc, fast.ordinary, "fastokens", tok.name, _phantom_texts(tok) if fast._phantom else ())
        if fast._phantom or fast.parts.nfc:
            return None
        enc = fk.fastokens_from_ranks(ranks=fast.parts.ranks, pattern=fast.parts.pattern)
        return _checked(enc, fast.ordinary, "fastokens", tok.name)
    if tok.backend in ("tiktoken", "tiktoken_file", "tekken"):
        enc = _gpt2_bytelevel(tok) if fk.RESPELL.get(n._pat_str) == fk.GPT2_HF else None
        if enc is None:
            enc = fk.fastokens_from_ranks(ranks=n._mergeable_ranks, pattern=n._pat_str)
        return _checked(enc, n.encode_ordinary, "fastokens", tok.name)
    if tok.backend == "hf":  # not byte-level: checked on the sample texts the hot path can hand it
        starts = _hf_added_starts(tok) | set(tok._policy.starts)
        sample = tuple(t for t in SAMPLE_HF_EXTRA + _sample() if not any(c in t for c in starts))
        return _checked(fk.fastokens_from_file(tok._src.path), lambda t: n.encode(t, add_special_tokens=False).ids,
                        "fastokens", tok.name, sample=sample)
    return None


#: Texts for the self-check of a non-byte-level file (SentencePiece-style BPE: the prefix space, byte
#: fallback for characters outside the vocabulary, runs of spaces, digits) beside the shared sample.
SAMPLE_HF_EXTRA = ("  two leading spaces", "tab\there", "x" * 300, "\U0001f9ec\U0001fae0 \u2603 \U00010348", "1234567890 3.14",
                   "\u00e9\u0301 \ufb01", "trailing   ", "\n\n\nnewlines\n", "\u200b\u200d\ufeff")


def _sample() -> tuple[str, ...]:
    from tokkit.formats.fast_bpe_check import SAMPLE

    return SAMPLE


def _hf_added_starts(tok: "Tokenizer") -> set[str]:
    """First characters of every added token of an HF file (special or not: HF matches both in text)."""
    return {t.content[0] for t in tok.native.get_added_tokens_decoder().values() if t.content}


def _gpt2_bytelevel(tok: "Tokenizer") -> Callable[[str], list[int]] | None:
    """fastokens for a GPT-2-grammar tiktoken encoding, through the HF ``tokenizer.json`` of
    ``Tokenizer.to_hf`` with the ByteLevel pre-tokenizer's built-in regex (the same grammar; fastokens'
    fast scanner takes only that form) and no added tokens (plain text only)."""
    from tokkit.formats.fastokens_core import fastokens_from_json

    try:
        j = json.loads(tok.to_hf().to_str())
    except Exception as e:  # noqa: BLE001 - no HF form: the rank-file route instead
        log.info("%s: no HF form for fastokens' ByteLevel route (%s)", tok.name, e)
        return None
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    j["added_tokens"] = []
    return fastokens_from_json(json.dumps(j))


def _phantom_texts(tok: "Tokenizer") -> tuple[str, ...]:
    """Texts holding each byte no token spells (that str can hold: ASCII, or a UTF-8 lead byte's character)."""
    out = []
    for b in sorted(tok.vocab.unencodable_bytes()):
        ch = chr(b) if b < 0x80 else {0xC2: "\u0080", 0xC3: "\u00c0", 0xE0: "\u0800", 0xEF: "\uffff", 0xF0: "\U00010000",
                                       0xF1: "\U00040000", 0xF2: "\U00080000", 0xF3: "\U000c0000", 0xF4: "\U00100000"}.get(b)
        if ch is not None:
            out += [f"a{ch}b", f" {ch}{ch}\n{ch}", f"word {ch}"]
    return tuple(out)


def _quicktok_for(tok: "Tokenizer") -> Callable[[str], list[int]] | None:
    """:func:`tokkit.formats.quicktok_core.quick_core` for a loaded tokenizer: its tiktoken ranks, or
    FastBPE's for an HF file."""
    from tokkit.formats.quicktok_core import quick_core

    if not _wanted("quicktok"):
        return None
    fast, n = tok._fast, tok.native
    if fast is not None:
        p = fast.parts
        return None if fast._phantom else quick_core(ranks=p.ranks, pattern=p.pattern, nfc=p.nfc, reference=fast.ordinary, name=tok.name)
    if tok.backend in ("tiktoken", "tiktoken_file", "tekken"):
        return quick_core(ranks=n._mergeable_ranks, pattern=n._pat_str, nfc=False, reference=n.encode_ordinary, name=tok.name)
    return None


def quick_for(tok: "Tokenizer") -> tuple[str, Callable[[str], list[int]]] | None:
    """``(core name, plain-text encoder)``: the first of :data:`CORES` that builds for this tokenizer and
    passes the self-check, or None (tiktoken's core stays)."""
    for core, build in (("fastokens", _fastokens_for), ("quicktok", _quicktok_for)):
        enc = build(tok)
        if enc is not None:
            log.info("%s: plain text on %s", tok.name, core)
            return core, enc
    return None


def _possible(tok: "Tokenizer", ranks: Mapping[bytes, int], pattern: str) -> bool:
    """A fast core may exist (no load, no check): quicktok has a scanner, or fastokens is installed."""
    from tokkit.formats.fastokens_core import fastokens_available
    from tokkit.formats.quicktok_core import quick_possible

    if _wanted("quicktok") and quick_possible(ranks=ranks, pattern=pattern):
        return True
    return (bool(ranks) or tok.backend == "hf") and _wanted("fastokens") and fastokens_available()


def hot_path(tok: "Tokenizer") -> tuple[str | tuple[str, ...], Callable[[str], list[int]], Callable[[str], object]] | None:
    """``(first characters of every special and added token, plain-text encoder, its native call)`` for
    ``encode``'s fast path: tiktoken's Rust core, which the fast core (:func:`quick_for`) replaces once it
    pays (:data:`AUTO_CHARS`). The native call is the encoder without its Python wrapper where it has one
    (fastokens: it returns an Encoding, whose ``.ids`` ``encode`` takes itself: one Python frame less per
    call). All raise on lone surrogates (UnicodeEncodeError; quicktok: TypeError): ``encode`` then takes
    the long way."""
    fast, n = tok._fast, tok.native
    if fast is not None:
        starts, plain, pattern = set(fast.starts), fast.plain_encoder, fast.parts.pattern
        ranks = fast.parts.ranks if not fast._phantom else {}
    elif tok.backend in ("tiktoken", "tiktoken_file", "tekken"):
        from tokkit.formats.fast_bpe import core_ordinary

        starts, plain, ranks, pattern = {t[0] for t in n.special_tokens_set if t}, core_ordinary(n), n._mergeable_ranks, n._pat_str
    elif tok.backend == "hf" and _wanted("fastokens"):  # not byte-level (Llama 2, Gemma): HF itself, or fastokens
        starts, ranks, pattern = _hf_added_starts(tok), {}, ""

        def plain(text: str) -> list[int]:  # what the long way gives text without added tokens
            return n.encode(text, add_special_tokens=False).ids
    else:
        return None
    chars = tuple(sorted(starts | set(tok._policy.starts)))
    first: str | tuple[str, ...] = chars[0] if len(chars) == 1 else chars  # one character: one `in` per call
    if not _possible(tok, ranks, pattern):
        return first, plain, plain

    def quick() -> Callable[[str], list[int]]:
        q = tok._quick
        return plain if q is None else q[1]

    if quick_mode() != "auto":
        q = quick()
        return first, q, native_call(q)
    left = [AUTO_CHARS]

    def counting(text: str) -> list[int]:  # tiktoken's core until AUTO_CHARS characters went through
        left[0] -= len(text)
        if left[0] < 0:
            q = quick()
            tok.__dict__["_hot"] = (first, q, native_call(q))
        return plain(text)

    return first, counting, counting


def native_call(encoder: Callable[[str], list[int]]) -> Callable[[str], object]:
    """The native call under ``encoder`` (fastokens' ``encode_ordinary``, whose result's ``.ids`` are the
    ids: :func:`tokkit.formats.fastokens_core.native_of`), else ``encoder`` itself (it returns the list)."""
    from tokkit.formats.fastokens_core import native_of

    return native_of(encoder) or encoder


def long_run_encoder(tok: "Tokenizer") -> Callable[[str], list[int]] | None:
    """fastokens on a tiktoken encoding's ranks for text tiktoken's core cannot take
    (:mod:`tokkit.formats.long_runs`), built once per tokenizer and self-checked; None without fastokens.
    ``TOKKIT_FAST_CORE`` does not apply: this is the only encoder for such text, not a faster one."""
    if "_long_safe" not in tok.__dict__:
        quick = tok.__dict__.get("_quick")
        if quick is not None and quick[0] == "fastokens":
            enc = quick[1]
        else:
            from tokkit.formats import fastokens_core as fk

            n = tok.native
            enc = _checked(fk.fastokens_from_ranks(ranks=n._mergeable_ranks, pattern=n._pat_str, allow_offset=True), n.encode_ordinary,
                           "fastokens", tok.name)
        tok.__dict__["_long_safe"] = enc
    return tok.__dict__["_long_safe"]
