"""The names tiktoken and transformers users reach for, on :class:`tokkit.tokenizer.Tokenizer`.

:class:`TiktokenNames` gives tiktoken's ``Encoding`` conveniences (``encode_single_token``,
``decode_single_token_bytes``, ``decode_tokens_bytes``, ``decode_with_offsets``, ``token_byte_values``,
``special_tokens_set``, ``eot_token``, ``n_vocab``, ``max_token_value``) and :class:`TransformersNames`
transformers' (``tok(text)``, ``tokenize``, ``convert_ids_to_tokens``, ``convert_tokens_to_ids``,
``batch_decode``, ``get_vocab``, ``bos_token_id`` / ``eos_token_id`` / ``pad_token_id`` /
``unk_token_id`` and their ``*_token`` strings, ``all_special_ids``, ``save_pretrained``), with the
same results as those libraries on the same file (``tests/test_compat.py``). Token *strings* are the
native library's spelling: HF's (``Ġworld``), sentencepiece's pieces (``▁world``), and for tiktoken
encodings the byte-level spelling their HF export uses.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from tokkit.formats.inputs import ALL, NO_SPECIAL, text_list

__all__ = ["TiktokenNames", "TransformersNames"]


class TiktokenNames:
    """tiktoken's ``Encoding`` names (mixed into ``Tokenizer``)."""

    @property
    def n_vocab(self) -> int:
        """Number of ids, specials included (tiktoken's name)."""
        return len(self.vocab)  # type: ignore[attr-defined]

    @property
    def max_token_value(self) -> int:
        return len(self.vocab) - 1  # type: ignore[attr-defined]

    @property
    def special_tokens_set(self) -> set[str]:
        """The special-token strings ``allowed_special`` / ``disallowed_special`` speak of."""
        return set(self._policy.texts)  # type: ignore[attr-defined]

    @property
    def eot_token(self) -> int:
        """The end-of-text id (``<|endoftext|>`` for the OpenAI encodings; the ``eos`` role elsewhere)."""
        i = self.vocab.role_id("eos")  # type: ignore[attr-defined]
        if i is None:
            raise KeyError(f"{self.name} has no end-of-text token")  # type: ignore[attr-defined]
        return i

    @cached_property
    def _bytes_to_id(self) -> dict[bytes, int]:
        special = {s.id for s in self.vocab.specials}  # type: ignore[attr-defined]
        out: dict[bytes, int] = {}
        for i, b in enumerate(self.vocab.tokens):  # type: ignore[attr-defined]
            if b and i not in special and i not in self.vocab.unused_ids:  # type: ignore[attr-defined]
                out.setdefault(b, i)  # several ids with one spelling (<0x20> and ▁): the lowest
        return out

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """The id of a piece that is exactly one token (a special string gives its special id).

        Raises:
            KeyError: the piece is not one token.
        """
        if isinstance(text_or_bytes, str):
            text = text_or_bytes
            data = text.encode("utf-8", errors="surrogatepass")
        elif isinstance(text_or_bytes, (bytes, bytearray)):
            data = bytes(text_or_bytes)
            text = data.decode("utf-8", errors="replace")
        else:
            from tokkit.errors import InputTypeError

            raise InputTypeError(f"encode_single_token takes one token as str or bytes, found "
                                 f"{type(text_or_bytes).__name__}; pass e.g. 'hello' or b'hello'")
        for sp in self.vocab.specials:  # type: ignore[attr-defined]
            if sp.text == text:  # as tiktoken: a special token's bytes give its special id too
                return sp.id
        return self._bytes_to_id[data]

    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes of one id."""
        return self._decoder.tokens_bytes([token])[0]  # type: ignore[attr-defined]

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """The bytes of each id."""
        return self._decoder.tokens_bytes(tokens)  # type: ignore[attr-defined]

    def token_byte_values(self) -> list[bytes]:
        """The sorted byte strings of the ordinary (non-special) tokens."""
        return sorted(self._bytes_to_id)

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """``(text, start character of each token)``, as tiktoken: a token that starts inside a
        character starts at that character. Raises ``UnicodeDecodeError`` on ids that are not whole
        UTF-8 text, as tiktoken does."""
        from tokkit.formats.offsets import char_starts

        pieces = self.decode_tokens_bytes(tokens)
        return b"".join(pieces).decode("utf-8", errors="strict"), char_starts(pieces)


class TransformersNames:
    """transformers' tokenizer names (mixed into ``Tokenizer``)."""

    def __call__(self, text: str | Sequence[str], *, add_special_tokens: bool = True, return_offsets_mapping: bool = False,
                 allowed_special: Any = NO_SPECIAL, disallowed_special: Any = ALL) -> dict[str, Any]:
        """transformers' ``tok(text)``: ``{"input_ids", "attention_mask"[, "offset_mapping"]}``, for one
        text or a list. As in transformers, ``add_special_tokens`` defaults to True; special strings in the
        text follow tokkit's (tiktoken's) ``allowed_special`` / ``disallowed_special``."""
        kw = dict(allowed_special=allowed_special, disallowed_special=disallowed_special, add_special_tokens=add_special_tokens)
        single = isinstance(text, str)
        texts = [text] if single else text_list(text, "tok(...)", "a str or a list of str")
        if return_offsets_mapping:
            pairs = [self.encode_with_offsets(t, **kw) for t in texts]  # type: ignore[attr-defined]
            ids, offsets = [p[0] for p in pairs], [p[1] for p in pairs]
        else:
            ids = self.encode_batch(texts, **kw)  # type: ignore[attr-defined]
        out: dict[str, Any] = {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        return {k: v[0] for k, v in out.items()} if single else out

    def tokenize(self, text: str, **kw: Any) -> list[str]:
        """The token strings of ``encode(text, **kw)``."""
        return self.convert_ids_to_tokens(self.encode(text, **kw))  # type: ignore[attr-defined]

    @cached_property
    def _spelling(self) -> list[str]:
        """id -> token string in the native library's spelling (module docstring)."""
        b, n = self.backend, self.native  # type: ignore[attr-defined]
        size = len(self.vocab)  # type: ignore[attr-defined]
        if b in ("hf", "gguf"):
            return [n.id_to_token(i) or "" for i in range(size)]
        if b == "spm":
            return [n.id_to_piece(i) for i in range(size)]
        from tokkit.formats.hf_json import bytes_to_unicode

        table = bytes_to_unicode()
        special = {s.id: s.text for s in self.vocab.specials}  # type: ignore[attr-defined]
        return [special.get(i) or "".join(table[c] for c in t) for i, t in enumerate(self.vocab.tokens)]  # type: ignore[attr-defined]

    @cached_property
    def _spelled_ids(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i, s in enumerate(self._spelling):
            if s:
                out.setdefault(s, i)
        return out

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """The token string of one id (an int or integer scalar), or of each id of a list, array or tensor."""
        from tokkit.formats.decoding import as_id_list

        spelling = self._spelling
        got = self._decoder._ints(as_id_list(ids))  # type: ignore[attr-defined]
        return spelling[got[0]] if isinstance(ids, int) or getattr(ids, "ndim", None) == 0 else [spelling[i] for i in got]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | None | list[int | None]:
        """Ids of token strings (None for a string that is no token; transformers gives the unknown id)."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self._spelled_ids.get(tokens, unk)
        return [self._spelled_ids.get(t, unk) for t in tokens]

    def batch_decode(self, sequences: Sequence[Sequence[int]], *, skip_special_tokens: bool = False) -> list[str]:
        """``[decode(s) for s in sequences]`` (a 2-d array or tensor: one text per row; one flat list of ids:
        its one text, as transformers decodes it)."""
        from tokkit.errors import InputTypeError
        from tokkit.formats.decoding import as_id_list

        if isinstance(sequences, (int, str, bytes)) or getattr(sequences, "ndim", 1) == 0:
            raise InputTypeError(f"batch_decode takes a list of id lists, found a single {type(sequences).__name__}; "
                                 "wrap it in a list or call decode()")
        rows = as_id_list(sequences)
        if rows and all(isinstance(i, int) for i in rows):  # one flat sequence: one text, as transformers gives
            rows = [rows]
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in rows]  # type: ignore[attr-defined]

    def get_vocab(self) -> dict[str, int]:
        """``{token string: id}``, added and special tokens included."""
        return dict(self._spelled_ids)

    @cached_property
    def _config_roles(self) -> dict[str, str | None]:
        """``{role: token text or None}`` as the ``tokenizer_config.json`` beside an HF file states them
        (transformers reads the ids from there: Gemma 3's eos is ``<end_of_turn>``, SmolLM2's pad ``<|im_end|>``)."""
        path = self._src.path  # type: ignore[attr-defined]
        if self._src.backend != "hf" or not path:  # type: ignore[attr-defined]
            return {}
        cfg = Path(path).with_name("tokenizer_config.json")
        if not cfg.exists():  # a device or FIFO in its place is named by read_json, not skipped
            return {}
        from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json

        out: dict[str, str | None] = {}
        data = read_json(cfg, max_bytes=SIDE_FILE_MAX_BYTES)
        for role in ("bos", "eos", "pad", "unk"):
            key = f"{role}_token"
            if key in data:
                v = data[key]
                text = v.get("content") if isinstance(v, dict) else v
                out[role] = text if isinstance(text, str) else None
        return out

    def _role_id(self, role: str) -> int | None:
        cfg = self._config_roles
        if role in cfg:  # stated by the config, as transformers reads it (None: the config says there is none)
            text = cfg[role]
            if text is None:
                return None
            by_text = {s.text: s.id for s in self.vocab.specials}  # type: ignore[attr-defined]
            i = by_text.get(text)
            return i if i is not None else self.native.token_to_id(text)  # type: ignore[attr-defined]
        return self.vocab.role_id(role)  # type: ignore[attr-defined]

    def _role_text(self, role: str) -> str | None:
        i = self._role_id(role)
        return None if i is None else self.vocab.tokens[i].decode("utf-8", "replace")  # type: ignore[attr-defined]

    bos_token_id = property(lambda self: self._role_id("bos"))
    eos_token_id = property(lambda self: self._role_id("eos"))
    pad_token_id = property(lambda self: self._role_id("pad"))
    unk_token_id = property(lambda self: self._role_id("unk"))
    bos_token = property(lambda self: self._role_text("bos"))
    eos_token = property(lambda self: self._role_text("eos"))
    pad_token = property(lambda self: self._role_text("pad"))
    unk_token = property(lambda self: self._role_text("unk"))

    @property
    def all_special_ids(self) -> list[int]:
        """The ids ``skip_special_tokens`` drops (those the reference library marks special)."""
        return sorted(self._decoder.skip)  # type: ignore[attr-defined]

    def save_pretrained(self, save_directory: str | Path, *, force: bool = False) -> Path:
        """transformers' name for :meth:`save` (an HF tokenizer folder; refuses an existing one unless ``force``)."""
        return self.save(save_directory, force=force)  # type: ignore[attr-defined]
