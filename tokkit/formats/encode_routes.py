"""The long way: how text that leaves ``Tokenizer.encode``'s hot path is encoded on each backend.

``Tokenizer`` takes these methods as a mixin; its hot path (:mod:`tokkit.formats.fast_core`) serves
text holding no special-token character, and everything else comes here with a
:class:`~tokkit.formats.special_policy.Plan` (which special strings to encode as special ids):

* HF files and GGUF: the exact tiktoken-core encoder of :mod:`tokkit.formats.fast_bpe` where it has
  one, else HF ``tokenizers`` (a variant that matches only the allowed special strings, cached);
* sentencepiece: its own encoder, split at the allowed special strings (:mod:`tokkit.formats.segments`);
* tiktoken and Tekken: tiktoken's core, or fastokens around a whitespace run the core cannot take
  (:mod:`tokkit.formats.long_runs`);

plus the beginning-of-text token the family's reference library adds with ``add_special_tokens``
and the ``strict`` check (bytes no token spells, surrogate code points).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from tokkit.formats.long_runs import has_long_run
from tokkit.formats.native import hf_ordinary
from tokkit.formats.special_policy import Plan
from tokkit.formats.surrogates import find_surrogate, surrogate_error

__all__ = ["EncodeRoutes"]


class EncodeRoutes:
    """Mixin of :class:`tokkit.tokenizer.Tokenizer` (it provides ``_src``, ``_native``, ``vocab``, ``name``,
    ``_fast_for``, ``_always``, ``_segments``)."""

    _src: Any
    _native: Any
    vocab: Any
    name: str

    @cached_property
    def _unencodable(self) -> frozenset[int]:
        return frozenset(self.vocab.unencodable_bytes())

    def _check_encodable(self, text: str) -> None:
        if (at := find_surrogate(text)) is not None:
            raise surrogate_error(text, at, self.name)
        if not self._unencodable:
            return
        data = text.encode("utf-8", errors="surrogatepass")
        bad = sorted(set(data) & self._unencodable)
        if bad:
            from tokkit.errors import UnencodableBytesError

            at = data.index(bytes([bad[0]]))
            raise UnencodableBytesError(
                f"text holds byte(s) {', '.join(f'0x{b:02x}' for b in bad)} that no token of {self.name} spells "
                f"(first at byte {at}); expected text this vocabulary can encode exactly. Remove or replace "
                "them, or encode without strict=True to drop them as the reference library does")

    def _hf_variant(self, keep: frozenset[str]) -> Any:
        """The HF tokenizer matching only the special strings ``keep`` (the others are text); a few are cached."""
        variants = self.__dict__.setdefault("_variants", {})
        if keep not in variants:
            if len(variants) >= 8:
                variants.pop(next(iter(variants)))
            variants[keep] = hf_ordinary(self._native, keep)
        return variants[keep]

    @cached_property
    def _reference_bos(self) -> int | None:
        """The BOS id to prepend with special tokens where the family's reference library adds one and
        this backend's own route does not, or None. Aliases say per family (:data:`tokkit.names.ALIASES`);
        a Tekken file loaded by path gets mistral-common's BOS; an HF file loaded by path follows its own
        post-processor, as ``tokenizers`` does. Prepended always, as the references do (a text that
        starts with the BOS string, allowed, gets two: Llama 3 ``[128000, 128000, ...]``)."""
        from tokkit.names import ALIASES

        alias = ALIASES.get(self._src.name.lower())
        wanted = alias.bos_on_encode if alias is not None else self._src.backend == "tekken"
        bos = self.vocab.role_id("bos") if wanted else None
        if bos is None:
            return None
        b = self._src.backend
        if b == "spm":  # sentencepiece's own BOS (``_with_bos_eos``)
            return None if self._native.bos_id() == bos else bos
        if b in ("hf", "gguf") and self._native.encode("a", add_special_tokens=True).ids[:1] == [bos]:
            return None  # the file's post-processor adds it
        return bos

    def _with_reference_bos(self, ids: list[int], add_special_tokens: bool) -> list[int]:
        bos = self._reference_bos if add_special_tokens else None
        return ids if bos is None else [bos, *ids]

    def _encode_plan(self, text: str, plan: Plan, add_special_tokens: bool) -> list[int]:
        """Ids of ``text`` with the special strings of ``plan.special`` as special tokens, all others as text.
        Text with a whitespace run tiktoken's core cannot take goes around it (:mod:`tokkit.formats.long_runs`)."""
        b, n = self._src.backend, self._native
        long = has_long_run(text)
        if long and b in ("tiktoken", "tiktoken_file", "tekken"):
            return self._encode_long(text, plan)
        if b in ("hf", "gguf"):
            if not long and (fast := self._fast_for(add_special_tokens)) is not None:
                return fast.encode(text, allowed=plan.special | self._always, add_special_tokens=add_special_tokens)
            if plan.special and plan.text_too:
                return self._segments.hf_mixed(text, plan.special, add_special_tokens)[0]
            hf = n if not plan.text_too else self._hf_variant(plan.special)
            return hf.encode(text, add_special_tokens=add_special_tokens).ids
        if b == "spm":
            ids = self._segments.encode(text, plan.special) if plan.special else n.encode(text)
            return self._with_bos_eos(ids) if add_special_tokens else ids
        return n.encode(text, allowed_special=plan.special, disallowed_special=()) if plan.special else n.encode_ordinary(text)

    def _encode_long(self, text: str, plan: Plan) -> list[int]:
        """A tiktoken encoding's ids of text with a long whitespace run: the text cut at the special strings
        to encode (``SpecialPolicy.split``, tiktoken's scan) and each plain piece encoded by fastokens on the
        same ranks (:mod:`tokkit.formats.long_runs`), or a clear refusal without it."""
        from tokkit.formats.fast_core import long_run_encoder
        from tokkit.formats.long_runs import long_run_error

        safe = long_run_encoder(self)
        if safe is None:
            raise long_run_error(text, self.name)
        ids: list[int] = []
        for piece, is_special in self._policy.split(text, plan.special):
            ids += [self._native._special_tokens[piece]] if is_special else safe(piece)
        return ids

    def _encode_batch(self, texts: list[str], plans: list[Plan], add_special_tokens: bool) -> list[list[int]]:
        b, n = self._src.backend, self._native
        if b != "spm" and any(map(has_long_run, texts)):  # rare: one by one, around tiktoken's core
            return [self._encode_plan(t, p, add_special_tokens) for t, p in zip(texts, plans)]
        if b in ("hf", "gguf"):
            if (fast_bpe := self._fast_for(add_special_tokens)) is not None:
                return fast_bpe.encode_batch(texts, allowed=[p.special | self._always for p in plans],
                                             add_special_tokens=add_special_tokens)
            if all(not p.text_too for p in plans):
                hf = n  # every special string in the texts is allowed
            elif all(not p.special for p in plans):
                hf = self._hf_variant(frozenset())
            else:
                return [self._encode_plan(t, p, add_special_tokens) for t, p in zip(texts, plans)]
            fast = getattr(hf, "encode_batch_fast", None) or hf.encode_batch
            return [e.ids for e in fast(texts, add_special_tokens=add_special_tokens)]
        if b == "spm":
            if any(p.special for p in plans):
                return [self._encode_plan(t, p, add_special_tokens) for t, p in zip(texts, plans)]
            out = n.encode(texts, num_threads=-1)
            return [self._with_bos_eos(ids) for ids in out] if add_special_tokens else out
        from tokkit.formats.batching import map_chunked  # tiktoken's batch pays a pool task per text

        if any(p.special for p in plans):
            return map_chunked(lambda tp: self._encode_plan(tp[0], tp[1], False), list(zip(texts, plans)),
                               sizes=[len(t) for t in texts])
        return map_chunked(n.encode_ordinary, texts)

    def _with_bos_eos(self, ids: list[int]) -> list[int]:
        bos = self._native.bos_id()
        return ([bos] if bos >= 0 else []) + ids
