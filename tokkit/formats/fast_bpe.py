"""tiktoken's encoder for every HF byte-level BPE ``tokenizer.json`` it can run exactly.

Llama 3, Qwen2/3, SmolLM2, GPT-2-style files and tokkit's own trained byte-level BPEs are the same
kind of tokenizer as the OpenAI encodings: a regex pre-tokenizer, then byte-pair merges. tiktoken's
core (Rust, no per-token Python) merges the adjacent pair whose *concatenation* has the lowest rank
and looks a whole pre-token up first; HF merges by *pair* rank. With ranks = ids and ids in merge
order the two agree (``../shared/reference/training.md`` §6: 0 differences on 4,770 documents).

:func:`rank_parts` builds (pattern, ranks, added tokens) from the parsed JSON and refuses, with the
reason, whatever it cannot map exactly: a model that is not byte-level BPE, ids out of merge order,
vocabulary entries no merge produces, a pre-tokenizer or normalizer tiktoken cannot reproduce, added
tokens with strip/single-word rules, and (``ignore_merges=False``) tokens that BPE never rebuilds
from their own bytes (tiktoken would return them whole). :mod:`tokkit.formats.fast_bpe_check` then
compares the encoder with HF's on a fixed multilingual sample at load and falls back to HF on any
difference.

The normalizer may be NFC (Qwen): texts that are not NFC already are normalized in Python first
(per segment between added tokens, as HF does). ``tokkit.train.tiktoken_export`` reuses
:func:`rank_parts` for its exact ``.tiktoken`` export.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import AbstractSet, Any, Sequence

from tokkit.errors import FormatError
from tokkit.formats.batching import map_chunked

__all__ = ["NotExactError", "RankParts", "rank_parts", "FastBPE", "GPT2_PATTERN", "core_ordinary"]

#: HF ``ByteLevel(use_regex=True)``'s pattern (GPT-2's, without tiktoken's possessive quantifiers).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class NotExactError(FormatError):
    """tiktoken's core would not segment exactly like the HF tokenizer."""


@dataclass(frozen=True)
class RankParts:
    """What tiktoken needs: pattern, ``{token bytes: id}``, added tokens ``{text: id}``."""

    pattern: str
    ranks: dict[bytes, int]
    specials: dict[str, int]       # special added tokens
    plain_added: dict[str, int]    # non-special added tokens: HF always splits them out
    nfc: bool


def _byte_translation() -> dict[int, str]:
    from tokkit.formats.hf_json import unicode_to_bytes

    return {ord(u): chr(b) for u, b in unicode_to_bytes().items()}


