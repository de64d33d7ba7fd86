"""``decode`` per backend at the native library's speed, with the reference library's text.

One Python call per ``decode``, no Python loop over the ids on the common path:

* tiktoken encodings and Tekken: tiktoken's Rust ``decode_bytes``, which raises ``KeyError`` on an id
  it does not know, so the range check costs nothing; UTF-8 errors become U+FFFD as in tiktoken.
* HF byte-level files that run on tiktoken's core (:mod:`tokkit.formats.fast_bpe`): the same call on
  that core (the ByteLevel decoder concatenates the token bytes, as tiktoken does; added tokens are
  their text; for SmolLM2, whose missing bytes FastBPE gives phantom ranks, a copy without them);
  ``tokenizers`` itself for ``skip_special_tokens``.
* other HF files: ``tokenizers.Tokenizer.decode``, after ``max(ids)`` (``tokenizers`` drops unknown ids
  silently; negative ids raise in its argument conversion).
* sentencepiece: ``SentencePieceProcessor.decode`` (it raises on unknown ids): the unknown piece is
  sentencepiece's `` ⁇ ``, invalid UTF-8 one U+FFFD per byte, as the native library decodes.
  sentencepiece drops control pieces; tokkit keeps their text (``<s>``, ``</s>``) unless
  ``skip_special_tokens``, as transformers and ``tokenizers`` do: by a second processor, loaded once,
  whose control pieces are user-defined (which sentencepiece decodes as their text), so that too is one
  C call (were its model unreadable: the pieces between control ids decoded in segments). With
  ``skip_special_tokens`` unknown ids are dropped before decoding, as transformers does; the ids are
  searched for them only when the decoded text shows the unknown piece's mark.

``skip_special_tokens`` drops :func:`tokkit.formats.special_policy.special_ids` (transformers' rule).
Ids that are in range but name no token (cl100k's unused 100256) decode to nothing.
"""

from __future__ import annotations

from operator import index
from typing import Any, Sequence

from tokkit.errors import InputTypeError, VocabMismatchError

__all__ = ["Decoder", "as_id_list"]


def as_id_list(ids: Any) -> list[int]:
    """``ids`` as a list (numpy arrays and torch tensors through ``tolist``, one C call; one int, as
    transformers' ``decode`` takes it, and a numpy or 0-d tensor scalar as that one id). Text, bytes and
    float arrays are refused here; float or str items of a list by the range check (:meth:`Decoder._ints`)."""
    if type(ids) is list:
        return ids
    if isinstance(ids, int):
        return [ids]
    tolist = getattr(ids, "tolist", None)
    try:
        if isinstance(ids, (str, bytes, bytearray, dict, set, frozenset)):
            raise TypeError
        out = tolist() if tolist is not None else list(ids)
        out = out if isinstance(out, list) else [out]
        if out and not isinstance(out[0], (int, list)):  # a float array or tensor (arrays are of one dtype)
            raise TypeError
    except TypeError:
        raise InputTypeError(f"expected token ids as a list of int (or an integer array or tensor), found "
                             f"{_what(ids)}; pass e.g. [15496, 995] (to encode text, call encode)") from None
    return out


def _what(ids: Any) -> str:
    dtype = getattr(ids, "dtype", None)
    return f"{type(ids).__name__} of dtype {dtype}" if dtype is not None else type(ids).__name__


def _byte_level_decoder(hf: Any) -> bool:
    """The HF decoder is ByteLevel alone, which concatenates token bytes as tiktoken's ``decode_bytes`` does."""
    import json

    dec = getattr(hf, "decoder", None)
    return dec is not None and json.loads(dec.__getstate__()).get("type") == "ByteLevel"


def _without_phantoms(fast: Any) -> Any:
    """A tiktoken ``Encoding`` of ``fast``'s real tokens only: FastBPE gives bytes that no token spells
    (SmolLM2) phantom ranks past the vocabulary, which decoding must refuse as unknown ids."""
    import tiktoken

    p = fast.parts
    return tiktoken.Encoding(name=f"{fast.encoding.name}-decode", pat_str=p.pattern, mergeable_ranks=p.ranks,
                             special_tokens={**p.specials, **p.plain_added})


