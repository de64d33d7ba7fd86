"""``train_tokenizer``: corpus -> lint -> train (bpe / char / supertoken) -> check -> HF folder -> summary.

Example:
    >>> res = train_tokenizer(["data/legal/train.jsonl"], out_dir="out/legal-2k",      # doctest: +SKIP
    ...                       recipe=load_recipe("legal-32k", overrides={"vocab_size": 2048}))
    >>> print(res.summary())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tokkit.atomic import check_output, recover
from tokkit.config import peak_rss_mb
from tokkit.errors import OutputExistsError
from tokkit.train.corpus import Corpus, parse_sources
from tokkit.train.domain import expand_domain_tokens
from tokkit.train.lint import lint_recipe, lint_tokenizer
from tokkit.train.output import HELDOUT_FILE, write_folder
from tokkit.train.recipe import Kind, TrainRecipe

__all__ = ["TrainResult", "train_tokenizer"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and cost (``summary()`` renders it on one screen)."""

    out_dir: Path
    kind: str
    vocab_asked: int
    vocab_reached: int  # before padding
    vocab_final: int  # after padding
    reserved: int
    train_docs: int
    train_bytes: int
    skipped_bad_utf8: int
    seconds: dict[str, float]
    peak_rss_mb: float
    held_out_docs: int
    held_out_bytes: int
    held_out_tokens: int
    held_out_roundtrip_failures: int
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    counted: tuple[int, int] | None = None  # trained from count tables: (distinct pre-tokens, occurrences)
    held_out_share: float | None = None  # the recipe's held_out (0: the user asked for no held-out documents)
    held_out_max_bytes: int | None = None  # the recipe's cap on the held-out sample (0: no document can be held out)
    tokenizer: Any = field(default=None, repr=False, compare=False)

    @property
    def bytes_per_token(self) -> float:
        return self.held_out_bytes / self.held_out_tokens if self.held_out_tokens else float("nan")

    def summary(self) -> str:
        """One screen: sizes, corpus, held-out compression and round trip, time, memory, warnings."""
        reached = "" if self.vocab_reached >= self.vocab_asked else "  (NOT REACHED: corpus too small or too repetitive)"
        pad = f" + {self.reserved} reserved = {self.vocab_final}" if self.reserved else ""
        lines = [
            f"trained {self.kind} tokenizer -> {self.out_dir}",
            f"  vocab        {self.vocab_reached} of {self.vocab_asked} asked{pad}{reached}",
        ]
        if self.counted is not None:
            lines.append(f"  corpus       count table(s): {self.counted[0]} distinct pre-tokens, {self.counted[1]} occurrences")
        else:
            lines.append(f"  corpus       {self.train_docs} documents, {_size(self.train_bytes)}"
                         + (f" ({self.skipped_bad_utf8} non-UTF-8 skipped)" if self.skipped_bad_utf8 else ""))
        if self.counted is not None:
            lines.append("  held-out     none (a count table counts every document): measure with "
                         "`tokkit compare OUT --text HELD_OUT_FILE`")
        elif self.held_out_docs:
            rt = "all round-trip" if not self.held_out_roundtrip_failures else f"{self.held_out_roundtrip_failures} FAIL round-trip"
            lines.append(f"  held-out     {self.held_out_docs} documents, {_size(self.held_out_bytes)}: "
                         f"{self.bytes_per_token:.3f} bytes/token, {rt}; saved as {Path(self.out_dir) / HELDOUT_FILE}")
        elif self.held_out_share == 0:
            lines.append("  held-out     none (--held-out 0: every document trained on)")
        elif self.held_out_max_bytes == 0:
            lines.append("  held-out     none (held_out_max_bytes is 0: the byte cap keeps every document in training; "
                         "raise it or remove it from the recipe to measure bytes/token)")
        else:
            share = f" {self.held_out_share:g}" if self.held_out_share is not None else ""
            fix = "pass --held-out 0.1" if (self.held_out_share or 0) < 0.1 else "add documents"
            lines.append(f"  held-out     none (too few documents for the held-out share{share}: {fix} to measure bytes/token)")
        t = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        lines.append(f"  time         {sum(self.seconds.values()):.1f}s ({t}); peak memory {self.peak_rss_mb:.0f} MB")
        lines += [f"  note         {n}" for n in self.notes]
        lines += [f"  warning      {w}" for w in self.warnings]
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} KB"


def _sha256(path: str) -> str:
    from tokkit.fixtures import sha256_file

    return sha256_file(Path(path))


def _versions() -> dict[str, str]:
    import tokenizers

    import tokkit

    return {"tokkit": tokkit.__version__, "tokenizers": tokenizers.__version__, "python": platform.python_version()}