def _pattern(data: dict[str, Any]) -> str:
    """The single regex that reproduces the pre-tokenizer (NotExactError when none does)."""
    pre = data.get("pre_tokenizer")
    if not pre:
        raise NotExactError("the tokenizer has no pre-tokenizer pattern (random-split supertokens); tiktoken needs one")
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    last = steps[-1]
    if kinds[-1] != "ByteLevel" or last.get("add_prefix_space"):
        raise NotExactError(f"pre-tokenizer {kinds} does not end in ByteLevel without add_prefix_space")
    if kinds == ["Split", "ByteLevel"] and not last.get("use_regex", True):
        split = steps[0]
        if split.get("behavior") != "Isolated" or split.get("invert") or "Regex" not in split.get("pattern", {}):
            raise NotExactError(f"Split pre-tokenizer {json.dumps(split)[:120]} is not an isolated regex split")
        return split["pattern"]["Regex"]
    if kinds == ["ByteLevel"] and last.get("use_regex", True):
        return GPT2_PATTERN
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and last.get("use_regex", True):
        # Digits isolates every \p{N}; GPT-2's regex then runs between them, where the end of a piece
        # before a digit acts as the end of the text for `\s+(?!\S)`.
        return r"""\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
    raise NotExactError(f"pre-tokenizer sequence {kinds} has no tiktoken equivalent")


def _normalizer(data: dict[str, Any]) -> bool:
    norm = data.get("normalizer")
    if not norm:
        return False
    if norm.get("type") == "NFC":
        return True
    raise NotExactError(f"normalizer {norm.get('type')} has no tiktoken equivalent (only NFC is mapped)")


def rank_parts(data: dict[str, Any], *, allow_nfc: bool = True) -> RankParts:
    """The tiktoken parts of a parsed byte-level BPE ``tokenizer.json``.

    Raises:
        NotExactError: when tiktoken would not segment exactly like HF (the message says why).
    """
    model = data.get("model", {})
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(data.get("pre_tokenizer")):
        raise NotExactError("tiktoken needs a byte-level BPE tokenizer; found "
                            f"model {model.get('type')!r} with pre-tokenizer {json.dumps(data.get('pre_tokenizer'))[:80]}")
    if model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise NotExactError("BPE dropout or subword prefixes/suffixes have no tiktoken equivalent")
    nfc = _normalizer(data)
    if nfc and not allow_nfc:
        raise NotExactError("the tokenizer has a normalizer (NFC); tiktoken has none")
    pattern = _pattern(data)
    added = data.get("added_tokens") or []
    for a in added:
        if a.get("lstrip") or a.get("rstrip") or a.get("single_word"):
            raise NotExactError(f"added token {a['content']!r} strips spaces or matches single words; tiktoken cannot")
    contents = sorted(a["content"] for a in added)
    for x, y in zip(contents, contents[1:]):
        if y.startswith(x):  # tiktoken's alternation is leftmost-first, HF's longest-first
            raise NotExactError(f"added token {x!r} is a prefix of {y!r}")
    if nfc and any(unicodedata.normalize("NFC", c) != c for c in contents):
        raise NotExactError("an added token changes under NFC")
    specials = {a["content"]: a["id"] for a in added if a.get("special")}
    plain = {a["content"]: a["id"] for a in added if not a.get("special")}
    vocab: dict[str, int] = model["vocab"]
    trans = _byte_translation()
    ranks: dict[bytes, int] = {}
    for tok, i in vocab.items():
        if tok in specials or tok in plain:
            continue
        try:
            ranks[tok.translate(trans).encode("latin-1")] = i
        except UnicodeEncodeError:
            raise NotExactError(f"vocabulary entry {tok!r} is not byte-level spelled") from None
    if len(set(ranks.values())) != len(ranks):
        raise NotExactError("several vocabulary entries share an id")
    produced: set[str] = set()
    last = -1
    for m in model.get("merges", []):
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        i = vocab.get(a + b)
        if i is None:
            raise NotExactError(f"merge {a!r} + {b!r} produces no vocabulary entry")
        if i < last:
            raise NotExactError("vocabulary ids are not in merge order; the tiktoken ranks would reorder merges")
        last = i
        produced.add(a + b)
    orphans = [t for t in vocab if t not in specials and t not in plain and len(t) > 1 and t not in produced]
    if orphans:
        table = _byte_translation()
        shown = ", ".join(repr(t.translate(table).encode("latin-1").decode("utf-8", "replace")) for t in orphans[:5])
        raise NotExactError(f"{len(orphans)} vocabulary entries are not produced by any merge (reserved domain tokens: "
                            f"{shown}); tiktoken would build them from pieces where HF does not")
    return RankParts(pattern, ranks, specials, plain, nfc)


def _unrebuilt(hf: Any, data: dict[str, Any]) -> list[str]:
    """Tokens that HF's BPE (``ignore_merges=False``) does not rebuild from their own bytes.

    One call: the byte-level spellings never contain a real space, so they are joined by spaces and
    encoded by the bare model behind a whitespace split (a Python object per token would cost seconds).
    """
    from tokenizers import Tokenizer, pre_tokenizers

    model_only = Tokenizer(hf.model)
    model_only.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    added = {a["content"] for a in data.get("added_tokens") or []}
    strings = [t for t in data["model"]["vocab"] if len(t) > 1 and t not in added and not any(c.isspace() for c in t)]
    words = model_only.encode(" ".join(strings), add_special_tokens=False).word_ids
    if len(words) == len(strings):
        return []
    counts = [0] * len(strings)
    for w in words:
        counts[w] += 1
    return [s for s, c in zip(strings, counts) if c != 1]


def _affixes(post: dict[str, Any] | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Ids a post-processor puts before/after one sequence (None: not a shape we map)."""
    if not post or post.get("type") in ("ByteLevel",):
        return (), ()
    if post.get("type") == "Sequence":
        pre: tuple[int, ...] = ()
        suf: tuple[int, ...] = ()
        for p in post.get("processors", []):
            r = _affixes(p)
            if r is None:
                return None
            pre, suf = pre + r[0], r[1] + suf
        return pre, suf
    if post.get("type") == "TemplateProcessing":
        pre_l: list[int] = []
        suf_l: list[int] = []
        seen_a = False
        for item in post.get("single", []):
            if "Sequence" in item:
                seen_a = True
                continue
            name = item["SpecialToken"]["id"]
            ids = post["special_tokens"][name]["ids"]
            (suf_l if seen_a else pre_l).extend(ids)
        return tuple(pre_l), tuple(suf_l)
    return None


