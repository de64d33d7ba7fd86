"""Domain byte-level BPE in the KL3M manner (arXiv 2503.17247), on stock HF ``tokenizers``.

Pipeline: optional NFKC / lowercase normalizer; pre-tokenizer = ``Split(domain tokens | GPT-2
regex, "isolated")`` then ``ByteLevel(use_regex=False)`` (plain ``ByteLevel`` with GPT-2's regex
when there are no domain tokens: the same pre-tokens); ``BPE(ignore_merges=True)``; ByteLevel decoder. The byte
alphabet is complete (all 256 bytes), so every text round-trips unless a normalizer is asked for.

Domain tokens are reserved before training (see :mod:`tokkit.train.domain`); special tokens get ids
``0..S-1``, domain tokens the next ids, then the trained tokens. The vocabulary is cut to exactly
``vocab_size`` and optionally padded with reserved special ids (:mod:`tokkit.train.assemble`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from tokkit.errors import TokkitError
from tokkit.formats.hf_json import bytes_to_unicode
from tokkit.train.assemble import Layout, padded_size, relayout
from tokkit.train.domain import GPT2_PATTERN, domain_entries, pretokenize_pattern
from tokkit.train.recipe import TrainRecipe

__all__ = ["VocabTooSmallError", "TrainedModel", "CountsInput", "fit", "byte_level_spelling", "new_byte_level", "train_byte_level"]

LOG = logging.getLogger(__name__)


class VocabTooSmallError(TokkitError, ValueError):
    """The asked vocabulary cannot even hold the alphabet and the reserved tokens."""


@dataclass(frozen=True)
class TrainedModel:
    """A trained tokenizer (``tokenizers.Tokenizer``) and how its vocabulary was laid out."""

    tokenizer: Any
    layout: Layout
    pattern: str  # the pre-tokenizer regex (tiktoken pat_str)
    notes: tuple[str, ...] = ()


def byte_level_spelling(text: str) -> str:
    """``text`` spelled with GPT-2's byte map (``" the"`` -> ``"Ġthe"``)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def normalizer_for(recipe: TrainRecipe) -> Any:
    from tokenizers import normalizers

    parts = ([normalizers.NFKC()] if recipe.nfkc else []) + ([normalizers.Lowercase()] if recipe.lowercase else [])
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else normalizers.Sequence(parts)


def new_byte_level(pattern: str, recipe: TrainRecipe) -> Any:
    """An untrained byte-level BPE tokenizer with ``pattern`` as its pre-tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    norm = normalizer_for(recipe)
    if norm is not None:
        tok.normalizer = norm
    if pattern == GPT2_PATTERN:  # the same pre-tokens, without a second pass over each string
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    return tok


def check_room(recipe: TrainRecipe, n_reserved: int, alphabet: int, what: str) -> None:
    need = len(recipe.special_tokens) + n_reserved + alphabet
    if recipe.vocab_size < need:
        raise VocabTooSmallError(
            f"vocab size {recipe.vocab_size} is smaller than the alphabet: expected at least {need} "
            f"({len(recipe.special_tokens)} special + {n_reserved} reserved domain entries + {alphabet} {what}); "
            f"pass --vocab-size {need} or more")


def hf_progress(progress: bool) -> bool:
    """HF's trainer bars draw only on a terminal; elsewhere (a pipe, a log file) they print blank lines."""
    import sys

    return progress and sys.stderr.isatty()


def trainer_for(recipe: TrainRecipe, vocab_size: int, *, max_token_length: int | None = None,
                initial_alphabet: Sequence[str] | None = None, progress: bool = True) -> Any:
    from tokenizers import pre_tokenizers, trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=recipe.min_frequency, show_progress=hf_progress(progress),
        special_tokens=list(recipe.special_tokens),
        initial_alphabet=list(initial_alphabet) if initial_alphabet is not None else pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=max_token_length,
    )


class CountsInput:
    """Train from a count table instead of documents (:mod:`tokkit.train.bpe_counts`).

    ``checkpoint`` is the merge-loop state file (written every ``checkpoint_seconds``);
    ``resume`` continues from it. The table is handed over once (:meth:`take`), so that neither this
    input nor the trainer's word dictionary stays alive beside the merge loop's own state: that cut
    the loop's peak memory on a 294k-record table by 54 MB (docs/training.md). Deliberately not a
    frozen dataclass: handing over is a change of state.
    """

    def __init__(self, table: Any, *, checkpoint: Any = None, checkpoint_seconds: float = 120.0,
                 resume: bool = False) -> None:
        self._table = table  # tokkit.train.count_table.CountTable until taken
        self.checkpoint = checkpoint
        self.checkpoint_seconds = checkpoint_seconds
        self.resume = resume

    def take(self) -> Any:
        """The table, dropping this input's reference to it (a second call is a programming error)."""
        table, self._table = self._table, None
        if table is None:
            raise RuntimeError("the count table was already handed to a trainer")
        return table


