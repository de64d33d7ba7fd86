"""``train_tokenizer``: corpus -> lint -> train (bpe / char / supertoken) -> check -> HF folder -> summary.

Example:
    >>> res = train_tokenizer(["data/legal/train.jsonl"], out_dir="out/legal-2k",      # doctest: +SKIP
    ...                       recipe=load_recipe("legal-32k", overrides={"vocab_size": 2048}))
    >>> print(res.summary())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import platform
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tokkit.atomic import check_output
from tokkit.train.corpus import Corpus, parse_sources
from tokkit.train.domain import expand_domain_tokens
from tokkit.train.lint import lint_recipe, lint_tokenizer
from tokkit.train.output import write_folder
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
            f"  corpus       {self.train_docs} documents, {_size(self.train_bytes)}"
            + (f" ({self.skipped_bad_utf8} non-UTF-8 skipped)" if self.skipped_bad_utf8 else ""),
        ]
        if self.held_out_docs:
            rt = "all round-trip" if not self.held_out_roundtrip_failures else f"{self.held_out_roundtrip_failures} FAIL round-trip"
            lines.append(f"  held-out     {self.held_out_docs} documents, {_size(self.held_out_bytes)}: "
                         f"{self.bytes_per_token:.3f} bytes/token, {rt}")
        else:
            lines.append("  held-out     none (too few documents for the held-out share: pass --held-out 0.1 to measure bytes/token)")
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


def _peak_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if platform.system() != "Darwin" else kb / 2**20


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
                    force: bool = False, progress: bool = True, iterables: Sequence[Iterable[Any]] = ()) -> TrainResult:
    """Train a tokenizer of ``recipe.kind`` on ``sources`` and write an HF folder to ``out_dir``.

    Args:
        sources: ``PATH[@RATE]`` files, folders or globs, or ``hf:NAME[:SPLIT]`` datasets.
        out_dir: output folder (``tokenizer.json`` + HF companion files + ``tokkit_train.json``).
        recipe: the validated recipe (:func:`tokkit.train.load_recipe`).
        force: replace an existing ``out_dir``.
        progress: show progress bars.
        iterables: in-memory sources (strings, or rows with ``recipe.text_column``; e.g. a
            streamed ``datasets.IterableDataset``).

    Returns:
        TrainResult with sizes, costs, held-out bytes/token and warnings.

    Raises:
        OutputExistsError: ``out_dir`` exists and ``force`` is false (checked before any work).
        EmptyCorpusError, NotUtf8Error, MissingFileError, VocabTooSmallError, RecipeError: bad input;
            nothing is written.
    """
    check_output(out_dir, force=force)
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
    if recipe.kind == Kind.BPE:
        from tokkit.train.bpe import train_byte_level

        trained = train_byte_level(corpus.batches(), recipe, domain, progress=progress)
    elif recipe.kind == Kind.CHAR:
        from tokkit.train.char import train_char

        trained = train_char(corpus.batches(), recipe, progress=progress)
    else:
        from tokkit.train.supertoken import train_supertoken

        trained = train_supertoken(corpus.batches, recipe, progress=progress)
    secs["train"] = time.perf_counter() - t0

    tok, layout = trained.tokenizer, trained.layout
    warnings += lint_tokenizer(tok)
    if layout.reached < recipe.vocab_size:
        warnings.append(f"vocab size {recipe.vocab_size} not reached: only {layout.reached} entries could be learnt "
                        f"(min_frequency {recipe.min_frequency}); add text or lower --vocab-size")
    t0 = time.perf_counter()
    hb, ht, hf = _held_out(tok, corpus.held_out) if corpus.held_out else (0, 0, 0)
    secs["held-out"] = time.perf_counter() - t0
    for w in warnings:  # the summary shows them; logged for library users who do not print it
        LOG.info("warning: %s", w)
    manifest = {
        "recipe": recipe.model_dump(mode="json"),
        "sources": [{"path": s.path, "rate": s.rate, "dataset": s.dataset, "sha256": None if s.dataset else _sha256(s.path)}
                    for s in srcs],
        "train_documents": corpus.n_docs, "train_bytes": corpus.n_bytes, "skipped_bad_utf8": corpus.n_bad_utf8,
        "held_out_documents": len(corpus.held_out), "held_out_bytes": hb, "held_out_tokens": ht,
        "pre_tokenizer_pattern": trained.pattern, "domain_tokens": list(domain),
        "vocab": {"asked": recipe.vocab_size, "reached": layout.reached, "final": layout.final, "reserved": layout.reserved},
        "seconds": secs, "versions": _versions(),
    }
    t0 = time.perf_counter()
    out = write_folder(tok, out_dir, specials=recipe.special_tokens, manifest=manifest, force=force)
    secs["write"] = time.perf_counter() - t0
    return TrainResult(
        out_dir=out, kind=recipe.kind.value, vocab_asked=recipe.vocab_size, vocab_reached=layout.reached,
        vocab_final=layout.final, reserved=layout.reserved, train_docs=corpus.n_docs, train_bytes=corpus.n_bytes,
        skipped_bad_utf8=corpus.n_bad_utf8, seconds=secs, peak_rss_mb=_peak_mb(), held_out_docs=len(corpus.held_out),
        held_out_bytes=hb, held_out_tokens=ht, held_out_roundtrip_failures=hf, warnings=tuple(warnings),
        notes=trained.notes, tokenizer=tok)
