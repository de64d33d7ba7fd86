"""``tokkit train-bpe``, ``tokkit compare`` and ``tokkit export-tiktoken``: parse, build the config, call tokkit.train."""

from __future__ import annotations

from pathlib import Path

import click
from tokkit_cli.main import cli

_KINDS = ["bpe", "char", "supertoken"]


@cli.command("train-bpe")
@click.argument("sources", nargs=-1, required=False)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder (tokenizer.json + HF files).")
@click.option("--kind", type=click.Choice(_KINDS, case_sensitive=False), default=None, help="bpe (domain byte-level), char, supertoken.")
@click.option("--vocab-size", type=int, default=None, help="Final vocabulary size (specials and domain tokens included).")
@click.option("--recipe", default=None, help="Built-in recipe name (recipes/NAME.yaml) or a YAML path; flags override it.")
@click.option("--min-frequency", type=int, default=None)
@click.option("--max-token-length", type=int, default=None, help="char kind: at most N units per token.")
@click.option("--max-token-unit", type=click.Choice(["chars", "bytes"]), default=None)
@click.option("--domain-tokens", "domain_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File with one domain token per line (reserved before training).")
@click.option("--special-token", "special_tokens", multiple=True, help="Special token (repeatable; replaces the recipe's list, ids 0..n-1).")
@click.option("--pad-to", default=None, help="Pad with reserved ids to a multiple of N, or 'pow2'.")
@click.option("--held-out", type=float, default=None, help="Share of documents kept out of training for the summary.")
@click.option("--text-column", default=None, help="jsonl/parquet/dataset text column.")
@click.option("--skip-bad-utf8", is_flag=True, default=None, help="Skip non-UTF-8 documents (counted) instead of failing.")
@click.option("--seed", type=int, default=None)
@click.option("--counts", "counts", multiple=True, type=click.Path(path_type=Path),
              help="Train from count table(s) made by `tokkit count` instead of SOURCES (repeatable; summed).")
@click.option("--prune-below", type=click.IntRange(min=1), default=None, help="With --counts: drop pre-tokens seen fewer times (reported).")
@click.option("--resume", is_flag=True, help="With --counts: continue an interrupted merge loop from its checkpoint.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_bpe(sources, out_dir, kind, vocab_size, recipe, min_frequency, max_token_length, max_token_unit, domain_file,
              special_tokens, pad_to, held_out, text_column, skip_bad_utf8, seed, counts, prune_below, resume, force, quiet):
    """Train a tokenizer on SOURCES (files, folders, globs, PATH@RATE, hf:NAME[:SPLIT]) into OUT.

    Example: tokkit train-bpe data/legal/train.jsonl --vocab-size 2048 -o out/legal-2k

    Or from count tables (the same tokenizer, merge for merge):
    tokkit count data/legal/train.jsonl -o legal.counts && tokkit train-bpe --counts legal.counts --vocab-size 2048 -o out/legal-2k
    """
    if bool(sources) == bool(counts):
        raise click.UsageError("give either SOURCES (text to train on) or --counts TABLE (from `tokkit count`), "
                               f"found {'both' if sources else 'neither'}")
    if (prune_below is not None or resume) and not counts:
        raise click.UsageError("--prune-below and --resume apply to training from --counts")
    from tokkit.train import load_recipe, train_tokenizer

    overrides = {
        "kind": kind, "vocab_size": vocab_size, "min_frequency": min_frequency, "max_token_length": max_token_length,
        "max_token_unit": max_token_unit, "held_out": held_out, "text_column": text_column,
        "skip_bad_utf8": skip_bad_utf8, "seed": seed, "special_tokens": list(special_tokens) or None,
        "pad_to": (pad_to if pad_to in (None, "pow2") else _int(pad_to, "--pad-to")),
    }
    if domain_file is not None:
        from tokkit.text import read_list_file

        lines = read_list_file(domain_file, what="--domain-tokens file", entry="token")
        overrides["domain_tokens"] = [t for t in lines if t and not t.startswith("#")]
    rec = load_recipe(recipe, overrides=overrides)
    res = train_tokenizer(list(sources), out_dir=out_dir, recipe=rec, force=force, progress=not quiet,
                          counts=list(counts), prune_below=prune_below, resume=resume)
    click.echo(res.summary())


