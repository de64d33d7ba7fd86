"""A loaded tokenizer as an HF ``tokenizers.Tokenizer``, and the chat template beside its source file.

Used by :meth:`tokkit.tokenizer.Tokenizer.to_hf` / ``save``: spm and tiktoken/Tekken encoders are
converted exactly (:mod:`tokkit.formats.convert`); when the family's reference library adds a
beginning-of-text token but the file's post-processor does not, the export gets the reference's template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokkit.vocab import TextVocab

__all__ = ["chat_template", "to_hf"]


def to_hf(native: Any, backend: str, vocab: TextVocab, reference_bos: int | None) -> Any:
    """``native`` (the backend's encoder) as a ``tokenizers.Tokenizer`` that adds ``reference_bos`` like the reference."""
    if backend in ("hf", "gguf"):
        hf = native
    else:
        from tokkit.formats.convert import spm_to_hf, tiktoken_to_hf

        hf = spm_to_hf(native, vocab) if backend == "spm" else tiktoken_to_hf(native)
    if reference_bos is None or hf.encode("a", add_special_tokens=True).ids[:1] == [reference_bos]:
        return hf
    # The reference adds BOS but this file's post-processor does not (npm Llama 3 copy, Tekken):
    # give the exported tokenizer the reference's template, on a copy.
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.processors import TemplateProcessing

    text = vocab.tokens[reference_bos].decode("utf-8")
    hf = HFTokenizer.from_str(hf.to_str())
    hf.post_processor = TemplateProcessing(single=f"{text} $A", pair=f"{text} $A {text}:1 $B:1",
                                           special_tokens=[(text, reference_bos)])
    return hf


def chat_template(source_path: str | None) -> str | None:
    """The chat template of the ``tokenizer_config.json`` (or ``chat_template.jinja``) beside ``source_path``."""
    if not source_path:
        return None
    folder = Path(source_path).parent
    jinja = folder / "chat_template.jinja"
    from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json, read_side_text

    if jinja.exists():
        return read_side_text(jinja)
    cfg = folder / "tokenizer_config.json"
    if cfg.exists() and cfg != Path(source_path):
        template = read_json(cfg, max_bytes=SIDE_FILE_MAX_BYTES).get("chat_template")
        return template if isinstance(template, str) else None
    return None
