"""Character-level BPE (KL3M char-4k/8k/16k) with a token-length cap that means what it says.

HF's ``BpeTrainer(max_token_length=N)`` counts characters of the pre-tokenized string, keeps
tokens of at most ``N-1`` of them for ``N >= 3`` and ignores ``N = 1, 2`` (tokenizers#1461;
measured in ``../shared/reference/training.md`` §2), which is why KL3M passes ``max_chars + 1``.
tokkit passes ``N + 1`` and then *checks* every vocabulary entry, dropping any longer token and the
merges that build it, so the cap holds whatever the library does.

Two units:

* ``bytes``: byte-level BPE (GPT-2 byte map, all 256 bytes in the alphabet, so no dead ids -- KL3M's
  ``initial_alphabet=chr(0..254)`` left 68 unreachable ids and no ``ÿ``). A token holds at most N bytes.
* ``chars`` (default): BPE over Unicode characters with byte fallback: the alphabet is the characters
  seen in training plus ``<0xNN>`` tokens for every byte that is not already a character token (all
  bytes >= 0x80 and unseen ASCII), so unseen characters and emoji round-trip and no id is dead.
  A token holds at most N characters.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from tokkit.train.assemble import relayout
from tokkit.train.bpe import CountsInput, TrainedModel, VocabTooSmallError, check_room, fit, new_byte_level, normalizer_for
from tokkit.train.domain import GPT2_PATTERN
from tokkit.train.recipe import TrainRecipe, Unit

__all__ = ["train_char", "VocabTooSmallError"]

LOG = logging.getLogger(__name__)


def _hf_cap(n: int) -> int | None:
    # HF keeps tokens of at most cap-1 units for cap >= 3 and ignores cap 1 and 2.
    return n + 1 if n >= 2 else None


def _cap_vocab(data: dict[str, Any], cap: int, keep: set[str]) -> int:
    # Byte-level strings hold one byte per character and char-level strings one character per
    # character (``<0xNN>`` fallbacks are kept apart by the caller), so len() is the length in units.
    vocab = data["model"]["vocab"]
    long = [t for t in vocab if len(t) > cap and t not in keep]
    for t in long:
        del vocab[t]
    if long:
        LOG.info("dropped %d tokens longer than %d units that the trainer produced", len(long), cap)
    return len(long)


def _train_bytes(batches: Iterable[list[str]] | CountsInput, recipe: TrainRecipe, progress: bool,
                 again: Callable[[], Iterable[list[str]]] | None) -> TrainedModel:
    from tokenizers import Tokenizer

    n = recipe.max_token_length or 1
    check_room(recipe, 0, 256, "bytes")
    tok = new_byte_level(GPT2_PATTERN, recipe)
    size = recipe.vocab_size if n >= 2 else len(recipe.special_tokens) + 256  # N = 1: the alphabet only
    tok = fit(tok, batches, recipe, size, max_token_length=_hf_cap(n), progress=progress, again=again)
    data = json.loads(tok.to_str())
    dropped = _cap_vocab(data, n, set(recipe.special_tokens))
    layout = relayout(data, specials=recipe.special_tokens, reserved_entries=(), vocab_size=recipe.vocab_size, pad_to=recipe.pad_to)
    data["model"]["ignore_merges"] = True
    notes = (f"removed {dropped} over-long tokens the trainer made",) if dropped else ()
    return TrainedModel(Tokenizer.from_str(json.dumps(data, ensure_ascii=False)), layout, GPT2_PATTERN, notes)


def _train_chars(batches: Iterable[list[str]] | CountsInput, recipe: TrainRecipe, progress: bool,
                 again: Callable[[], Iterable[list[str]]] | None) -> TrainedModel:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    n = recipe.max_token_length or 1
    tok = Tokenizer(models.BPE(byte_fallback=True))
    norm = normalizer_for(recipe)
    if norm is not None:
        tok.normalizer = norm
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok = fit(tok, batches, recipe, recipe.vocab_size, max_token_length=_hf_cap(n), initial_alphabet=[],
              byte_level=False, progress=progress, again=again)
    data = json.loads(tok.to_str())
    specials = set(recipe.special_tokens)
    alphabet = {t for t in data["model"]["vocab"] if len(t) == 1 and t not in specials}
    fallback = [f"<0x{b:02X}>" for b in range(256) if b >= 0x80 or chr(b) not in alphabet]
    check_room(recipe, len(fallback), len(alphabet), "characters seen in the corpus")
    if n == 1:  # the alphabet only: drop every merge
        data["model"]["vocab"] = {t: i for t, i in data["model"]["vocab"].items() if len(t) == 1 or t in specials}
    dropped = _cap_vocab(data, n, specials)
    layout = relayout(data, specials=recipe.special_tokens, reserved_entries=(), head_entries=fallback,
                      vocab_size=recipe.vocab_size, pad_to=recipe.pad_to)
    # The fallback ids are in the model vocab (relayout put them after the specials).
    notes = (f"removed {dropped} over-long tokens the trainer made",) if dropped else ()
    return TrainedModel(Tokenizer.from_str(json.dumps(data, ensure_ascii=False)), layout, GPT2_PATTERN, notes)


def train_char(batches: Iterable[list[str]] | CountsInput, recipe: TrainRecipe, *, progress: bool = True,
               again: Callable[[], Iterable[list[str]]] | None = None) -> TrainedModel:
    """Train a character-level BPE whose tokens hold at most ``recipe.max_token_length`` units (``again``: the
    batches once more, as for :func:`tokkit.train.bpe.fit`).

    Raises:
        VocabTooSmallError: the vocabulary cannot hold the alphabet (and byte fallbacks).
    """
    if recipe.max_token_unit == Unit.BYTES:
        return _train_bytes(batches, recipe, progress, again)
    return _train_chars(batches, recipe, progress, again)

