"""Lint before (and after) training: the tokenizer pitfalls of ``../shared/reference/training.md`` §1.4 and §9.

Before training (:func:`lint_recipe`, on a sample of the corpus):

* a lossy normalizer (NFKC, lowercase): how many sample characters it changes;
* domain tokens that shadow the pre-tokens merges are learnt on (a match whose edge falls inside a
  GPT-2 pre-token: ``**`` inside ``***``, ``(a)`` before ``),``);
* no pre-tokenizer at inference (random-split supertokens) on very long lines.

After training (:func:`lint_tokenizer`, on any ``tokenizers.Tokenizer``):

* vocabulary entries outside the byte map of a byte-level model (KL3M char variants: 68 dead ids);
* no byte-level alphabet and no byte fallback (unseen characters are lost: kl3m-005 drops 🙂);
* whitespace-only non-special added tokens (kl3m-001: +22% tokens);
* padding or truncation left enabled (KL3M ships left padding).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Sequence

from tokkit.formats.hf_json import unicode_to_bytes
from tokkit.train.domain import GPT2_PATTERN, pretokenize_pattern
from tokkit.train.recipe import Kind, SupertokenMethod, TrainRecipe

__all__ = ["lint_recipe", "lint_tokenizer"]

_LONG_LINE = 100_000


def _normalize(text: str, recipe: TrainRecipe) -> str:
    if recipe.nfkc:
        text = unicodedata.normalize("NFKC", text)
    return text.lower() if recipe.lowercase else text


def _edges(pattern: Any, text: str) -> set[int]:
    return {m.end() for m in pattern.finditer(text)} | {0}


def lint_recipe(recipe: TrainRecipe, domain_tokens: Sequence[str], sample: Sequence[str]) -> list[str]:
    """Warnings about ``recipe`` and its domain tokens, measured on ``sample`` documents."""
    out: list[str] = []
    if recipe.nfkc or recipe.lowercase:
        changed = sum(1 for d in sample if _normalize(d, recipe) != d)
        what = " + ".join(n for n, on in (("NFKC", recipe.nfkc), ("lowercase", recipe.lowercase)) if on)
        out.append(f"lossy normalizer ({what}): {changed} of {len(sample)} sample documents change, so they will not "
                   "round-trip; drop nfkc/lowercase for a lossless tokenizer")
    if domain_tokens and sample:
        import regex  # GPT-2's \p{L} classes; imported here, it costs 0.1-0.3 s

        gpt2 = regex.compile(GPT2_PATTERN)
        combined = regex.compile(pretokenize_pattern(domain_tokens))
        dom = set(domain_tokens) | {" " + t for t in domain_tokens}
        bad: dict[str, int] = {}
        seen: dict[str, int] = {}
        for d in sample:
            edges = _edges(gpt2, d)
            for m in combined.finditer(d):
                if m.group() not in dom:
                    continue
                t = m.group().strip()
                seen[t] = seen.get(t, 0) + 1
                if m.start() not in edges or m.end() not in edges:
                    bad[t] = bad.get(t, 0) + 1
        if bad:
            top = ", ".join(f"{t!r} ({n}/{seen[t]})" for t, n in sorted(bad.items(), key=lambda kv: -kv[1])[:8])
            out.append("domain tokens cut into neighbouring pre-tokens, so merges there can no longer form "
                       f"(cuts/occurrences in the sample): {top}")
    if recipe.kind == Kind.SUPERTOKEN and recipe.supertoken.method == SupertokenMethod.RANDOM_SPLIT:
        longest = max((len(line) for d in sample for line in d.split("\n")), default=0)
        out.append("random-split supertokens run without a pre-tokenizer at inference: each text is one BPE word "
                   f"(encoding slows on long inputs; longest sample line {longest} chars)")
        if longest > _LONG_LINE:
            out.append(f"sample lines up to {longest} chars: split long documents before encoding")
    return out


def lint_tokenizer(tok: Any, *, vocab: Any = None) -> list[str]:
    """Warnings about a ``tokenizers.Tokenizer`` (trained here or loaded), read through its API (no JSON dump).

    With ``vocab`` (its :class:`tokkit.vocab.TextVocab`) byte values that no token spells are named.
    """
    out: list[str] = []
    missing = vocab.unencodable_bytes() if vocab is not None else ()
    if missing:
        out.append(f"{len(missing)} byte value(s) have no token, so text holding them loses them silently: "
                   f"{', '.join(f'0x{b:02x}' for b in missing)} (encode(..., strict=True) refuses such text)")
    text = (tok.pre_tokenizer.__getstate__() if tok.pre_tokenizer is not None else b"") + (
        tok.decoder.__getstate__() if tok.decoder is not None else b"")
    byte_level = b'"ByteLevel"' in text
    added = tok.get_added_tokens_decoder()
    specials = {a.content for a in added.values() if a.special}
    if byte_level:
        vocab = tok.get_vocab(with_added_tokens=False)
        foreign = set("".join(vocab)) - set(unicode_to_bytes())
        outside = [t for t in vocab if t not in specials and not foreign.isdisjoint(t)] if foreign else []
        if outside:
            out.append(f"{len(outside)} vocabulary entries are outside the byte-level alphabet (dead ids), e.g. {outside[:3]}")
    elif not getattr(tok.model, "byte_fallback", False):
        out.append("no byte-level alphabet and no byte fallback: characters unseen in training are lost (lossy)")
    ws = [a.content for a in added.values() if not a.special and not a.content.strip()]
    if ws:
        out.append(f"whitespace-only added tokens {ws[:5]} are split out before the model (kl3m-001 lost 22% this way)")
    if tok.padding:
        out.append(f"padding is enabled ({str(tok.padding.get('direction')).lower()}): encode_batch output is padded; call no_padding()")
    if tok.truncation:
        out.append("truncation is enabled: long texts are cut silently")
    return out
