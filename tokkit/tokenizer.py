"""One small tokenizer API over the native encoders (HF ``tokenizers``, sentencepiece, tiktoken).

Encoding runs in the native library (no Python loop per token); ``encode_batch`` uses the
native multi-threaded path. The handle pickles as its source description and rebuilds the native
encoder in the receiving process, so ``datasets.map(..., num_proc=N)`` and DataLoader workers can
use it cheaply.

Example:
    >>> tok = load_tokenizer("gpt2")                                     # doctest: +SKIP
    >>> tok.encode("Hello world")                                        # doctest: +SKIP
    [15496, 995]
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from tokkit.errors import native_errors
from tokkit.formats.compat import TiktokenNames, TransformersNames
from tokkit.formats.encode_routes import EncodeRoutes
from tokkit.formats.decoding import Decoder
from tokkit.formats.inputs import ALL, NO_SPECIAL, check_special_args, need_str, text_list
from tokkit.formats.long_runs import LONG_RUN, has_long_run
from tokkit.formats.native import WHAT, Source, open_native, vocab_of
from tokkit.formats.segments import Segments
from tokkit.formats.special_policy import ORDINARY, SpecialPolicy, Spec, special_ids
from tokkit.formats.surrogates import map_offsets, tiktoken_reading, without_surrogates
from tokkit.names import ResolvedTokenizer, resolve_tokenizer
from tokkit.native_calls import raise_clearly
from tokkit.vocab import TextVocab, VocabReport

__all__ = ["Tokenizer", "load_tokenizer"]

def _none_in(chars: tuple[str, ...], text: str) -> bool:
    """No character of ``chars`` occurs in ``text``."""
    for c in chars:
        if c in text:
            return False
    return True


class Tokenizer(EncodeRoutes, TiktokenNames, TransformersNames):
    """A loaded tokenizer: ``encode``/``encode_batch``/``decode``/``decode_bytes``/``vocab``/``save``.

    Build it with :func:`load_tokenizer`. Special-token strings in user text are refused unless
    listed in ``allowed_special`` (as tiktoken does), so a document that happens to contain
    ``<|endoftext|>`` is never silently cut into two.
    """

    def __init__(self, source: Source) -> None:
        self._src = source
        with native_errors(source.path or source.encoding, WHAT.get(source.backend, "tokenizer")):
            self._native = open_native(source)
            if source.backend in ("tiktoken_file", "tekken"):
                self._native.encode_ordinary("probe")  # tiktoken builds its core lazily: a damaged file panics here

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        return {"src": self._src}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["src"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Tokenizer(name={self._src.name!r}, backend={self._src.backend!r}, size={len(self.vocab)})"

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        """Number of ids (special and added tokens included), as ``len()`` of a transformers tokenizer."""
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (tiktoken's ``n_vocab``; the embedding needs this many rows)."""
        return len(self.vocab)

    @property
    def name(self) -> str:
        return self._src.name

    @property
    def backend(self) -> str:
        """``hf``, ``spm``, ``tiktoken``, ``tiktoken_file``, ``tekken`` or ``gguf``."""
        return self._src.backend

    @property
    def native(self) -> Any:
        """The wrapped native object (``tokenizers.Tokenizer``, ``SentencePieceProcessor`` or ``tiktoken.Encoding``)."""
        return self._native

    @cached_property
    def vocab(self) -> TextVocab:
        """The id -> bytes vocabulary with special tokens and roles."""
        return vocab_of(self._src, self._native)

    @cached_property
    def _fast(self) -> Any:
        """tiktoken's core where it encodes exactly like the HF tokenizer (:mod:`tokkit.formats.fast_bpe`), else None."""
        if self._src.backend not in ("hf", "gguf"):
            return None
        from tokkit.formats.fast_bpe_check import load_fast_encoder

        return load_fast_encoder(self._native, path=self._src.path if self._src.backend == "hf" else None, name=self.name)

    def _fast_for(self, add_special_tokens: bool) -> Any:
        fast = self._fast
        return fast if fast is not None and (not add_special_tokens or fast.affixes is not None) else None

    @cached_property
    def _policy(self) -> SpecialPolicy:
        """tiktoken's special-token rule over this vocabulary's special strings (:mod:`tokkit.formats.special_policy`)."""
        return SpecialPolicy(frozenset(s.text for s in self.vocab.specials if s.text), name=self.name)

    @cached_property
    def _always(self) -> frozenset[str]:
        """Added tokens that are no special strings (Gemma's ``<table>``): HF matches them as tokens always."""
        fast = self._fast
        return frozenset() if fast is None else (frozenset(fast.parts.specials) | frozenset(fast.parts.plain_added)) - self._policy.texts

    # ------------------------------------------------------------------ encoding
    @cached_property
    def _hot(self) -> tuple[str | tuple[str, ...], Any, Any] | None:
        """``(first characters of every special and added token, plain-text encoder, its native call)``
        for ``encode``'s fast path (:func:`tokkit.formats.fast_core.hot_path`; one character as a str;
        the native call returns the ids or an object whose ``.ids`` they are), or None."""
        from tokkit.formats.fast_core import hot_path

        return hot_path(self)

    @cached_property
    def _quick(self) -> Any:
        """``(core name, plain-text encoder)`` of the fast core that passes the self-check (fastokens or
        quicktok, :mod:`tokkit.formats.fast_core`), else None."""
        from tokkit.formats.fast_core import quick_for

        return quick_for(self)

    @property
    def core(self) -> str:
        """What encodes plain text now: ``fastokens``, ``quicktok``, ``tiktoken`` (its Rust core; a fast
        core may take over, :data:`tokkit.formats.fast_core.AUTO_CHARS`), ``tokenizers`` or ``sentencepiece``."""
        hot = self._hot
        if hot is not None:
            quick = self.__dict__.get("_quick")
            if quick is not None and hot[1] is quick[1]:
                return quick[0]
            return "tokenizers" if self._fast is None and self._src.backend == "hf" else "tiktoken"
        return "sentencepiece" if self._src.backend == "spm" else "tokenizers"

    def encode(self, text: str, *, allowed_special: Spec = NO_SPECIAL, disallowed_special: Spec | tuple[()] | None = ALL,
               add_special_tokens: bool = False, strict: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS unless ``add_special_tokens``).

        ``allowed_special`` / ``disallowed_special`` are tiktoken's, for every backend
        (:mod:`tokkit.formats.special_policy`): special-token strings in ``text`` raise unless allowed;
        an allowed one is encoded as its special id; ``disallowed_special=()`` (or an explicit set that
        does not name it) encodes a special string that is not allowed as ordinary text. With
        ``add_special_tokens=True`` the beginning-of-text token is prepended where the family's
        reference library does (Llama 2/3, Mistral, Tekken, Gemma: yes; GPT-2, the OpenAI ranks,
        Qwen, SmolLM2: no).

        A lone surrogate code point (U+D800..U+DFFF, which no UTF-8 text holds) is read as U+FFFD on
        every backend, as tiktoken reads it (:mod:`tokkit.formats.surrogates`; HF ``tokenizers`` and
        sentencepiece raise a native error instead).

        With ``strict=True`` text holding a byte that no token spells is refused instead of losing
        that byte silently (the reference libraries drop it: SmolLM2 ``"a\x16b"`` -> ``[81, 82]``),
        and so is text holding a surrogate code point.

        Raises:
            SpecialTokenError: ``text`` contains a disallowed special-token string.
            UnencodableBytesError: ``strict`` and ``text`` holds a byte of ``vocab.unencodable_bytes()``
                or a surrogate code point.
        """
        if allowed_special is not NO_SPECIAL or disallowed_special is not ALL:  # the defaults need no check
            disallowed_special = check_special_args(allowed_special, disallowed_special)
        hot = self._hot
        if hot is not None and not (strict or add_special_tokens):
            try:
                first = hot[0]  # one character (one scan: the usual case), or a tuple of them
                if text.__class__ is str and len(text) < LONG_RUN and (
                        first not in text if first.__class__ is str else _none_in(first, text)):
                    # no special or added token can occur, so the special-token options cannot change the ids
                    ids = hot[2](text)
                    return ids if ids.__class__ is list else ids.ids
            except (ValueError, TypeError):  # lone surrogates, a byte no token spells (fastokens): the long way below
                pass
            except BaseException as e:  # a native panic (a split regex that backtracks without end): one clear error
                raise_clearly(e, self.name)
        need_str(text)
        if strict:
            self._check_encodable(text)
        plan = self._policy.plan(text, allowed_special, disallowed_special)
        try:
            if not plan.special and not add_special_tokens and (ids := self._plain(text)) is not None:
                return ids  # a '<' but no special string to encode: the fast core, as above
            return self._with_reference_bos(self._encode_plan(text, plan, add_special_tokens), add_special_tokens)
        except (TypeError, RuntimeError):  # HF tokenizers and sentencepiece refuse lone surrogates: tiktoken's reading
            if (read := without_surrogates(text)) is None:
                raise
        except BaseException as e:  # a native panic: one clear error
            raise_clearly(e, self.name)
        return self.encode(read, allowed_special=allowed_special, disallowed_special=disallowed_special,
                           add_special_tokens=add_special_tokens)

    def _plain(self, text: str) -> list[int] | None:
        """The fast path's ids of ``text`` read as plain text, or None where that is not what the
        reference gives (an added token HF always matches occurs in it; no fast path; lone surrogates).
        Text that only *starts* like a special string (a ``<`` in HTML) then stays on the fast core
        instead of falling back to the slower one, whose tables would also evict the fast core's."""
        hot = self._hot
        if hot is None or self._fast is None and self._src.backend == "hf" or any(a in text for a in self._always) \
                or has_long_run(text):  # (an HF file that is not byte-level: its added tokens are the long way's)
            return None
        try:
            return hot[1](text)
        except (ValueError, TypeError):
            return None

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text`` with special-token strings encoded as plain text (tiktoken's
        ``encode_ordinary``; ``encode(text, disallowed_special=())``), on ``encode``'s fast path."""
        hot = self._hot
        if hot is not None:  # encode's hot path, inline: a shared helper would add the call this path exists to avoid
            try:
                first = hot[0]  # one character (one scan: the usual case), or a tuple of them
                if text.__class__ is str and len(text) < LONG_RUN and (
                        first not in text if first.__class__ is str else _none_in(first, text)):
                    ids = hot[2](text)
                    return ids if ids.__class__ is list else ids.ids
            except (ValueError, TypeError):  # lone surrogates (quicktok: TypeError), a byte no token spells (fastokens)
                pass
            except BaseException as e:  # a native panic: one clear error (as in encode)
                raise_clearly(e, self.name)
        need_str(text)
        try:
            ids = self._plain(text)
            return ids if ids is not None else self._encode_plan(text, ORDINARY, False)
        except (TypeError, RuntimeError):  # lone surrogates (HF tokenizers, sentencepiece): tiktoken's reading
            if (read := without_surrogates(text)) is None:
                raise
        except BaseException as e:  # a native panic: one clear error
            raise_clearly(e, self.name)
        return self.encode_ordinary(read)

    def encode_with_offsets(self, text: str, *, allowed_special: Spec = NO_SPECIAL, disallowed_special: Spec | tuple[()] | None = ALL,
                            add_special_tokens: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
        """``(ids, offsets)``: the ids of ``encode`` with ``(start, end)`` character offsets into ``text``
        per id, equal to HF's ``offset_mapping`` (transformers' ``return_offsets_mapping``); a token that
        covers part of a character spans that whole character (:mod:`tokkit.formats.offsets`)."""
        from tokkit.formats.offsets import encode_with_offsets

        need_str(text)
        disallowed_special = check_special_args(allowed_special, disallowed_special)
        read, starts = tiktoken_reading(text)  # lone surrogates as encode reads them; offsets into `text`
        plan = self._policy.plan(read, allowed_special, disallowed_special)
        try:
            ids, offsets = encode_with_offsets(self, read, plan, add_special_tokens)
        except BaseException as e:  # a native panic: one clear error
            raise_clearly(e, self.name)
        return ids, map_offsets(offsets, starts)

    def encode_batch(self, texts: Sequence[str], *, allowed_special: Spec = NO_SPECIAL,
                     disallowed_special: Spec | tuple[()] | None = ALL, add_special_tokens: bool = False) -> list[list[int]]:
        """``[encode(t, ...) for t in texts]``, computed by the native library on all cores."""
        texts = text_list(texts)
        disallowed_special = check_special_args(allowed_special, disallowed_special)
        plans = [self._policy.plan(t, allowed_special, disallowed_special) for t in texts]
        try:
            out = self._encode_batch(texts, plans, add_special_tokens)
        except (TypeError, RuntimeError):  # lone surrogates (HF tokenizers, sentencepiece): tiktoken's reading
            read = [without_surrogates(t) for t in texts]
            if all(r is None for r in read):
                raise
            texts = [t if r is None else r for t, r in zip(texts, read)]
            out = self._encode_batch(texts, plans, add_special_tokens)
        except BaseException as e:  # a native panic: one clear error
            raise_clearly(e, self.name)
        if add_special_tokens and self._reference_bos is not None:
            return [self._with_reference_bos(ids, True) for ids in out]
        return out

    # ------------------------------------------------------------------ decoding
    @cached_property
    def _decoder(self) -> Decoder:
        return Decoder(backend=self._src.backend, native=self._native, vocab=self.vocab, fast=self._fast,
                       skip=special_ids(self._src.backend, self._native, self.vocab), name=self.name)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` as the native library decodes it (:mod:`tokkit.formats.decoding`: invalid
        UTF-8 as U+FFFD; sentencepiece's unknown piece as `` ⁇ ``); special tokens as their text unless
        ``skip_special_tokens``, which drops exactly the ids the reference library marks special
        (transformers' rule: Qwen's ``<think>`` stays).

        Raises:
            VocabMismatchError: an id outside ``0..len(vocab)-1``.
        """
        return self._decoder.decode(ids, skip_special_tokens=skip_special_tokens)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The exact bytes of ``ids`` (lossless, also for byte-fallback and partial UTF-8 tokens)."""
        return self._decoder.decode_bytes(ids)

    # ------------------------------------------------------------------ reports and export
    def report(self) -> VocabReport:
        """The vocab report plus the ids that encoding their own bytes never yields (unreachable)."""
        from tokkit.reachability import unreachable_ids

        base = self.vocab.report()
        return VocabReport(duplicates=base.duplicates, unused_ids=base.unused_ids, unreachable_ids=unreachable_ids(self),
                           unencodable_bytes=base.unencodable_bytes)

    @cached_property
    def _segments(self) -> Segments:
        return Segments(self)

    def _encode_batch_no_prefix(self, texts: list[str]) -> list[list[int]]:
        """Encode as a continuation: no dummy-prefix space (only meaningful for SentencePiece families)."""
        if self._src.backend in ("hf", "gguf", "spm"):
            return [e.ids for e in self._segments.no_prefix.encode_batch(texts, add_special_tokens=False)]
        return self.encode_batch(texts)

    def to_hf(self) -> Any:
        """This tokenizer as a ``tokenizers.Tokenizer`` (converted exactly for spm/tiktoken/tekken)."""
        from tokkit.formats.export_hf import to_hf

        return to_hf(self._native, self._src.backend, self.vocab, self._reference_bos)

    @property
    def chat_template(self) -> str | None:
        """The chat template of the source ``tokenizer_config.json`` (or ``chat_template.jinja``), if any."""
        from tokkit.formats.export_hf import chat_template

        return chat_template(self._src.path)

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Write an HF tokenizer folder (tokenizer.json, tokenizer_config.json with the chat template,
        special_tokens_map.json) atomically; refuses an existing folder unless ``force``."""
        from tokkit.hf_folder import write_tokenizer_folder

        return write_tokenizer_folder(self.to_hf(), self.vocab, out_dir, force=force, chat_template=self.chat_template,
                                      role_texts={r: self._role_text(r) for r in ("bos", "eos", "pad", "unk")})


def load_tokenizer(name_or_path: str | Path) -> Tokenizer:
    """Load a tokenizer by alias (``gpt2``, ``llama3``, ``mistral``...), file path or HF repo id.

    Raises:
        UnknownNameError: an unknown alias (the message lists the known ones).
        MissingFileError: a missing file, or an alias whose fixture is not fetched yet.
        FormatError: a truncated or unreadable tokenizer file.
    """
    r: ResolvedTokenizer = resolve_tokenizer(name_or_path)
    return Tokenizer(Source(r.name, r.backend, str(r.path) if r.path else None, r.encoding))
