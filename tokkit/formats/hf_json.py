"""HF ``tokenizer.json`` -> :class:`TextVocab`; the only module that knows HF token spellings.

Families, read off the decoder (the part of the file that says how ids become text):

* ``byte_level``: GPT-2's byte<->unicode map (``Ġ`` = space), used by GPT-2, Llama 3, Qwen, SmolLM.
* ``sentencepiece``: ``▁`` for space and ``<0xNN>`` byte-fallback tokens (Llama 2, Mistral, Gemma);
  a ``Strip`` decoder means the dummy-prefix space is dropped from decoded text.
* ``wordpiece``: ``##x`` continues a word (bytes ``x``); any other token starts a word and carries
  the separating space (bytes `` x``), dropped at the start of text like SentencePiece's prefix.
  WordPiece normalizers usually lowercase and strip accents, so such vocabs are not lossless.
* ``unigram`` / ``chars``: tokens are their own UTF-8.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.roles import make_specials
from tokkit.vocab import TextVocab

__all__ = ["bytes_to_unicode", "unicode_to_bytes", "vocab_from_json", "vocab_from_json_file", "read_json",
           "read_side_bytes", "read_side_text", "TOKENIZER_JSON_MAX_BYTES", "SIDE_FILE_MAX_BYTES",
           "check_model_ids", "check_native_ids", "file_added_tokens"]

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


#: The most bytes read from a ``tokenizer.json`` (or another tokenizer file given as one): the largest real ones
#: are ~35 MB (Gemma 3), so a device, a FIFO or a wrong multi-GB file is refused instead of filling the memory.
TOKENIZER_JSON_MAX_BYTES = 512 << 20
#: The most bytes read from a small side file of a model or tokenizer folder (``tokenizer_config.json``,
#: ``generation_config.json``, ``config.json``, ``chat_template.jinja``, a safetensors index, a report).
SIDE_FILE_MAX_BYTES = 16 << 20


def read_side_bytes(path: Path, *, max_bytes: int = SIDE_FILE_MAX_BYTES, expected: str | None = None) -> bytes:
    """The bytes of a file in a model or tokenizer folder: only a regular file, at most ``max_bytes``
    (:func:`tokkit.input_files.read_input_bytes`); a missing file is a :class:`MissingFileError`."""
    from tokkit.input_files import read_input_bytes

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise MissingFileError(f"{path} does not exist; check the path or run scripts/fetch_fixtures.py")
    fix = expected or f"replace {path.name} with the regular file the model or tokenizer ships"
    return read_input_bytes(path, what="file", expected=fix, max_bytes=max_bytes)


def read_side_text(path: Path, *, max_bytes: int = SIDE_FILE_MAX_BYTES) -> str:
    """The UTF-8 text (a byte-order mark is dropped) of a side file such as ``chat_template.jinja``,
    read as :func:`read_side_bytes` reads it."""
    raw = read_side_bytes(path, max_bytes=max_bytes)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(f"{path} is not UTF-8 text (byte offset {e.start}); "
                          f"replace {Path(path).name} with a UTF-8 text file") from None


def read_json(path: Path, *, max_bytes: int = TOKENIZER_JSON_MAX_BYTES) -> dict[str, Any]:
    """Read a json file with errors that say which file is broken and how.

    Only a regular file is read, at most ``max_bytes`` (:data:`TOKENIZER_JSON_MAX_BYTES` by default; pass
    :data:`SIDE_FILE_MAX_BYTES` for a small side file): a device or a FIFO is a one-line error, not a hang."""
    path = Path(path)
    raw = read_side_bytes(path, max_bytes=max_bytes)
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a UTF-8 byte-order mark is accepted
    except json.JSONDecodeError as e:
        raise FormatError(
            f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "the file is truncated or corrupted: fetch it again"
        ) from None
    except UnicodeDecodeError as e:
        raise FormatError(f"{path} is not UTF-8 text (byte offset {e.start}); expected a tokenizer.json") from None
    except RecursionError:
        raise FormatError(f"{path} nests JSON too deeply to read; the file is corrupted: fetch it again") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object at the top level, found {type(data).__name__}")
    return data


def _decoders(dec: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not dec:
        return []
    if dec.get("type") == "Sequence":
        return [d for sub in dec.get("decoders", []) for d in _decoders(sub)]
    return [dec]


def _family(data: dict[str, Any]) -> tuple[str, bool]:
    """(family, strip_leading_space) from the decoder chain and the model type."""
    decs = _decoders(data.get("decoder"))
    types = {d.get("type") for d in decs}
    model_type = data.get("model", {}).get("type")
    if "ByteLevel" in types:
        return "byte_level", False
    if "Metaspace" in types:
        d = next(d for d in decs if d.get("type") == "Metaspace")
        strip = d.get("prepend_scheme", "always") != "never" and d.get("add_prefix_space", True)
        return "sentencepiece", bool(strip)
    if any(d.get("type") == "Replace" and d.get("content") == " " and "▁" in json.dumps(d.get("pattern"), ensure_ascii=False) for d in decs):
        strip = any(d.get("type") == "Strip" and d.get("start", 0) >= 1 for d in decs)
        return "sentencepiece", strip
    if "WordPiece" in types or model_type == "WordPiece":
        return "wordpiece", True  # a word-start token carries the space that separates it from the previous word
    if model_type == "Unigram":
        return "unigram", False
    return "chars", False


def _ordinary_id_map(model: dict[str, Any], path_label: str) -> dict[int, str]:
    mtype = model.get("type")
    vocab = model.get("vocab")
    if mtype == "Unigram":
        if not isinstance(vocab, list):
            raise FormatError(f"{path_label}: Unigram model without a vocab list")
        return {i: piece for i, (piece, _score) in enumerate(vocab)}
    if not isinstance(vocab, dict):
        raise FormatError(f"{path_label}: model of type {mtype!r} has no vocab mapping; expected BPE, WordPiece, WordLevel or Unigram")
    return {i: t for t, i in vocab.items()}


def _token_bytes(token: str, family: str, byte_fallback: bool, cont_prefix: str) -> bytes:
    if family == "byte_level":
        table = unicode_to_bytes()
        try:
            return bytes(table[c] for c in token)
        except KeyError:
            return token.encode("utf-8")  # not byte-mapped (added tokens spelled in plain text)
    m = _BYTE_TOKEN.match(token) if byte_fallback else None
    if m:  # <0xNN> byte-fallback tokens, whatever the spelling of the other tokens
        return bytes([int(m.group(1), 16)])
    if family == "sentencepiece":
        return token.replace("▁", " ").encode("utf-8")
    if family == "wordpiece":
        if cont_prefix and token.startswith(cont_prefix):
            return token[len(cont_prefix):].encode("utf-8")
        return b" " + token.encode("utf-8")
    return token.encode("utf-8")


def _config_roles(config: dict[str, Any] | None, by_text: dict[str, int]) -> dict[int, str]:
    roles: dict[int, str] = {}
    if not config:
        return roles
    for role in ("unk", "pad", "bos", "eos"):  # later roles win: a token that is bos and eos is eos
        v = config.get(f"{role}_token")
        text = v.get("content") if isinstance(v, dict) else v
        if isinstance(text, str) and text in by_text:
            roles[by_text[text]] = role
    return roles


def _empty_model(label: str, n_added: int) -> FormatError:
    only = f", only {n_added} added token{'s' * (n_added != 1)}" if n_added else ""
    return FormatError(f"{label}: the model holds no tokens (model.vocab is empty{only}); expected the model's "
                       "vocabulary of token -> id entries: fix the file, or export or train the tokenizer again")


def _check_added(model_token: Callable[[int], str | None], added: list[dict[str, Any]], label: str,
                 free: Callable[[], int]) -> None:
    """An added token whose id the model gives to another token, or two added tokens with one id."""
    seen: dict[int, str] = {}
    for a in added:
        i, content = a["id"], a["content"]
        mt = model_token(i)
        if mt is not None and mt != content:
            raise FormatError(f"{label}: added token {content!r:.40} has id {i}, which model.vocab gives to {mt!r:.40}; "
                              f"each id names one token: give the added token a free id (e.g. {free()}) or remove it")
        if seen.get(i, content) != content:
            raise FormatError(f"{label}: added_tokens give id {i} to two tokens, {seen[i]!r:.40} and {content!r:.40}; "
                              f"each id names one token: give one of them a free id (e.g. {free()}) or remove it")
        seen[i] = content


def check_model_ids(model_ids: dict[int, str], added: list[dict[str, Any]], label: str) -> None:
    """Refuse a model that holds no tokens, and an added token whose id the model gives to another token.

    ``model_ids``: id -> token of ``model.vocab``; ``added``: the (structurally checked) ``added_tokens``.
    An added token that *is* the model's token of that id (``<s>`` at id 1 in both) is what HF writes for
    special tokens of the base vocabulary, and passes. Two added tokens with one id are refused too.
    """
    if not model_ids:
        raise _empty_model(label, len(added))
    _check_added(model_ids.get, added, label, lambda: max([*model_ids, *(a["id"] for a in added)]) + 1)


_WS = re.compile(r"[ \t\n\r]*")


def file_added_tokens(path: str | Path) -> list[dict[str, Any]] | None:
    """The ``added_tokens`` of a ``tokenizer.json`` without parsing the rest: the top-level object is walked
    key by key over a growing prefix of the file, and the walk stops at ``added_tokens`` (HF writes it before
    the large ``model``: a few ms for Gemma 3's 33 MB, against 600 ms for the whole file). None when the file
    has none or is not such JSON (:func:`tokkit.formats.hf_json_check.check_tokenizer_json` names that), or an
    entry lacks an int id or a str content."""
    import codecs

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = 1 << 21
            while True:
                f.seek(0)
                raw = f.read(head)
                whole = len(raw) >= size
                text = codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=whole)
                found = _added_in(text)
                if found is not _MORE or whole:
                    return None if found is _MORE else found
                head *= 4
    except (OSError, UnicodeDecodeError):
        return None


_MORE: Any = object()  # the prefix ended before added_tokens did


def _added_in(text: str) -> Any:
    dec = json.JSONDecoder()
    try:
        i = _WS.match(text, 0).end()
        if text[i:i + 1] != "{":
            return _MORE if i >= len(text) else None
        i = _WS.match(text, i + 1).end()
        while text[i:i + 1] == '"':
            key, i = dec.raw_decode(text, i)
            i = _WS.match(text, i).end()
            if text[i:i + 1] != ":":
                return _MORE if i >= len(text) else None
            value, i = dec.raw_decode(text, _WS.match(text, i + 1).end())
            if key == "added_tokens":
                ok = isinstance(value, list) and all(
                    isinstance(a, dict) and type(a.get("id")) is int and isinstance(a.get("content"), str) for a in value)
                return value if ok else None
            i = _WS.match(text, i).end()
            if text[i:i + 1] != ",":
                return _MORE if i >= len(text) else None
            i = _WS.match(text, i + 1).end()
        return _MORE if i >= len(text) else None
    except ValueError:  # cut by the prefix, or not JSON: the caller reads more, up to the whole file
        return _MORE
    except RecursionError:
        return None


def check_native_ids(tok: Any, label: str, *, path: str | Path | None = None) -> None:
    """:func:`check_model_ids` for a loaded ``tokenizers.Tokenizer`` without parsing its file again.

    HF moves an added token whose id the model already gives away to a new id (``<coll>`` from 77 to 400)
    while tokkit's vocabulary reads the file's id: the two would disagree, so the file's ``added_tokens``
    (``path``: :func:`file_added_tokens`) are checked against the model; without them, the native ones.
    """
    native = tok.get_added_tokens_decoder()
    if tok.get_vocab_size(with_added_tokens=False) == 0:
        raise _empty_model(label, len(native))
    added = file_added_tokens(path) if path is not None else None
    if added is None:
        added = [{"id": i, "content": a.content} for i, a in native.items()]
    model = tok.model
    _check_added(model.id_to_token, added, label,
                 lambda: max([*tok.get_vocab(with_added_tokens=False).values(), *(a["id"] for a in added)]) + 1)


def vocab_from_json(data: dict[str, Any], *, name: str = "", config: dict[str, Any] | None = None) -> TextVocab:
    """Build the vocab of a parsed ``tokenizer.json`` (``config``: its ``tokenizer_config.json``)."""
    from tokkit.formats.hf_json_check import check_tokenizer_json

    check_tokenizer_json(data, name or "tokenizer.json")  # names the defect; bounds ids before allocating
    model = data["model"]
    family, strip = _family(data)
    byte_fallback = bool(model.get("byte_fallback", False))
    cont = model.get("continuing_subword_prefix") or ("##" if family == "wordpiece" else "")
    id_to_tok = _ordinary_id_map(model, name or "tokenizer.json")
    added = data.get("added_tokens") or []
    check_model_ids(id_to_tok, added, name or "tokenizer.json")  # no tokens at all; an added id the model gives away
    for a in added:
        id_to_tok[a["id"]] = a["content"]
    size = max(id_to_tok) + 1 if id_to_tok else 0
    tokens = [b""] * size
    for i, t in id_to_tok.items():
        tokens[i] = _token_bytes(t, family, byte_fallback, cont)
    special_items = [(a["id"], a["content"]) for a in added if a.get("special") or control_like(a["content"])]
    for i, t in special_items:
        tokens[i] = t.encode("utf-8")
    by_text = {t: i for i, t in special_items}
    if model.get("unk_token") in by_text:
        roles = {by_text[model["unk_token"]]: "unk"}
    else:
        roles = {}
    roles.update(_config_roles(config, by_text))
    specials = make_specials(special_items, roles=roles)
    unused = frozenset(range(size)) - frozenset(id_to_tok)
    fallback: tuple[int, ...] = ()
    if family != "byte_level" and byte_fallback:
        found = {int(m.group(1), 16): i for i, t in id_to_tok.items() if (m := _BYTE_TOKEN.match(t))}
        if len(found) == 256:
            fallback = tuple(found[b] for b in range(256))
    return TextVocab(
        tokens=tuple(tokens),
        specials=specials,
        family=family,
        name=name,
        byte_fallback_ids=fallback,
        unused_ids=unused,
        strip_leading_space=strip,
    )


#: HTML tag names: Gemma's added tokens <table>, </td>, <h1> ... are text, encoded as one token each.
_HTML = frozenset("""a abbr address article aside b blockquote body br caption code col colgroup dd del details div dl dt
em figcaption figure footer h1 h2 h3 h4 h5 h6 head header hr html i img input kbd li link main mark meta nav ol p pre q
s section small span strong sub summary sup table tbody td tfoot th thead title tr u ul iframe script style form
button label select option textarea svg canvas video audio source""".split())
_MARKER = re.compile(r"<\|[^|\s]+\|>|<(/?)([A-Za-z_][\w\-]*)>|\[[A-Za-z_][\w\-]*\]")


def control_like(content: str) -> bool:
    """An added token that is a control marker although not flagged special (Gemma's ``<mask>``,
    ``<unused0>``, ``[multimodal]``; Qwen's ``<|fim_prefix|>``, ``<tool_call>``): tokkit treats it as a
    special token (refused in text unless allowed, never spelled by byte-level models). The reference
    libraries match it as one token wherever it occurs; HTML tags such as ``<table>`` stay text."""
    m = _MARKER.fullmatch(content)
    return bool(m) and not (m.group(2) and m.group(2).lower() in _HTML)


def vocab_from_json_file(path: str | Path, *, name: str = "") -> TextVocab:
    """Load ``tokenizer.json`` (and ``tokenizer_config.json`` beside it, for roles)."""
    p = Path(path)
    data = read_json(p)
    cfg_path = p.with_name("tokenizer_config.json")
    config = read_json(cfg_path, max_bytes=SIDE_FILE_MAX_BYTES) if cfg_path.exists() and cfg_path != p else None
    return vocab_from_json(data, name=name or p.name, config=config)
