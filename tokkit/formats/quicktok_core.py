"""quicktok as a plain-text core: its files for a tokenizer's ranks, built once, used only where it passes the self-check.

quicktok-v1 (PyPI, MIT) runs byte-level BPE with hand-compiled pre-tokenizer scanners for the
cl100k, o200k, Llama 3, Qwen and Tekken patterns. It is not exact everywhere: its Llama 3 encodes
``"ューション"`` as 2 tokens where HF and tiktoken give 5. :func:`quick_core` writes the ranks in
quicktok's format once under ``$TOKKIT_HOME/quicktok/<key>`` (``key``: a hash of pattern, NFC flag,
ranks), compares quicktok's ids with the reference core's on the self-check sample
(:data:`tokkit.formats.fast_bpe_check.SAMPLE`, which holds that case), and returns quicktok's
``encode_ordinary`` only when every id is equal; the verdict is kept beside the files. Which core a
tokenizer gets, and when, is :mod:`tokkit.formats.fast_core`'s choice.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["quick_core", "quick_possible"]

log = logging.getLogger(__name__)

#: tiktoken >= 0.8 writes cl100k's pattern with more possessive quantifiers and ``\s++$``; quicktok's
#: cl100k scanner is its grammar (the self-check holds trailing-whitespace texts to confirm it).
_SAME_GRAMMAR = {
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""": "cl100k",
}


def _scanner(pattern: str) -> str | None:
    try:
        from quicktok import _import_core as core
    except ImportError:
        return None
    return core.KNOWN_PATTERNS.get(pattern) or _SAME_GRAMMAR.get(pattern)


def quick_possible(*, ranks: Mapping[bytes, int], pattern: str) -> bool:
    """quicktok is installed, compiles this pattern and holds these ids (no load, no check)."""
    if _scanner(pattern) is None or not ranks:
        return False
    return max(ranks.values()) - min(ranks.values()) < 1 << 18


def _key(pattern: str, nfc: bool, ranks: Mapping[bytes, int], version: str) -> str:
    from tokkit.formats.fast_bpe_check import ranks_key

    return ranks_key(repr((pattern, nfc, version, "offset-v2")).encode(), ranks)


def _build(folder: Any, name: str, ranks: Mapping[bytes, int], scanner: str, nfc: bool) -> None:
    """quicktok's files for ``ranks`` in ``folder``, written in a temporary folder and renamed in;
    ids that start past 0 (Tekken's 1,000 special ids) become quicktok's ``id_offset``."""
    import shutil
    import tempfile

    import quicktok
    from quicktok import _import_core as core

    offset = min(ranks.values())
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-")
    try:
        core.write_files(tmp, name, {t: r - offset for t, r in ranks.items()}, {}, scanner, nfc, offset)
        core.ensure_tables(tmp, os.path.join(os.path.dirname(quicktok.__file__), "data"), scanner, nfc)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.exists():
            raise


def _read_verdict(path: Path) -> dict | None:
    """The cached self-check verdict, or None (absent or unreadable: the check runs again)."""
    try:
        v = json.loads(path.read_text(encoding="utf-8"))
        return v if isinstance(v, dict) and isinstance(v.get("exact"), bool) else None
    except (OSError, ValueError):
        return None


def quick_core(*, ranks: Mapping[bytes, int], pattern: str, nfc: bool, reference: Callable[[str], list[int]],
               name: str = "") -> Callable[[str], list[int]] | None:
    """quicktok's ``encode_ordinary`` for these ranks and pattern if it equals ``reference`` (tiktoken's
    exact core, NFC applied when ``nfc``) on the self-check sample, else None with the reason logged."""
    if not quick_possible(ranks=ranks, pattern=pattern):
        log.info("%s: plain text on tiktoken's core: quicktok is off, not installed, or has no scanner for its pattern", name)
        return None
    import quicktok

    from tokkit.config import tokkit_home
    from tokkit.formats.fast_bpe_check import SAMPLE, write_cache_file

    key = _key(pattern, nfc, ranks, quicktok.__version__)
    folder = tokkit_home() / "quicktok" / key
    verdict_path = folder / "verdict.json"
    try:
        verdict = _read_verdict(verdict_path)
        if verdict is not None and not verdict["exact"]:
            log.info("%s: plain text on tiktoken's core, not quicktok: %s", name, verdict["reason"])
            return None
        if not (folder / "enc.enc").exists():
            _build(folder, "enc", ranks, _scanner(pattern), nfc)  # type: ignore[arg-type]
        encoder = quicktok.Tokenizer("enc", str(folder)).encode_ordinary
    except (OSError, RuntimeError, ValueError) as e:
        log.info("%s: plain text on tiktoken's core: quicktok could not load (%s)", name, e)
        return None
    if verdict is None:
        bad = [t for t in SAMPLE if encoder(t) != reference(t)]
        verdict = {"exact": not bad, "reason": f"self-check: {len(bad)} of {len(SAMPLE)} sample texts differ "
                   f"(first {bad[0][:40]!r})" if bad else ""}
        try:
            write_cache_file(verdict_path, json.dumps(verdict).encode())
        except OSError:
            pass  # a cache: the check runs again next time
    if not verdict["exact"]:
        log.info("%s: plain text on tiktoken's core, not quicktok: %s", name, verdict["reason"])
        return None
    return encoder
