"""Supertokens (multi-word tokens) on stock HF ``tokenizers``, saved as an ordinary ``tokenizer.json``.

Two methods:

* ``two_stage`` -- the SuperBPE curriculum (Liu et al., COLM 2025, arXiv 2503.13423). Stage 1 is a
  regex byte-level BPE with ``t = transition * V`` entries. Stage 2 re-splits text with SuperBPE's
  loose pattern R2 (only digit groups, runs of 2+ punctuation and trailing spaces are isolated, so
  words and single spaces can merge), segments every R2 chunk with the stage-1 merges *as the final
  tokenizer will* (same pattern, same merges), maps each stage-1 token to a private-use character and
  lets a second stock BPE learn the next merges over those symbols. Its merges are translated back
  to byte-level strings and appended after the stage-1 merges, skipping (SuperBPE's vetoes) tokens
  with more than ``max_words`` words or containing ``": "``. Stock ``tokenizers`` cannot resume
  training from merges, which is why stage 2 is this translation (the veto is applied after the
  count, not inside it: a vetoed merge's counts are not redistributed, unlike the SuperBPE fork).
* ``random_split`` -- TokenAdapt SuperTokenizer (arXiv 2505.09738) / KL3M-005: during training, text
  is cut at each whitespace run with probability ``split_probability`` (and always after
  ``max_words`` words); the pieces are BPE "words". At inference there is no splitting at all
  (``ByteLevel(use_regex=False)`` only). Byte-level throughout, so unlike kl3m-005 it is lossless.

Both keep the GPT-2 byte map: every text, emoji included, round-trips.
"""

from __future__ import annotations

import json
import logging
import random
import re
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

from tokkit.formats.hf_json import unicode_to_bytes
from tokkit.native_calls import interruptible
from tokkit.train.assemble import Layout, added_token, padded_size
from tokkit.train.bpe import TrainedModel, check_room, hf_progress, new_byte_level, train_byte_level, trainer_for
from tokkit.train.recipe import SupertokenMethod, TrainRecipe

__all__ = ["R2_PATTERN", "train_supertoken", "word_count"]

LOG = logging.getLogger(__name__)

#: SuperBPE's stage-2 pre-tokenizer (PythonNut/superbpe @ bbd0976).
R2_PATTERN = r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]{2,}[\r\n/]*| +(?!\S)"
_PUA = 0xF0000  # supplementary private-use plane: room for 131k stage-1 ids
_WORDS = re.compile(r"\S+")


def word_count(text: str) -> int:
    """Whitespace-separated words in ``text`` (SuperBPE counts Ġ-separated words)."""
    return len(_WORDS.findall(text))


def _decode(token: str) -> str:
    table = unicode_to_bytes()
    return bytes(table[c] for c in token).decode("utf-8", errors="replace")


def _stage2_words(tok1: Any, batches: Iterable[list[str]], n_special: int, progress: bool) -> Iterator[list[str]]:
    """Each training document as R2 chunks spelled in private-use characters (one per stage-1 token).

    Special tokens (ids ``0..n_special-1``, matched in the text by HF) never join a supertoken.
    """
    for batch in tqdm(batches, desc="stage 2: segment with stage 1", unit="batch", disable=not progress):
        out = []
        for enc in tok1.encode_batch(batch, add_special_tokens=False):
            chunks: dict[int, list[str]] = {}
            for tid, wid in zip(enc.ids, enc.word_ids):
                if tid < n_special or wid is None:
                    continue
                chunks.setdefault(wid, []).append(chr(_PUA + tid))
            out.append(" ".join("".join(c) for c in chunks.values() if len(c) > 1))
        yield out