def _int(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected an integer or 'pow2', found {value!r}", param_hint=flag) from None


def _read_docs(paths, text_column: str) -> list[str]:
    from tokkit.train.corpus import Corpus, parse_sources

    corpus = Corpus(parse_sources(paths), text_column=text_column)
    return list(corpus.train_docs())


@cli.command("compare")
@click.argument("tokenizers", nargs=-1, required=True)
@click.option("--text", "texts", multiple=True, required=True, help="Text to measure on (txt/jsonl/parquet file, folder or glob); repeatable.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--terms", "terms_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File with one domain term per line: adds a table of tokens per term [default: the terms of the "
                   "first tokenizer's recipe (the legal and financial recipes list the KL3M paper's), else no table].")
@click.option("--no-terms", is_flag=True, help="No domain-term table, even when the recipe defines terms.")
@click.option("--parallel", nargs=2, default=None, metavar="REF OTHER", help="Parallel texts for the parity column.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the report as JSON ('-' for stdout).")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), default=None, help="Write the report as CSV ('-' for stdout).")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Draw bytes/token per tokenizer into a PNG.")
@click.option("--force", is_flag=True, help="Replace existing --json/--csv/--plot files.")
def compare(tokenizers, texts, text_column, terms_file, no_terms, parallel, json_out, csv_out, plot, force):
    """Compare TOKENIZERS (trained folders, aliases, files) on the same raw text; the first is the reference.

    Example: tokkit compare out/legal-2k gpt2 llama3 mistral --text data/legal/heldout.jsonl
    """
    from tokkit.atomic import atomic_file, check_output
    from tokkit.train.compare import compare_tokenizers, recipe_terms
    from tokkit_cli.cost import Cost

    cost = Cost()

    _distinct_outputs({"--json": json_out, "--csv": csv_out, "--plot": plot})
    for p in (json_out, csv_out, plot):
        if p is not None and str(p) != "-":
            check_output(p, force=force)
    terms: tuple[str, ...] = ()
    if terms_file is not None and not no_terms:  # a wrong --terms file fails before the text is read
        from tokkit.text import read_list_file

        terms = tuple(t for t in read_list_file(terms_file, what="--terms file", entry="term") if t.strip())
    docs = _read_docs(texts, text_column)
    if terms_file is None and not no_terms:
        terms = recipe_terms(tokenizers[0])
    par = (_read_docs([parallel[0]], text_column), _read_docs([parallel[1]], text_column)) if parallel else None
    report = compare_tokenizers(list(tokenizers), docs, terms=terms, parallel=par)
    click.echo(f"{len(docs)} documents, {sum(len(d.encode('utf-8')) for d in docs) / 1e6:.3f} MB")
    click.echo(report.table())
    for out, text in ((json_out, report.to_json), (csv_out, report.to_csv)):
        if out is None:
            continue
        if str(out) == "-":
            click.echo(text())
        else:
            with atomic_file(out, force=force) as tmp:
                tmp.write_text(text(), encoding="utf-8")
    if plot is not None:
        report.plot(plot, force=force)  # atomic, refuses an existing file without --force
        click.echo(f"plot -> {plot}")
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    cost.done(f"{len(tokenizers)} tokenizers x {n_bytes:,} bytes")


def _distinct_outputs(outputs: dict[str, Path | None]) -> None:
    """Refuse two report options that name one file (its folder resolved: ``r.json`` and ``../d/./r.json`` are one),
    before any work: the second write would fail after the first, or with --force silently replace it. The name
    itself is not followed: --force replaces a symlink, never its target."""
    import os

    from tokkit.errors import OptionError

    def where(p: Path) -> str:
        head, tail = os.path.split(os.fspath(p))
        return os.path.realpath(p) if tail in ("", ".", "..") else os.path.join(os.path.realpath(head or "."), tail)

    seen: dict[str, str] = {}
    for flag, p in outputs.items():
        if p is None or str(p) == "-":
            continue
        w = where(p)
        if w in seen:
            raise OptionError(f"{seen[w]} and {flag} both name {w}; each report needs its own file: give {flag} "
                              "another path")
        seen[w] = flag


@cli.command("export-tiktoken")
@click.argument("tokenizer", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Rank file to write (OUT.json gets the pattern).")
@click.option("--verify", "verify", multiple=True, help="Text file(s) that must segment identically before anything is written.")
@click.option("--force", is_flag=True, help="Replace existing files.")
def export_tiktoken_cmd(tokenizer, out, verify, force):
    """Export a trained byte-level BPE (folder or tokenizer.json) to exact tiktoken ranks."""
    from tokkit.train.tiktoken_export import export_tiktoken

    texts = _read_docs(verify, "text") if verify else []
    path = export_tiktoken(tokenizer, out, force=force, verify=texts)
    click.echo(f"wrote {path} and {path}.json" + (f" (verified: {len(texts)} texts segment identically)" if texts else ""))


@cli.command("lint-tokenizer")
@click.argument("tokenizer")
def lint_tokenizer_cmd(tokenizer):
    """Check an HF tokenizer (folder, tokenizer.json or alias) for the KL3M-style pitfalls; exit 1 on warnings."""
    from tokkit import load_tokenizer
    from tokkit.errors import FormatError
    from tokkit.train.lint import lint_tokenizer

    tok = load_tokenizer(tokenizer)
    if tok.backend not in ("hf", "gguf"):
        raise FormatError(f"{tokenizer} is a {tok.backend} tokenizer; lint-tokenizer reads HF tokenizer.json files only")
    warnings = lint_tokenizer(tok.native, vocab=tok.vocab)
    for w in warnings:
        click.echo(f"warning: {w}")
    click.echo(f"{tokenizer}: {len(warnings)} warning(s)")
    if warnings:
        raise SystemExit(1)