def _controls_as_text(sp: Any, controls: Sequence[int]) -> Any:
    """A copy of the ``SentencePieceProcessor`` ``sp`` whose ``controls`` pieces are user-defined, so that
    its ``decode`` writes their text where ``sp`` drops them (used for decoding only: user-defined pieces
    would also change encoding); None when the model cannot be rewritten (then segments are decoded)."""
    try:
        from google.protobuf.message import DecodeError
        from sentencepiece import SentencePieceProcessor
        from sentencepiece import sentencepiece_model_pb2 as pb  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        proto = pb.ModelProto()
        proto.ParseFromString(sp.serialized_model_proto())
        for i in controls:
            proto.pieces[i].type = pb.ModelProto.SentencePiece.USER_DEFINED
        return SentencePieceProcessor(model_proto=proto.SerializeToString())
    except (DecodeError, RuntimeError, IndexError, OSError):
        return None


class Decoder:
    """``decode`` / ``decode_bytes`` of one loaded tokenizer (see the module docstring)."""

    def __init__(self, *, backend: str, native: Any, vocab: Any, fast: Any, skip: frozenset[int], name: str) -> None:
        self.backend, self.native, self.vocab, self.name = backend, native, vocab, name
        self.n = len(vocab)
        self.skip = skip
        self._skip_floor = min(skip) if skip else self.n  # every skipped id is >= this
        self._core = None  # tiktoken's Rust core that decodes these ids exactly
        if backend in ("tiktoken", "tiktoken_file", "tekken"):
            self._core = getattr(native, "_core_bpe", None)
        elif fast is not None and _byte_level_decoder(native):
            self._core = getattr(_without_phantoms(fast) if fast._phantom else fast.encoding, "_core_bpe", None)
        if backend == "spm":
            self._controls = tuple(sorted(s.id for s in vocab.specials if native.is_control(s.id)))
            self._unk = native.unk_id()
            # what an unknown id decodes to (' ⁇ '): absent from a decoded text, the ids hold no unknown id
            self._unk_mark = native.decode([self._unk]).strip() if self._unk >= 0 else ""
            self._with_controls: Any = None  # the controls-as-text processor, built at the first decode

    # ------------------------------------------------------------------ errors
    def _bad(self, ids: Sequence[Any]) -> VocabMismatchError:
        for i in ids:
            try:
                ok = 0 <= index(i) < self.n
            except TypeError:
                return VocabMismatchError(f"token ids must be integers, found {i!r} ({type(i).__name__}) in the ids "
                                          f"given to {self.name}'s decode; pass a list of int")
            if not ok:
                return VocabMismatchError(f"token id {i} is out of range for {self.name} ({self.n} ids: 0..{self.n - 1})")
        return VocabMismatchError(f"token ids {list(ids)[:8]}... are not all ints in 0..{self.n - 1} for {self.name}")

    def _ints(self, ids: list[Any]) -> list[int]:
        """The slow path: every id converted and range-checked in Python."""
        try:
            out = [index(i) for i in ids]  # an int or numpy integer; a float or a numeric str is no id
        except TypeError:
            raise self._bad(ids) from None
        if out and (min(out) < 0 or max(out) >= self.n):
            raise self._bad(out)
        return out

    def _skipped(self, ids: list[int]) -> list[int]:
        if not self.skip or not ids or max(ids) < self._skip_floor:
            return ids
        skip = self.skip
        return [i for i in ids if i not in skip]

    # ------------------------------------------------------------------ decode
    def decode(self, ids: Any, *, skip_special_tokens: bool = False) -> str:
        ids = as_id_list(ids)
        b = self.backend
        if b == "spm":
            return self._spm(ids, skip_special_tokens)
        if self._core is not None and not (skip_special_tokens and b in ("hf", "gguf")):
            try:
                ids = self._skipped(ids) if skip_special_tokens else ids
                return self._core.decode_bytes(ids).decode("utf-8", errors="replace")
            except (KeyError, OverflowError, TypeError):  # an unknown id, a negative one, a non-int
                ids = self._skipped(self._ints(ids)) if skip_special_tokens else self._ints(ids)
                return self.bytes_of(ids).decode("utf-8", errors="replace")
        if b in ("hf", "gguf"):
            try:
                if ids and max(ids) >= self.n:
                    raise self._bad(ids)
                return self.native.decode(ids, skip_special_tokens=skip_special_tokens)
            except (OverflowError, TypeError):
                return self.native.decode(self._ints(ids), skip_special_tokens=skip_special_tokens)
        return self.native.decode(self._skipped(self._ints(ids)) if skip_special_tokens else self._ints(ids), errors="replace")

    def _spm(self, ids: list[int], skip: bool) -> str:
        try:
            if not hasattr(type(sum(ids)), "__index__"):  # sentencepiece truncates floats silently (C loop: ~4% here)
                raise TypeError
            return self._spm_native(ids, skip)
        except (IndexError, TypeError, OverflowError):  # an unknown id, a non-int: find and name it
            return self._spm_native(self._ints(ids), skip)

    def _spm_native(self, ids: list[int], skip: bool) -> str:
        sp = self.native
        if skip:  # sentencepiece drops control pieces itself; unknown ids are dropped as transformers does
            text, unk = sp.decode(ids), self._unk
            if unk >= 0 and (not self._unk_mark or self._unk_mark in text) and unk in ids:
                text = sp.decode([i for i in ids if i != unk])  # the scan over ids only when the mark shows
            return text
        if not self._controls:
            return sp.decode(ids)
        if self._with_controls is None:
            self._with_controls = _controls_as_text(sp, self._controls) or False
        if self._with_controls is not False:
            return self._with_controls.decode(ids)
        controls = frozenset(self._controls) & frozenset(ids)
        return self._spm_segments(ids, controls) if controls else sp.decode(ids)

    def _spm_segments(self, ids: list[int], controls: frozenset[int]) -> str:
        """Control pieces as their text; the pieces between them as sentencepiece decodes them, keeping
        the leading space that sentencepiece strips only at the start of the text."""
        sp, out, seg = self.native, [], []
        strip = self.vocab.strip_leading_space

        def flush() -> None:
            if seg:
                text = sp.decode(seg)
                if out and strip and sp.id_to_piece(seg[0]).startswith("\u2581"):
                    text = " " + text
                out.append(text)
                seg.clear()

        for i in ids:
            if i in controls:
                flush()
                out.append(sp.id_to_piece(i))
            else:
                seg.append(i)
        flush()
        return "".join(out)

    # ------------------------------------------------------------------ bytes
    def decode_bytes(self, ids: Any) -> bytes:
        """The exact bytes of ``ids`` (lossless, also for byte-fallback and partial UTF-8 tokens)."""
        ids = as_id_list(ids)
        if self._core is not None:
            try:
                return self._core.decode_bytes(ids)
            except (KeyError, OverflowError, TypeError):
                pass
        return self.bytes_of(self._ints(ids))

    def tokens_bytes(self, ids: Any) -> list[bytes]:
        """The bytes of each id (tiktoken's ``decode_tokens_bytes``; no leading-space stripping)."""
        tokens = self.vocab.tokens
        return [tokens[i] for i in self._ints(as_id_list(ids))]

    def bytes_of(self, ids: list[int]) -> bytes:
        """``decode_bytes`` from the vocab table, for range-checked ints."""
        tokens = self.vocab.tokens
        out = b"".join([tokens[i] for i in ids])
        if self.vocab.strip_leading_space and out[:1] == b" ":
            # HF's Strip decoder drops any leading space; sentencepiece only the "▁" of a piece, not <0x20>
            if not (self.backend == "spm" and ids[0] in frozenset(self.vocab.byte_fallback_ids)):
                out = out[1:]
        return out