def _two_stage(corpus_batches: Callable[[], Iterable[list[str]]], recipe: TrainRecipe, progress: bool) -> TrainedModel:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    opts = recipe.supertoken
    V = recipe.vocab_size
    t = max(len(recipe.special_tokens) + 256, round(opts.transition * V))
    check_room(recipe, 0, 256, "bytes")
    stage1 = train_byte_level(corpus_batches(), recipe.model_copy(update={"pad_to": None}), (), vocab_size=t, progress=progress,
                              again=corpus_batches)
    data = json.loads(stage1.tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    id_to_tok = {i: s for s, i in vocab.items()}

    tok1 = new_byte_level(R2_PATTERN, recipe)
    tok1_data = json.loads(tok1.to_str())
    tok1_data["model"] = data["model"]
    tok1_data["added_tokens"] = data["added_tokens"]
    tok1 = Tokenizer.from_str(json.dumps(tok1_data, ensure_ascii=False))

    budget = V - len(vocab)
    s2 = Tokenizer(models.BPE())
    s2.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # The stage-2 alphabet (stage-1 ids seen in multi-token chunks) is at most len(vocab): size the
    # trainer with that bound so the chunks can stream; surplus merges are never used (the loop below
    # stops after `budget` new tokens, and HF's merge order does not depend on vocab_size).
    trainer = trainers.BpeTrainer(vocab_size=len(vocab) + int(budget * 1.3) + 64, min_frequency=recipe.min_frequency,
                                  show_progress=hf_progress(progress), initial_alphabet=[])
    interruptible(s2.train_from_iterator, _stage2_words(tok1, corpus_batches(), len(recipe.special_tokens), progress),
                  trainer=trainer)
    merges2 = json.loads(s2.to_str())["model"]["merges"]

    def spell(sym: str) -> str:
        return "".join(id_to_tok[ord(c) - _PUA] for c in sym)

    new_merges: list[list[str]] = []
    added = vetoed = 0
    for a, b in (m if isinstance(m, list) else m.split(" ", 1) for m in merges2):
        if added >= budget:
            break
        sa, sb = spell(a), spell(b)
        if sa not in vocab or sb not in vocab:
            continue  # built from a vetoed token
        result = sa + sb
        text = _decode(result)
        if word_count(text) > opts.max_words or (opts.veto_colon_space and ": " in text):
            vetoed += 1
            continue
        new_merges.append([sa, sb])
        if result not in vocab:
            vocab[result] = len(vocab)
            added += 1
    LOG.info("stage 2: %d supertokens added, %d merges vetoed", added, vetoed)
    data["model"]["merges"] = [list(m) if not isinstance(m, str) else m.split(" ", 1) for m in data["model"]["merges"]] + new_merges
    data["model"]["ignore_merges"] = True
    data["pre_tokenizer"] = tok1_data["pre_tokenizer"]
    size = len(vocab)
    final = padded_size(size, recipe.pad_to)
    data["added_tokens"] = [a for a in data["added_tokens"] if a["id"] < size] + [
        added_token(size + k, f"<|reserved_{k}|>", special=True) for k in range(final - size)]
    layout = Layout(trained=size, reached=size, final=final, reserved=final - size, dropped_merges=vetoed)
    notes = (f"stage 1: {t} entries; stage 2: {added} supertokens, {vetoed} merges vetoed",)
    return TrainedModel(Tokenizer.from_str(json.dumps(data, ensure_ascii=False)), layout, R2_PATTERN, notes)


def _random_pieces(batches: Iterable[list[str]], p: float, max_words: int, seed: int) -> Iterator[list[str]]:
    rng = random.Random(seed)
    cut = re.compile(r"\s+")
    for batch in batches:
        out: list[str] = []
        for doc in batch:
            start = 0
            words = 0
            for m in cut.finditer(doc):
                words += 1
                if words >= max_words or rng.random() < p:
                    if m.start() > start:
                        out.append(doc[start:m.start()])
                    start, words = m.start(), 0
            if start < len(doc):
                out.append(doc[start:])
        yield out


def _random_split(corpus_batches: Callable[[], Iterable[list[str]]], recipe: TrainRecipe, progress: bool) -> TrainedModel:
    from tokenizers import pre_tokenizers

    from tokkit.train.bpe import finish

    opts = recipe.supertoken
    check_room(recipe, 0, 256, "bytes")
    tok = new_byte_level(".", recipe)  # replaced below: each training piece is one word
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pieces = _random_pieces(corpus_batches(), opts.split_probability, opts.max_words, recipe.seed)
    interruptible(tok.train_from_iterator, pieces, trainer=trainer_for(recipe, recipe.vocab_size, progress=progress))
    tok, layout = finish(tok, recipe, reserved=())
    return TrainedModel(tok, layout, "", (f"random split p={opts.split_probability}, at most {opts.max_words} words per piece",))


def train_supertoken(corpus_batches: Callable[[], Iterable[list[str]]], recipe: TrainRecipe, *, progress: bool = True) -> TrainedModel:
    """Train a supertoken tokenizer; ``corpus_batches()`` must give a fresh pass over the corpus each call."""
    if recipe.supertoken.method == SupertokenMethod.RANDOM_SPLIT:
        return _random_split(corpus_batches, recipe, progress)
    return _two_stage(corpus_batches, recipe, progress)
