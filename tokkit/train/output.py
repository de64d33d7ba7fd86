"""Write a trained tokenizer as an HF folder that ``tokenizers`` and ``AutoTokenizer`` load.

Files: ``tokenizer.json``; ``tokenizer_config.json`` (``PreTrainedTokenizerFast``, special-token
roles, ``clean_up_tokenization_spaces: false`` so ``decode`` gives back the exact text);
``special_tokens_map.json``; ``tokkit_train.json`` (reproducibility manifest: recipe, sources,
corpus size, seed, library versions, timings); ``heldout.jsonl`` when documents were held out (one
``{"text": ...}`` per line, in corpus order: what ``tokkit compare OUT ... --text OUT/heldout.jsonl``
measures on). Written atomically (no partial folder on error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from tokkit.atomic import atomic_dir

__all__ = ["write_folder", "special_roles", "HELDOUT_FILE"]

#: The held-out documents of a training run, beside its tokenizer.
HELDOUT_FILE = "heldout.jsonl"

_ROLE_WORDS = (("bos", ("start", "bos", "begin", "<s>")), ("eos", ("end", "eos", "endoftext", "</s>")), ("pad", ("pad",)),
               ("unk", ("unk",)), ("sep", ("sep",)), ("cls", ("cls",)), ("mask", ("mask",)))


def special_roles(specials: Sequence[str]) -> dict[str, str]:
    """transformers' ``{bos,eos,pad,unk,sep,cls,mask}_token`` guessed from the special-token names.

    The first token whose name holds a role word takes the role (``<|start|>`` -> bos,
    ``<|end|>`` -> eos); closing tags such as ``</|system|>`` never take one.
    """
    roles: dict[str, str] = {}
    for role, words in _ROLE_WORDS:
        for s in specials:
            low = s.lower()
            if low.startswith("</|") or s in roles.values():
                continue
            core = low.strip("<>|")
            if core in words or low in words:
                roles[role] = s
                break
    return roles


def write_folder(tok: Any, out_dir: str | Path, *, specials: Sequence[str], manifest: Mapping[str, Any],
                 force: bool = False, held_out: Sequence[str] = ()) -> Path:
    """Write ``tok`` (a ``tokenizers.Tokenizer``) and its companion files into ``out_dir`` atomically
    (and the ``held_out`` documents as ``heldout.jsonl``, when there are any)."""
    roles = special_roles(specials)
    tok.no_padding()
    tok.no_truncation()
    added = {str(i): {"content": a.content, "lstrip": a.lstrip, "normalized": a.normalized, "rstrip": a.rstrip,
                      "single_word": a.single_word, "special": a.special}
             for i, a in sorted(tok.get_added_tokens_decoder().items())}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000_000,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        **{f"{r}_token": t for r, t in roles.items()},
    }
    with atomic_dir(out_dir, force=force) as tmp:
        tok.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "special_tokens_map.json").write_text(
            json.dumps({f"{r}_token": t for r, t in roles.items()}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "tokkit_train.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        if held_out:
            with open(tmp / HELDOUT_FILE, "w", encoding="utf-8") as f:
                for doc in held_out:
                    f.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
    return Path(out_dir)
