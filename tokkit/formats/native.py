"""Which native library opens which tokenizer source (HF ``tokenizers``, GGUF, sentencepiece, tiktoken, Tekken).

:class:`Source` is what a :class:`tokkit.tokenizer.Tokenizer` pickles; :func:`open_native` rebuilds the
native encoder from it in any process; :func:`vocab_of` reads its id -> bytes vocabulary and
:func:`hf_ordinary` derives an HF encoder that splits special-token strings like any text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Any

__all__ = ["Source", "WHAT", "open_native", "vocab_of", "hf_ordinary"]


@dataclass(frozen=True)
class Source:
    name: str
    backend: str  # hf | spm | tiktoken | tiktoken_file | tekken | gguf
    path: str | None
    encoding: str = ""


WHAT = {"hf": "tokenizer.json", "gguf": "GGUF", "spm": "sentencepiece .model", "tiktoken": "tiktoken encoding",
         "tiktoken_file": "tiktoken rank", "tekken": "Tekken json"}


def open_native(src: Source) -> Any:
    if src.backend in ("hf", "gguf"):
        from tokkit.formats.hf_json import check_native_ids

        n = _open_hf(src)
        # a model without tokens; an added token on an id the model gives away (the file's ids: HF moves them)
        check_native_ids(n, str(src.path), path=src.path if src.backend == "hf" else None)
        return n
    return _open_other(src)


def _open_hf(src: Source) -> Any:
    """An HF or GGUF source as a ``tokenizers.Tokenizer``; a file it cannot load is named precisely."""
    if src.backend == "gguf":
        from tokkit.formats.gguf_tokenizer import hf_tokenizer_from_gguf

        return hf_tokenizer_from_gguf(src.path)
    from tokenizers import Tokenizer as HFTokenizer

    from tokkit.formats.hf_json import TOKENIZER_JSON_MAX_BYTES, read_json, read_side_bytes

    from tokkit.native_calls import captured_stderr

    try:
        with captured_stderr():  # a Rust panic's raw text stays off the terminal
            return HFTokenizer.from_file(src.path)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as e:  # noqa: BLE001 - panics too; named below, precisely where we can
        from tokkit.errors import FormatError
        from tokkit.formats.hf_json_check import check_tokenizer_json, regex_defect

        data = read_json(Path(src.path))  # parses: a JSON syntax error is named by read_json
        check_tokenizer_json(data, str(src.path), merges=True)  # the entry, id or merge that is wrong
        defect = regex_defect(data, str(src.path))
        if defect:
            raise FormatError(defect) from None
        raw = read_side_bytes(Path(src.path), max_bytes=TOKENIZER_JSON_MAX_BYTES)
        if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark: tokenizers refuses it, we do not
            try:
                return HFTokenizer.from_str(raw[3:].decode("utf-8"))
            except Exception:  # noqa: BLE001
                pass
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise FormatError(f"{src.path} is not a tokenizer.json that HF tokenizers can load ({why}); "
                          "fix the file or export it again") from None


def _open_other(src: Source) -> Any:
    if src.backend == "spm":
        from tokkit.formats.spm import load_spm

        return load_spm(src.path)
    if src.backend == "tekken":
        from tokkit.formats.tekken import tekken_encoding

        return tekken_encoding(src.path)
    if src.backend == "tiktoken":
        from tokkit.fixtures import tiktoken_encoding

        return tiktoken_encoding(src.encoding)
    if src.backend == "tiktoken_file":
        import tiktoken

        from tokkit.formats.tiktoken_file import read_ranks

        from tokkit.fixtures import CL100K_PATTERN

        # A bare rank file carries no pattern: use cl100k's, the one modern rank files are trained with.
        return tiktoken.Encoding(name=src.name, pat_str=CL100K_PATTERN, mergeable_ranks=read_ranks(src.path), special_tokens={})
    raise AssertionError(src.backend)


def vocab_of(src: Source, n: Any) -> Any:
    """The :class:`tokkit.vocab.TextVocab` of the native encoder ``n`` opened from ``src``."""
    b = src.backend
    if b in ("hf", "gguf"):
        import json

        from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json, vocab_from_json

        config = None
        if src.path and b == "hf":
            path = Path(src.path)
            cfg = path.with_name("tokenizer_config.json")
            if cfg.exists() and cfg != path:
                config = read_json(cfg, max_bytes=SIDE_FILE_MAX_BYTES)
            data = read_json(path)  # the file itself: cheaper than serialising the native object again
        else:
            data = json.loads(n.to_str())
        return vocab_from_json(data, name=src.name, config=config)
    if b == "spm":
        from tokkit.formats.spm import vocab_from_spm

        return vocab_from_spm(n, name=src.name)
    from tokkit.formats.tiktoken_file import vocab_from_ranks

    return vocab_from_ranks(n._mergeable_ranks, specials=n._special_tokens, n_vocab=n.n_vocab, name=src.name,
                            family="tekken" if b == "tekken" else "tiktoken")


def hf_ordinary(n: Any, keep: AbstractSet[str] = frozenset()) -> Any:
    """A copy of the HF tokenizer ``n`` that encodes special and added token strings as plain text
    (tiktoken's ``encode_ordinary``), except those in ``keep``, which it still matches as tokens;
    control-like added tokens (Gemma ``<mask>``) count as special."""
    import json

    from tokenizers import Tokenizer as HFTokenizer

    from tokkit.formats.hf_json import control_like

    data = json.loads(n.to_str())
    for a in data.get("added_tokens") or []:
        a["special"] = (bool(a.get("special")) or control_like(a["content"])) and a["content"] not in keep
    tok = HFTokenizer.from_str(json.dumps(data))
    tok.encode_special_tokens = True  # added/special strings are split like any text
    return tok