def core_ordinary(encoding: Any) -> Any:
    """tiktoken's Rust ``encode_ordinary`` of ``encoding`` (it raises ``UnicodeEncodeError`` on lone
    surrogates, which the public wrapper replaces), or that wrapper where the core is not reachable."""
    core = getattr(encoding, "_core_bpe", None)
    return core.encode_ordinary if core is not None else encoding.encode_ordinary


class FastBPE:
    """tiktoken's core with HF's added tokens, NFC and post-processor affixes."""

    def __init__(self, parts: RankParts, *, name: str, affixes: tuple[tuple[int, ...], tuple[int, ...]] | None,
                 hf: Any = None) -> None:
        import tiktoken

        self.parts = parts
        self._hf = hf
        self.affixes = affixes
        added = {**parts.specials, **parts.plain_added}
        # A byte that is no token (SmolLM2 lacks 0xF2 and six controls): HF drops it, tiktoken cannot
        # encode it. Such bytes get phantom ranks above every id; no token contains them (no merge can
        # build one), so nothing else changes, and a text whose ids reach a phantom goes to HF.
        ranks = dict(parts.ranks)
        self._real = max([*ranks.values(), *added.values()]) + 1
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in ranks]
        if missing and hf is None:
            raise NotExactError(f"{len(missing)} bytes are no token and no HF tokenizer was given to encode texts holding them")
        self._phantom = bool(missing)
        self._phantom_ascii = tuple(chr(b[0]) for b in missing if b[0] < 0x80)  # ASCII text: only these can reach a phantom
        for k, b in enumerate(missing):
            ranks[b] = self._real + k
        self.encoding = tiktoken.Encoding(name=f"tokkit-fast-{name}", pat_str=parts.pattern,
                                          mergeable_ranks=ranks, special_tokens=added)
        self._plain = frozenset(parts.plain_added)
        self._all = frozenset(added)
        self._added_re = re.compile("|".join(map(re.escape, sorted(added, key=len, reverse=True)))) if added else None
        # First characters of the added tokens (``<`` for every alias): a text holding none of them
        # cannot contain one, so it takes tiktoken's ``encode_ordinary`` (no special-token scan).
        self.starts = tuple(sorted({t[0] for t in added}))
        self._core = getattr(self.encoding, "_core_bpe", None)  # None: the public call (AttributeError path)
        # tiktoken keeps 128 regex copies picked by thread id, and each copy's match cache is owned by
        # the first thread that uses it (others take a locked pool): encode once here so the loading
        # thread, which usually encodes one text at a time, owns its copy before batch workers do.
        self.encoding.encode_ordinary("warm up")

    def _may_phantom(self, text: str, ids: list[int]) -> bool:
        """``ids`` hold a phantom rank (a byte no token spells); ASCII text is decided by its characters."""
        if text.isascii():
            for c in self._phantom_ascii:  # a plain loop: a generator costs more than these C-level scans
                if c in text:
                    return True
            return False
        return bool(ids) and max(ids) >= self._real

    def _plain_free(self, text: str) -> bool:
        """No plain added token can occur in ``text`` (a C-level ``in`` per distinct first character)."""
        for c in self.starts:
            if c in text:
                return False
        return True

    def _normalize(self, text: str) -> str:
        if text.isascii() or unicodedata.is_normalized("NFC", text):  # isascii: O(1) on CPython's compact strings
            return text
        if self._added_re is None or not self._added_re.search(text):
            return unicodedata.normalize("NFC", text)
        out, pos = [], 0  # HF normalizes the pieces between added tokens, not across them
        for m in self._added_re.finditer(text):
            out += [unicodedata.normalize("NFC", text[pos:m.start()]), m.group()]
            pos = m.end()
        out.append(unicodedata.normalize("NFC", text[pos:]))
        return "".join(out)

    def encode(self, text: str, *, with_special: bool = False, add_special_tokens: bool = False,
               allowed: AbstractSet[str] | None = None) -> list[int]:
        """Ids of ``text``. ``allowed``: the added-token strings to encode as tokens (the others are
        text); None: all of them if ``with_special`` (the text holds allowed special strings), else
        the non-special ones (HF matches those always)."""
        if self.parts.nfc:
            text = self._normalize(text)
        ids = self._one(text, self._allowed(with_special, allowed))
        if self._phantom and self._may_phantom(text, ids):
            return self._hf.encode(text, add_special_tokens=add_special_tokens).ids
        return self._affix(ids) if add_special_tokens else ids

    def _allowed(self, with_special: bool, allowed: AbstractSet[str] | None) -> AbstractSet[str]:
        return allowed if allowed is not None else self._all if with_special else self._plain

    def _one(self, text: str, allowed: AbstractSet[str]) -> list[int]:
        """tiktoken's ids of a normalized ``text`` (no phantom check, no affixes)."""
        if allowed and not self._plain_free(text):
            return self.encoding.encode(text, allowed_special=allowed, disallowed_special=())
        return self._core_ordinary(text)

    @property
    def plain_encoder(self) -> Any:
        """The fastest exact ``text -> ids`` for text without added tokens: the Rust core itself when
        nothing is left for Python (no NFC, no phantom bytes; lone surrogates raise
        ``UnicodeEncodeError``), else :meth:`ordinary`."""
        return core_ordinary(self.encoding) if not self.parts.nfc and not self._phantom else self.ordinary

    def ordinary(self, text: str) -> list[int]:
        """Ids of ``text`` that holds none of :attr:`starts` (so no added token): the hot path of ``encode``."""
        if self.parts.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        ids = self._core_ordinary(text)
        if self._phantom and self._may_phantom(text, ids):
            return self._hf.encode(text, add_special_tokens=False).ids
        return ids

    def _core_ordinary(self, text: str) -> list[int]:
        try:  # tiktoken's Rust core directly: its public wrapper only adds this same surrogate fallback
            return self._core.encode_ordinary(text)
        except (UnicodeEncodeError, AttributeError):
            return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: list[str], *, with_special: Sequence[bool] | None = None, add_special_tokens: bool = False,
                     num_threads: int = 8, allowed: Sequence[AbstractSet[str]] | None = None) -> list[list[int]]:
        """``[encode(t) for t in texts]`` in contiguous runs on up to ``num_threads`` threads
        (:func:`tokkit.formats.batching.map_chunked`: one task per run, not per text); ``allowed``
        or ``with_special`` per text as in :meth:`encode`."""
        if self.parts.nfc:
            texts = [self._normalize(t) for t in texts]
        sets = list(allowed) if allowed is not None else [self._allowed(bool(w), None) for w in (with_special or [False] * len(texts))]
        out = map_chunked(lambda ta: self._one(*ta), list(zip(texts, sets)), sizes=[len(t) for t in texts],
                          num_threads=num_threads)
        if self._phantom:
            for i, ids in enumerate(out):
                if self._may_phantom(texts[i], ids):
                    out[i] = self._hf.encode(texts[i], add_special_tokens=False).ids
        return [self._affix(ids) for ids in out] if add_special_tokens else out

    def _affix(self, ids: list[int]) -> list[int]:
        pre, suf = self.affixes  # type: ignore[misc]
        return [*pre, *ids, *suf]