def _held_out(tok: Any, docs: Sequence[str]) -> tuple[int, int, int]:
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    encs = tok.encode_batch(list(docs), add_special_tokens=False)
    ntok = sum(len(e.ids) for e in encs)
    fails = sum(1 for d, e in zip(docs, encs) if tok.decode(e.ids, skip_special_tokens=False) != d)
    return nbytes, ntok, fails


def train_tokenizer(sources: Sequence[str | Path] = (), *, out_dir: str | Path, recipe: TrainRecipe,
                    force: bool = False, progress: bool = True, iterables: Sequence[Iterable[Any]] = (),
                    counts: Sequence[Any] = (), prune_below: int | None = None, resume: bool = False) -> TrainResult:
    """Train a tokenizer of ``recipe.kind`` on ``sources`` and write an HF folder to ``out_dir``.

    Args:
        sources: ``PATH[@RATE]`` files, folders or globs, or ``hf:NAME[:SPLIT]`` datasets.
        out_dir: output folder (``tokenizer.json`` + HF companion files + ``tokkit_train.json``).
        recipe: the validated recipe (:func:`tokkit.train.load_recipe`).
        force: replace an existing ``out_dir``.
        progress: show progress bars.
        iterables: in-memory sources (strings, or rows with ``recipe.text_column``; e.g. a
            streamed ``datasets.IterableDataset``).
        counts: count tables (paths or :class:`~tokkit.train.count_table.CountTable`) to train from
            instead of ``sources`` (:func:`tokkit.train.count.count_corpus`); the result equals training on
            the text they counted. No held-out measurement (a table counts every document).
        prune_below: with ``counts``, drop pre-tokens seen fewer times (the summary reports the effect).
        resume: with ``counts``, continue an interrupted merge loop from its checkpoint
            (``.OUT.merges.ckpt`` beside ``out_dir``, removed after a successful run).

    Returns:
        TrainResult with sizes, costs, held-out bytes/token and warnings.

    Raises:
        OutputExistsError: ``out_dir`` exists and ``force`` is false (checked before any work).
        EmptyCorpusError, NotUtf8Error, MissingFileError, VocabTooSmallError, RecipeError: bad input;
            nothing is written.
    """
    check_output(out_dir, force=force)
    if counts:
        return _train_from_counts(counts, out_dir=Path(out_dir), recipe=recipe, force=force, progress=progress,
                                  prune_below=prune_below, resume=resume)
    srcs = parse_sources(sources) if sources or not iterables else []
    corpus = Corpus(srcs, text_column=recipe.text_column, skip_bad_utf8=recipe.skip_bad_utf8,
                    held_out_share=recipe.held_out, held_out_max_bytes=recipe.held_out_max_bytes, seed=recipe.seed,
                    extra=iterables)
    domain = expand_domain_tokens(recipe.domain_tokens, recipe.domain_token_sets) if recipe.kind == Kind.BPE else ()
    secs: dict[str, float] = {}

    t0 = time.perf_counter()
    # A partial read for lint; the counts, the held-out split and the UTF-8 / emptiness checks happen
    # during the first training pass (no extra pass over the corpus).
    sample = corpus.sample(100_000)
    if not any(sample):
        list(corpus.train_docs())  # raises EmptyCorpusError with the corpus description
    warnings = lint_recipe(recipe, domain, sample)
    secs["lint"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trained = _train(recipe, domain, corpus.batches(), corpus.batches, progress)
    secs["train"] = time.perf_counter() - t0
    sources_manifest = [{"path": s.path, "rate": s.rate, "dataset": s.dataset, "sha256": None if s.dataset else _sha256(s.path)}
                        for s in srcs]
    return _finish(trained, recipe, domain, out_dir=out_dir, force=force, warnings=warnings, secs=secs, corpus=corpus,
                   sources_manifest=sources_manifest)


def _train(recipe: TrainRecipe, domain: Sequence[str], data: Any, corpus_batches: Any, progress: bool) -> Any:
    if recipe.kind == Kind.BPE:
        from tokkit.train.bpe import train_byte_level

        return train_byte_level(data, recipe, domain, progress=progress, again=corpus_batches)
    if recipe.kind == Kind.CHAR:
        from tokkit.train.char import train_char

        return train_char(data, recipe, progress=progress, again=corpus_batches)
    from tokkit.train.supertoken import train_supertoken

    return train_supertoken(corpus_batches, recipe, progress=progress)


def _train_from_counts(counts: Sequence[Any], *, out_dir: Path, recipe: TrainRecipe, force: bool, progress: bool,
                       prune_below: int | None, resume: bool) -> TrainResult:
    from tokkit.train.bpe import CountsInput
    from tokkit.train.bpe_counts import is_merge_state
    from tokkit.train.from_counts import load_counts

    secs: dict[str, float] = {}
    ckpt = out_dir.with_name(f".{out_dir.name}.merges.ckpt")
    check_output(ckpt, force=True, inputs=[c for c in counts if isinstance(c, (str, Path))], exists_ok=True)
    recover(ckpt)  # temporaries of a checkpoint write that was killed
    if ckpt.exists() and not resume:
        if not force:  # never throw an interrupted run away silently (image train refuses the same way)
            raise OutputExistsError(f"an interrupted merge loop left its checkpoint {ckpt}; pass --resume to continue "
                                    "it, or --force to throw it away and start over")
        if not is_merge_state(ckpt):
            raise OutputExistsError(f"{ckpt} is where tokkit keeps a merge-loop checkpoint, but this file is not one; "
                                    "--force removes only tokkit's own: move it away yourself")
        ckpt.unlink()
    t0 = time.perf_counter()
    loaded = load_counts(counts, recipe, prune_below=prune_below)
    secs["read counts"] = time.perf_counter() - t0
    domain = expand_domain_tokens(recipe.domain_tokens, recipe.domain_token_sets) if recipe.kind == Kind.BPE else ()
    warnings = lint_recipe(recipe, domain, [])
    t0 = time.perf_counter()
    source = CountsInput(loaded.table, checkpoint=ckpt, resume=resume)
    notes, counts_manifest = loaded.notes, loaded.manifest
    del loaded  # the trainer takes the table from `source` and frees it once its merge state is built
    trained = _train(recipe, domain, source, None, progress)
    secs["train"] = time.perf_counter() - t0
    trained = type(trained)(trained.tokenizer, trained.layout, trained.pattern, notes + trained.notes)
    res = _finish(trained, recipe, domain, out_dir=out_dir, force=force, warnings=warnings, secs=secs, corpus=None,
                  sources_manifest=[], counts_manifest=counts_manifest)
    ckpt.unlink(missing_ok=True)
    return res


def _finish(trained: Any, recipe: TrainRecipe, domain: Sequence[str], *, out_dir: str | Path, force: bool,
            warnings: list[str], secs: dict[str, float], corpus: Corpus | None, sources_manifest: list[dict[str, Any]],
            counts_manifest: dict[str, Any] | None = None) -> TrainResult:
    tok, layout = trained.tokenizer, trained.layout
    warnings += lint_tokenizer(tok)
    if layout.reached < recipe.vocab_size:
        warnings.append(f"vocab size {recipe.vocab_size} not reached: only {layout.reached} entries could be learnt "
                        f"(min_frequency {recipe.min_frequency}); add text or lower --vocab-size")
    t0 = time.perf_counter()
    held = corpus.held_out if corpus is not None else []
    hb, ht, hf = _held_out(tok, held) if held else (0, 0, 0)
    secs["held-out"] = time.perf_counter() - t0
    for w in warnings:  # the summary shows them; logged for library users who do not print it
        LOG.info("warning: %s", w)
    n_docs = corpus.n_docs if corpus is not None else 0
    n_bytes = corpus.n_bytes if corpus is not None else 0
    n_bad = corpus.n_bad_utf8 if corpus is not None else 0
    manifest = {
        "recipe": recipe.model_dump(mode="json"),
        "sources": sources_manifest,
        "train_documents": n_docs, "train_bytes": n_bytes, "skipped_bad_utf8": n_bad,
        "held_out_documents": len(held), "held_out_bytes": hb, "held_out_tokens": ht,
        "pre_tokenizer_pattern": trained.pattern, "domain_tokens": list(domain),
        "vocab": {"asked": recipe.vocab_size, "reached": layout.reached, "final": layout.final, "reserved": layout.reserved},
        "seconds": secs, "versions": _versions(),
    }
    if counts_manifest is not None:
        manifest["counts"] = counts_manifest
    t0 = time.perf_counter()
    if held:
        manifest["held_out_file"] = HELDOUT_FILE
    out = write_folder(tok, out_dir, specials=recipe.special_tokens, manifest=manifest, force=force, held_out=held)
    secs["write"] = time.perf_counter() - t0
    return TrainResult(
        out_dir=out, kind=recipe.kind.value, vocab_asked=recipe.vocab_size, vocab_reached=layout.reached,
        vocab_final=layout.final, reserved=layout.reserved, train_docs=n_docs, train_bytes=n_bytes,
        skipped_bad_utf8=n_bad, seconds=secs, peak_rss_mb=peak_rss_mb(), held_out_docs=len(held),
        held_out_bytes=hb, held_out_tokens=ht, held_out_roundtrip_failures=hf, warnings=tuple(warnings),
        notes=trained.notes, tokenizer=tok, held_out_share=recipe.held_out, held_out_max_bytes=recipe.held_out_max_bytes,
        counted=(counts_manifest["records"], counts_manifest["occurrences"]) if counts_manifest is not None else None)
