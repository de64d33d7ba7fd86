"""Write HF tokenizer files: ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``.

The config names the special tokens by role from the :class:`TextVocab`, so ``AutoTokenizer``
gets bos/eos/pad/unk right; ``clean_up_tokenization_spaces`` is off so decoding stays lossless.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from tokkit.atomic import atomic_dir
from tokkit.vocab import TextVocab

__all__ = ["write_tokenizer_files", "write_tokenizer_folder", "TOKENIZER_FILES"]

#: Files that belong to a tokenizer (replaced, never copied from a source model folder).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json", "tekken.json")


def _role_text(vocab: TextVocab, role: str) -> str | None:
    i = vocab.role_id(role)
    return None if i is None else vocab.tokens[i].decode("utf-8")


def write_tokenizer_files(hf_tokenizer: Any, vocab: TextVocab, folder: str | Path, *,
                          model_max_length: int | None = None, chat_template: str | None = None,
                          role_texts: Mapping[str, str | None] | None = None) -> None:
    """Write the three tokenizer files into an existing ``folder`` (callers wrap this in atomic_dir).
    ``role_texts``: the bos/eos/pad/unk token texts where the source states them (its own
    ``tokenizer_config.json``: ``Tokenizer.eos_token``), else the vocab's roles."""
    d = Path(folder)
    hf_tokenizer.save(str(d / "tokenizer.json"))
    texts = {r: (role_texts[r] if role_texts is not None and r in role_texts else _role_text(vocab, r))
             for r in ("bos", "eos", "pad", "unk")}
    special_map = {f"{r}_token": t for r, t in texts.items() if t is not None}
    extra = [s.text for s in vocab.specials if s.role not in ("bos", "eos", "pad", "unk")]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length or 1_000_000_000_000_000_019_884_624_838_656,
        **special_map,
        "extra_special_tokens": extra,
    }
    if chat_template:
        config["chat_template"] = chat_template
    (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    (d / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2, ensure_ascii=False) + "\n")


def write_tokenizer_folder(hf_tokenizer: Any, vocab: TextVocab, out_dir: str | Path, *, force: bool = False,
                           chat_template: str | None = None, role_texts: Mapping[str, str | None] | None = None) -> Path:
    """Write a tokenizer folder atomically (refuses an existing one unless ``force``)."""
    with atomic_dir(out_dir, force=force) as tmp:
        write_tokenizer_files(hf_tokenizer, vocab, tmp, chat_template=chat_template, role_texts=role_texts)
    return Path(out_dir)
