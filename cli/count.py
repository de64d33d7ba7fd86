"""``tokkit count``: a corpus -> a sorted pre-token count table (local processes or Ray); thin over tokkit.train.count."""

from __future__ import annotations

from pathlib import Path

import click
from tokkit_cli.main import cli


@cli.command("count")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Count table file to write.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: Ray Data tasks (local cluster, or --address).")
@click.option("--address", default=None, help="Ray cluster address (ray://HOST:10001 or 'auto'); default: start a local one.")
@click.option("--workers", type=click.IntRange(1, 4096), default=None, help="Processes (local) or CPUs of a local Ray cluster; default: all cores.")
@click.option("--recipe", default=None, help="Recipe whose pre-tokenizer and normaliser to count with (as for train-bpe).")
@click.option("--kind", type=click.Choice(["bpe", "char"]), default=None, help="Tokenizer kind the table is for.")
@click.option("--domain-tokens", "domain_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File with one domain token per line (changes the pre-tokenizer of the bpe kind).")
@click.option("--nfkc/--no-nfkc", default=None, help="NFKC-normalise before counting.")
@click.option("--lowercase/--no-lowercase", default=None, help="Lowercase before counting.")
@click.option("--text-column", default=None, help="jsonl/parquet/dataset text column.")
@click.option("--skip-bad-utf8", is_flag=True, default=None, help="Skip non-UTF-8 documents (counted) instead of failing.")
@click.option("--min-count", type=click.IntRange(min=1), default=None, help="Drop pre-tokens seen fewer times from the table (reported).")
@click.option("--shard-bytes", type=click.IntRange(min=4096), default=None, help="Work unit for jsonl files (never changes the table).")
@click.option("--force", is_flag=True, help="Replace an existing table.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def count(sources, out, engine, address, workers, recipe, kind, domain_file, nfkc, lowercase, text_column, skip_bad_utf8,
          min_count, shard_bytes, force, quiet):
    """Count the pre-tokens of SOURCES (files, folders, globs, PATH@RATE, hf:NAME) into a sorted table.

    The table is byte-identical whichever engine and however many workers made it; train from it with
    `tokkit train-bpe --counts TABLE --vocab-size N -o OUT` (the same tokenizer as training on the text).

    Example: tokkit count data/legal/train.jsonl -o legal.counts
    """
    from tokkit.atomic import check_output
    from tokkit.train import load_recipe
    from tokkit.train.count import DEFAULT_SHARD_BYTES, CountSpec, count_corpus

    check_output(out, force=force)
    overrides = {"kind": kind, "nfkc": nfkc, "lowercase": lowercase, "text_column": text_column,
                 "skip_bad_utf8": skip_bad_utf8}
    if domain_file is not None:
        from tokkit.text import read_list_file

        lines = read_list_file(domain_file, what="--domain-tokens file", entry="token")
        overrides["domain_tokens"] = [t for t in lines if t and not t.startswith("#")]
    spec = CountSpec.from_recipe(load_recipe(recipe, overrides=overrides))
    table, stats = count_corpus(list(sources), spec=spec, engine=engine, workers=workers, address=address,
                                shard_bytes=shard_bytes or DEFAULT_SHARD_BYTES, progress=not quiet)
    note = None
    if min_count is not None and min_count > 1:
        table, rep = table.prune(min_count)
        note = (f"  pruned       pre-tokens seen < {min_count} times: {rep['records_before'] - rep['records_after']} of "
                f"{rep['records_before']} records ({rep['records_dropped_share']:.1%}), "
                f"{rep['occurrences_dropped_share']:.2%} of occurrences")
    table.write(out, force=force)
    click.echo(stats.summary(table, out))
    if note:
        click.echo(note)
    click.echo(f"  size         {out.stat().st_size / 1e6:.2f} MB ({out.stat().st_size / max(stats.bytes, 1):.1%} of the text)")
