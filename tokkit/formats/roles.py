"""Special-token roles: infer ``bos``/``eos``/``pad``/... from a token's literal text.

Config files (``tokenizer_config.json``, GGUF metadata, sentencepiece ids) override these guesses;
the table only fills in what no config states.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from tokkit.vocab import SpecialToken

__all__ = ["guess_role", "make_specials"]

_EXACT = {
    "bos": ("<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "[BOS]", "<BOS>"),
    "eos": ("</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>", "[EOS]", "<EOS>"),
    "pad": ("<pad>", "<|pad|>", "[PAD]", "<PAD>", "<|finetune_right_pad_id|>", "<|padding|>"),
    "unk": ("<unk>", "[UNK]", "<UNK>", "<|unk|>"),
    "mask": ("<mask>", "[MASK]", "<MASK>"),
    "sep": ("[SEP]", "<sep>", "<SEP>"),
    "cls": ("[CLS]", "<cls>", "<CLS>"),
    "eot": ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|eom_id|>", "<|end|>", "<|im_sep|>"),
    "chat": ("<|im_start|>", "<start_of_turn>", "<|start_header_id|>", "<|end_header_id|>", "[INST]",
             "[/INST]", "<|user|>", "<|assistant|>", "<|system|>"),
}
_BY_TEXT = {t: role for role, texts in _EXACT.items() for t in texts}
_CONTAINS = (("fim", "fim"), ("tool", "tool"), ("image", "image"), ("img", "image"), ("vision", "image"))


def guess_role(text: str) -> str:
    """The role a special token's literal text suggests, ``control`` when nothing does."""
    if text in _BY_TEXT:
        return _BY_TEXT[text]
    low = text.lower()
    for needle, role in _CONTAINS:
        if needle in low:
            return role
    return "control"


def make_specials(items: Iterable[tuple[int, str]], *, roles: Mapping[int, str] | None = None) -> tuple[SpecialToken, ...]:
    """Build sorted :class:`SpecialToken` records; ``roles`` (id -> role) overrides the guesses."""
    roles = roles or {}
    out = {i: SpecialToken(i, t, roles.get(i) or guess_role(t)) for i, t in items}
    return tuple(out[i] for i in sorted(out))