def fit(tok: Any, data: Iterable[list[str]] | CountsInput, recipe: TrainRecipe, vocab_size: int, *,
        max_token_length: int | None = None, initial_alphabet: Sequence[str] | None = None,
        byte_level: bool = True, progress: bool = True,
        again: Callable[[], Iterable[list[str]]] | None = None) -> Any:
    """Train ``tok``'s BPE model on document batches (HF ``BpeTrainer``) or on a count table (the same
    result, merge for merge: :func:`tokkit.train.bpe_counts.train_bpe_counts`); returns the tokenizer.

    ``again()``, when given, yields the same document batches as ``data`` once more: then a corpus whose very
    long pre-tokens would make HF's merge loop quadratic is trained by the port instead, with the same result
    (:mod:`tokkit.train.long_pretokens` states the rule)."""
    from tokenizers import pre_tokenizers

    from tokkit.train.bpe_counts import BpeSpec, to_hf_model, train_bpe_counts

    alphabet = pre_tokenizers.ByteLevel.alphabet() if initial_alphabet is None else list(initial_alphabet)
    spec = BpeSpec(vocab_size, recipe.min_frequency, tuple(recipe.special_tokens), tuple(sorted(set(alphabet))),
                   max_token_length)
    if not isinstance(data, CountsInput):
        from tokkit.native_calls import interruptible
        from tokkit.train.long_pretokens import UseLinearTrainer, Watch, count_pretokens, splitter

        trainer = trainer_for(recipe, vocab_size, max_token_length=max_token_length, initial_alphabet=initial_alphabet,
                              progress=progress)
        watch = Watch(data, splitter(tok)) if again is not None else None
        try:
            # HF's trainer holds no GIL while it merges: run it aside so Ctrl-C / SIGTERM end the command at once
            interruptible(tok.train_from_iterator, watch if watch is not None else data, trainer=trainer)
            return tok
        except UseLinearTrainer:
            assert watch is not None and again is not None
            LOG.info("pre-tokens of up to %d symbols (sum of squares %.3g over %d characters): training with the "
                     "linear merge loop of tokkit.train.bpe_counts (the same merges as HF's)", watch.longest,
                     watch.cost, watch.chars)
            vocab, merges = train_bpe_counts(lambda: count_pretokens(again(), splitter(tok)), spec, progress=progress)
            return to_hf_model(tok, vocab, merges, recipe.special_tokens)
    vocab, merges = train_bpe_counts(lambda: data.take().words(byte_level=byte_level), spec, progress=progress,
                                     checkpoint=data.checkpoint, checkpoint_seconds=data.checkpoint_seconds,
                                     resume=data.resume)
    return to_hf_model(tok, vocab, merges, recipe.special_tokens)


def finish(tok: Any, recipe: TrainRecipe, *, reserved: Sequence[str], head: Sequence[str] = (),
           vocab_size: int | None = None) -> tuple[Any, Layout]:
    """Re-lay out a trained tokenizer (ids, truncation, padding) and rebuild it from JSON."""
    from tokenizers import Tokenizer

    target = vocab_size or recipe.vocab_size
    size = tok.get_vocab_size(with_added_tokens=True)
    if not reserved and not head and size <= target and padded_size(size, recipe.pad_to) == size:
        # Nothing to move, cut or pad (the trainer put the specials at 0..S-1 and kept ignore_merges):
        # skip the JSON round trip, which costs ~0.5 s at 32k entries.
        return tok, Layout(trained=size, reached=size, final=size, reserved=0, dropped_merges=0)
    data = json.loads(tok.to_str())
    layout = relayout(data, specials=recipe.special_tokens, reserved_entries=reserved, head_entries=head,
                      vocab_size=vocab_size or recipe.vocab_size, pad_to=recipe.pad_to)
    data["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False)), layout


def train_byte_level(batches: Iterable[list[str]] | CountsInput, recipe: TrainRecipe, domain_tokens: Sequence[str], *,
                     vocab_size: int | None = None, progress: bool = True,
                     again: Callable[[], Iterable[list[str]]] | None = None) -> TrainedModel:
    """Train a byte-level BPE with ``domain_tokens`` reserved; ``vocab_size`` overrides the recipe's; ``again``:
    the batches once more (see :func:`fit`)."""
    target = vocab_size or recipe.vocab_size
    entries = [byte_level_spelling(t) for t in domain_entries(domain_tokens)]
    check_room(recipe.model_copy(update={"vocab_size": target}), len(entries), 256, "bytes")
    pattern = pretokenize_pattern(domain_tokens)
    tok = new_byte_level(pattern, recipe)
    # Train up to the full size: duplicates of domain entries and the truncation in relayout() take
    # the surplus back, so the final vocabulary is exactly `target` without a second run.
    tok = fit(tok, batches, recipe, target, progress=progress, again=again)
    tok, layout = finish(tok, recipe, reserved=entries, vocab_size=target)
    return TrainedModel(tok, layout, pattern)
