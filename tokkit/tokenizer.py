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

import re
from functools import cached_property
from pathlib import Path
from typing import AbstractSet, Any, Literal, Sequence

from tokkit.errors import InputTypeError, SpecialTokenError, VocabMismatchError, native_errors
from tokkit.formats.native import WHAT, Source, hf_ordinary, open_native, vocab_of
from tokkit.names import ResolvedTokenizer, resolve_tokenizer
from tokkit.vocab import TextVocab, VocabReport

__all__ = ["Tokenizer", "load_tokenizer"]

AllowedSpecial = AbstractSet[str] | Literal["all"]


def _need_str(text: object) -> None:
    if not isinstance(text, str):
        hint = " or decode your bytes first (data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise InputTypeError(f"encode takes text as str, found {type(text).__name__}; pass a str{hint}")


class Tokenizer:
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
    def _fallback_ids(self) -> frozenset[int]:
        return frozenset(self.vocab.byte_fallback_ids)

    @cached_property
    def _special_re(self) -> re.Pattern[str] | None:
        texts = sorted({s.text for s in self.vocab.specials if s.text}, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, texts))) if texts else None

    # ------------------------------------------------------------------ encoding
    @cached_property
    def _hot(self) -> tuple[tuple[str, ...], Any] | None:
        """``(first characters of every special and added token, plain-text encoder)`` for ``encode``'s fast path."""
        # the encoder may be tiktoken's Rust core itself, which raises UnicodeEncodeError on lone
        # surrogates: ``encode`` then sends the text the long way
        if self._fast is not None:
            return tuple(sorted(set(self._fast.starts) | set(self._special_starts))), self._fast.plain_encoder
        if self._src.backend in ("tiktoken", "tiktoken_file", "tekken"):
            from tokkit.formats.fast_bpe import core_ordinary

            starts = {t[0] for t in self._native.special_tokens_set if t} | set(self._special_starts)
            return tuple(sorted(starts)), core_ordinary(self._native)
        return None

    @cached_property
    def _special_starts(self) -> tuple[str, ...]:
        return tuple(sorted({s.text[0] for s in self.vocab.specials if s.text}))

    def _check_special(self, text: str, allowed: AllowedSpecial) -> bool:
        """Raise on disallowed special strings; return True when allowed ones are present."""
        if self._special_re is None or not any(c in text for c in self._special_starts):
            return False  # the ``in`` test (C speed) spares the regex scan on text that cannot hold one
        if allowed == "all" and self._src.backend != "spm":
            return True  # the native encoder finds them itself
        found = set(self._special_re.findall(text))
        if not found:
            return False
        bad = found if allowed == "all" else found - set(allowed)
        if bad and allowed != "all":
            raise SpecialTokenError(
                f"text contains special-token string(s) {sorted(bad)} of {self.name}; expected plain text. "
                f"Pass allowed_special={set(sorted(bad))!r} (or 'all') to encode them as special tokens, "
                "or remove them from the text")
        return True

    def encode(self, text: str, *, allowed_special: AllowedSpecial = frozenset(),
               disallowed_special: AllowedSpecial | tuple[()] = "all", add_special_tokens: bool = False,
               strict: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS unless ``add_special_tokens``).

        As in tiktoken, special-token strings in ``text`` are refused unless ``allowed_special``
        lists them; ``disallowed_special=()`` encodes them as ordinary text instead. With
        ``add_special_tokens=True`` the beginning-of-text token is prepended where the family's
        reference library does (Llama 2/3, Mistral, Tekken, Gemma: yes; GPT-2, the OpenAI ranks,
        Qwen, SmolLM2: no).

        With ``strict=True`` text holding a byte that no token spells is refused instead of losing
        that byte silently (the reference libraries drop it: SmolLM2 ``"a\x16b"`` -> ``[81, 82]``).

        Raises:
            SpecialTokenError: ``text`` contains a special-token string not in ``allowed_special``.
            UnencodableBytesError: ``strict`` and ``text`` holds a byte of ``vocab.unencodable_bytes()``.
        """
        hot = self._hot
        if hot is not None and not strict and not add_special_tokens and type(text) is str:
            for c in hot[0]:
                if c in text:
                    break
            else:  # no special or added token can occur, so the special-token options cannot change the ids
                try:
                    return hot[1](text)
                except UnicodeEncodeError:  # lone surrogates: the native wrapper's fallback below
                    pass
        _need_str(text)
        if strict:
            self._check_encodable(text)
        if not disallowed_special and allowed_special != "all" and not (self._special_re and any(
                c in text for c in self._special_starts) and set(self._special_re.findall(text)) & set(allowed_special)):
            return self._with_reference_bos(self.encode_ordinary(text), add_special_tokens)
        return self._with_reference_bos(self._encode(text, allowed_special, add_special_tokens), add_special_tokens)

    @cached_property
    def _unencodable(self) -> frozenset[int]:
        return frozenset(self.vocab.unencodable_bytes())

    def _check_encodable(self, text: str) -> None:
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

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text`` with special-token strings encoded as plain text (tiktoken's ``encode_ordinary``)."""
        _need_str(text)
        b, n = self._src.backend, self._native
        if b in ("hf", "gguf"):
            return self._hf_ordinary.encode(text, add_special_tokens=False).ids
        if b == "spm":
            return n.encode(text)
        return n.encode_ordinary(text)

    @cached_property
    def _hf_ordinary(self) -> Any:
        return hf_ordinary(self._native)

    @cached_property
    def _reference_bos(self) -> int | None:
        """The BOS id the family's reference library prepends with special tokens, or None."""
        from tokkit.names import ALIASES

        alias = ALIASES.get(self._src.name.lower())
        return self.vocab.role_id("bos") if alias is not None and alias.bos_on_encode else None

    def _with_reference_bos(self, ids: list[int], add_special_tokens: bool) -> list[int]:
        bos = self._reference_bos if add_special_tokens else None
        return [bos, *ids] if bos is not None and ids[:1] != [bos] else ids

    def _encode(self, text: str, allowed_special: AllowedSpecial, add_special_tokens: bool) -> list[int]:
        has_special = self._check_special(text, allowed_special)
        b, n = self._src.backend, self._native
        if b in ("hf", "gguf"):
            if (fast := self._fast_for(add_special_tokens)) is not None:
                return fast.encode(text, with_special=has_special, add_special_tokens=add_special_tokens)
            return n.encode(text, add_special_tokens=add_special_tokens).ids
        if b == "spm":
            ids = self._spm_encode(text) if has_special else n.encode(text)
            return self._with_bos_eos(ids) if add_special_tokens else ids
        return n.encode(text, allowed_special="all" if has_special else set(), disallowed_special=())

    def encode_batch(self, texts: Sequence[str], *, allowed_special: AllowedSpecial = frozenset(), add_special_tokens: bool = False) -> list[list[int]]:
        """``[encode(t) for t in texts]``, computed by the native library on all cores."""
        if isinstance(texts, (str, bytes)):
            raise InputTypeError("encode_batch takes a list of str, found a single "
                                 f"{type(texts).__name__}; wrap it in a list or call encode()")
        texts = list(texts)
        for t in texts:
            _need_str(t)
        if add_special_tokens and self._reference_bos is not None:
            return [self._with_reference_bos(ids, True) for ids in self._encode_batch(texts, allowed_special, True)]
        return self._encode_batch(texts, allowed_special, add_special_tokens)

    def _encode_batch(self, texts: list[str], allowed_special: AllowedSpecial, add_special_tokens: bool) -> list[list[int]]:
        flags = [self._check_special(t, allowed_special) for t in texts]
        b, n = self._src.backend, self._native
        if b in ("hf", "gguf"):
            if (fast_bpe := self._fast_for(add_special_tokens)) is not None:
                return fast_bpe.encode_batch(texts, with_special=flags, add_special_tokens=add_special_tokens)
            fast = getattr(n, "encode_batch_fast", None) or n.encode_batch
            return [e.ids for e in fast(texts, add_special_tokens=add_special_tokens)]
        if b == "spm":
            if any(flags):
                return [self.encode(t, allowed_special=allowed_special, add_special_tokens=add_special_tokens) for t in texts]
            out = n.encode(texts, num_threads=-1)
            return [self._with_bos_eos(ids) for ids in out] if add_special_tokens else out
        from tokkit.formats.batching import map_chunked  # tiktoken's batch pays a pool task per text

        if any(flags):
            return map_chunked(lambda t: n.encode(t, allowed_special="all", disallowed_special=()), texts)
        return map_chunked(n.encode_ordinary, texts)

    def _spm_encode(self, text: str) -> list[int]:
        """sentencepiece has no special tokens in text: split at them; a segment after a special token
        is encoded without the dummy-prefix space (as transformers' ``legacy=False`` does)."""
        by_text = {s.text: s.id for s in self.vocab.specials}
        ids: list[int] = []
        pos = 0
        for m in self._special_re.finditer(text):  # type: ignore[union-attr]
            if m.start() > pos:
                ids += self._segment(text[pos:m.start()], first=pos == 0)
            ids.append(by_text[m.group()])
            pos = m.end()
        if pos < len(text):
            ids += self._segment(text[pos:], first=pos == 0)
        return ids

    def _segment(self, text: str, *, first: bool) -> list[int]:
        return self._native.encode(text) if first else self._encode_batch_no_prefix([text])[0]

    def _with_bos_eos(self, ids: list[int]) -> list[int]:
        bos = self._native.bos_id()
        return ([bos] if bos >= 0 else []) + ids

    # ------------------------------------------------------------------ decoding
    def _check_ids(self, ids: Sequence[int]) -> None:
        n = len(self.vocab)
        for i in ids:
            if not 0 <= int(i) < n:
                raise VocabMismatchError(f"token id {i} is out of range for {self.name} ({n} ids: 0..{n - 1})")

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` as the native library decodes it (invalid UTF-8 as U+FFFD); special tokens
        included unless ``skip_special_tokens`` (as transformers' flag of that name)."""
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        if skip_special_tokens:
            special = {t.id for t in self.vocab.specials}
            ids = [i for i in ids if i not in special]
        b, n = self._src.backend, self._native
        if b in ("hf", "gguf"):
            return n.decode(ids, skip_special_tokens=False)
        if b == "spm":
            return self.decode_bytes(ids).decode("utf-8", errors="replace")
        return n.decode(ids, errors="replace")

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The exact bytes of ``ids`` (lossless, also for byte-fallback and partial UTF-8 tokens)."""
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        tokens = self.vocab.tokens
        out = b"".join(tokens[i] for i in ids)
        if self.vocab.strip_leading_space and out[:1] == b" ":
            # HF's Strip decoder drops any leading space; sentencepiece only the "▁" of a piece, not <0x20>
            if not (self._src.backend == "spm" and ids[0] in self._fallback_ids):
                out = out[1:]
        return out

    # ------------------------------------------------------------------ reports and export
    def report(self) -> VocabReport:
        """The vocab report plus the ids that encoding their own bytes never yields (unreachable)."""
        from tokkit.reachability import unreachable_ids

        base = self.vocab.report()
        return VocabReport(duplicates=base.duplicates, unused_ids=base.unused_ids, unreachable_ids=unreachable_ids(self),
                           unencodable_bytes=base.unencodable_bytes)

    @cached_property
    def _hf_no_prefix(self) -> Any:
        from tokkit.reachability import without_dummy_prefix

        return without_dummy_prefix(self.to_hf())

    def _encode_batch_no_prefix(self, texts: list[str]) -> list[list[int]]:
        """Encode as a continuation: no dummy-prefix space (only meaningful for SentencePiece families)."""
        if self._src.backend in ("hf", "gguf", "spm"):
            return [e.ids for e in self._hf_no_prefix.encode_batch(texts, add_special_tokens=False)]
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

        return write_tokenizer_folder(self.to_hf(), self.vocab, out_dir, force=force, chat_template=self.chat_template)


def load_tokenizer(name_or_path: str | Path) -> Tokenizer:
    """Load a tokenizer by alias (``gpt2``, ``llama3``, ``mistral``...), file path or HF repo id.

    Raises:
        UnknownNameError: an unknown alias (the message lists the known ones).
        MissingFileError: a missing file, or an alias whose fixture is not fetched yet.
        FormatError: a truncated or unreadable tokenizer file.
    """
    r: ResolvedTokenizer = resolve_tokenizer(name_or_path)
    return Tokenizer(Source(r.name, r.backend, str(r.path) if r.path else None, r.encoding))
