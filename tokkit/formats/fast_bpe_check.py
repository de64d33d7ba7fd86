"""The load-time self-check of :mod:`tokkit.formats.fast_bpe`, with its verdict cached per file.

:func:`fast_encoder` builds a :class:`~tokkit.formats.fast_bpe.FastBPE` and compares it with the HF
encoder on :data:`SAMPLE` (14 languages, code, whitespace/digit/apostrophe edge cases); on any
difference it returns ``None`` with the reason logged, so callers stay on HF.
:func:`load_fast_encoder` does this once per ``tokenizer.json`` (keyed by its bytes, the check
version and the library versions) and caches the verdict under ``$TOKKIT_HOME/fast_bpe``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from tokkit.formats.fast_bpe import FastBPE, NotExactError, _affixes, _unrebuilt, rank_parts

__all__ = ["SAMPLE", "CHECK_VERSION", "fast_encoder", "load_fast_encoder"]

log = logging.getLogger(__name__)

#: The self-check sample: prose in 14 languages, source code and pre-tokenizer edge cases.
SAMPLE: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog. It's 3.14159, isn't it? They'll say we'd've known.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Maß, Straße — ÄÖÜ äöü ß.",
    "Le cœur déçu mais l'âme plutôt naïve, Louÿs rêva de crapaüter en canoë au delà des îles.",
    "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, añoraba a su querido cachorro.",
    "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
    "À noite, vovô Kowalsky vê o ímã cair no pé do pinguim queixoso e vovó põe açúcar no chá.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёжик в тумане.",
    "Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός.",
    "日本語のテキストを正しく分割できるか確認します。東京は２０２４年に晴れ。",
    "我能吞下玻璃而不伤身体。中文分词测试：一二三，四五六。",
    "다람쥐 헌 쳇바퀴에 타고파. 한국어 문장입니다.",
    "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.",
    "עטלף אבק נס דרך מזגן שהתפוצץ כי חם.",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "Pchnąć w tę łódź jeża lub ośm skrzyń fig. Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép. Vår sære Zulu fra badeøya spilte jo whist og quickstep i min taxi.",
    "def f(x):\n    return x ** 2  # square\n\n\tif x >= 10_000:\n\t\tprint(f\"{x!r:>8}\")\r\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot\n/* end */",
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>   \n\n\n",
    "Numbers: 1 12 123 1234 12345 123456 1234567 ٠١٢٣٤٥ ①②③ ¼ ½ Ⅻ 2²",
    "   leading spaces, trailing spaces   \n  \n\n\t\t tabs\t\u00a0nbsp\u2003em\u3000ideographic ",
    "Emoji 🤗🇺🇳👩‍👩‍👧‍👦 ✊🏽 and ZWJ, combining: e\u0301 a\u0308 n\u0303 \u1100\u1161\u11a8 Å Å",
    "APOSTROPHES: 'S 'T 'RE 'VE 'M 'LL 'D — don’t won't Y'ALL 'quoted' ''",
    "mixed123abc 4x4 x86_64 ...!!!??? ---- ____ ==== ++++ \\\\ // ;; '' \"\" ``",
    "\r\n\r\n line\rcarriage\u2028sep\u2029para\x0bvt\x0cff\x85nel",
    # where quicktok's Llama 3 once differed from HF (2 tokens for 5), and no-break spaces in Arabic
    "クリエイティブ・コモンズ 表示—継承 アトリビューション—シェアアライク ューション",
    "trailing whitespace at the very end \n \n\t ",
    "نص\u00a0حكيم\u00a0له، سر\u00a0قاطع\u00a0\u00a0وذو شأن ١٢٣\u00a0عظيم.\u00a0",
    "",
    " ",
    "a",
    "\n",
)



#: Bumped when the checks change, so cached verdicts of older checks are not reused.
CHECK_VERSION = 3


def _verdict_path(blob: bytes) -> Any:
    import hashlib

    import tiktoken
    import tokenizers

    from tokkit.config import tokkit_home

    key = hashlib.sha256(blob + repr((CHECK_VERSION, SAMPLE, tiktoken.__version__, tokenizers.__version__)).encode()).hexdigest()
    return tokkit_home() / "fast_bpe" / f"{key[:32]}.json"


def _read_verdict(path: Any) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_verdict(path: Any, verdict: dict[str, Any]) -> None:
    try:  # a cache: a read-only home only costs the check again next time
        write_cache_file(path, json.dumps(verdict).encode())
    except OSError as e:
        log.debug("fast_bpe verdict not cached: %s", e)


def write_cache_file(path: Any, data: bytes) -> None:
    """``data`` at ``path`` (a file under ``$TOKKIT_HOME``: verdicts, the fast cores' rank files) through a
    temporary beside it and a rename, so a reader never sees half a file; the temporary is removed when
    anything fails. Raises OSError (callers treat a cache that cannot be written as a cache miss)."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ranks_key(salt: bytes, ranks: Mapping[bytes, int]) -> str:
    """32 hex digits naming ``ranks`` (with ``salt``: the pattern, versions) for the fast cores' caches."""
    import hashlib

    h = hashlib.sha256(salt)
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        h.update(rank.to_bytes(4, "little") + len(tok).to_bytes(2, "little") + tok)
    return h.hexdigest()[:32]


def fast_encoder(hf: Any, data: dict[str, Any], *, name: str = "", checked: bool = False) -> FastBPE | None:
    """A :class:`FastBPE` equal to ``hf`` (a ``tokenizers.Tokenizer``), or None with the reason logged.

    ``data``: the parsed ``tokenizer.json`` of ``hf``. ``checked``: the slow checks (tokens rebuilt
    by their own merges, the self-check on :data:`SAMPLE`) already passed for this exact file.
    """
    fast, reason = _build(hf, data, name=name, checked=checked)
    if fast is None:
        log.info("%s: encoding through HF tokenizers, not tiktoken: %s", name or "tokenizer", reason)
    return fast


def _build(hf: Any, data: dict[str, Any], *, name: str, checked: bool) -> tuple[FastBPE | None, str]:
    try:
        parts = rank_parts(data)
        if not checked and not data["model"].get("ignore_merges", False):
            missing = _unrebuilt(hf, data)
            if missing:
                raise NotExactError(f"{len(missing)} tokens are not rebuilt by their own merges (first {missing[:3]!r}) "
                                    "and ignore_merges is off; tiktoken would return them whole")
        fast = FastBPE(parts, name=name, affixes=_affixes(data.get("post_processor")), hf=hf)
        if not checked:
            texts = list(SAMPLE)
            want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
            got = fast.encode_batch(texts, with_special=[False] * len(texts))
            bad = [t for t, x, y in zip(texts, want, got) if x != y]
            if bad:
                raise NotExactError(f"self-check: {len(bad)} of {len(texts)} sample texts differ from HF (first {bad[0][:40]!r})")
    except NotExactError as e:
        return None, str(e)
    return fast, ""


def load_fast_encoder(hf: Any, *, path: str | None, name: str = "") -> FastBPE | None:
    """:func:`fast_encoder` for a loaded HF tokenizer, its verdict cached under ``$TOKKIT_HOME/fast_bpe``.

    ``path``: its ``tokenizer.json`` (None: serialise ``hf``). ``TOKKIT_FAST_BPE=0`` turns it off.
    """
    import os

    if os.environ.get("TOKKIT_FAST_BPE", "1").lower() in ("0", "false", "no"):
        return None
    if path:
        with open(path, "rb") as f:
            blob = f.read()
    else:
        blob = hf.to_str().encode("utf-8")
    if b'"ByteLevel"' not in blob:
        log.info("%s: encoding through HF tokenizers, not tiktoken: not a byte-level tokenizer", name or "tokenizer")
        return None
    vpath = _verdict_path(blob)
    verdict = _read_verdict(vpath)
    if verdict is not None and not verdict.get("exact"):
        log.info("%s: encoding through HF tokenizers, not tiktoken: %s", name or "tokenizer", verdict.get("reason"))
        return None
    fast, reason = _build(hf, json.loads(blob), name=name, checked=verdict is not None)
    if fast is None:
        log.info("%s: encoding through HF tokenizers, not tiktoken: %s", name or "tokenizer", reason)
    if verdict is None:
        _write_verdict(vpath, {"exact": fast is not None, "reason": reason})
    return fast
