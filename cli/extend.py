"""``tokkit extend``: grow a model's own tokenizer with merges learnt on new text (old ids and old text untouched)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from tokkit_cli.main import apply_threads, cli, threads_option
from tokkit_cli.rows import read_capped, row_flags, row_options, rows_summary

_METHODS = ["fvt", "heuristic", "omp", "hypernet", "mean", "distill"]

#: Text read from SOURCE for distillation snippets and the output-row fit (the merges read all of it).
ROW_TEXT_BYTES = 64 << 20


@cli.command("extend")
@click.argument("sources", nargs=-1)
@click.option("--model", default=None, help="Model whose own tokenizer to extend (alias or HF folder); writes the model too.")
@click.option("--tokenizer", default=None, help="Extend a tokenizer alone (alias or file), without a model.")
@click.option("--add", type=click.IntRange(min=1), required=True, help="New merges to learn.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--counts", "counts", multiple=True, type=click.Path(path_type=Path),
              help="Count table from `tokkit count` to learn from (repeatable; byte-level families).")
@click.option("--keep-text", "keep", multiple=True, type=click.Path(path_type=Path),
              help="Protected text file whose token ids must not change (repeatable).")
@click.option("--min-frequency", type=click.IntRange(min=1), default=2, show_default=True,
              help="A new merge (or character) must occur at least this often.")
@click.option("--method", type=click.Choice(_METHODS, case_sensitive=False), default="fvt", show_default=True,
              help="How the new rows are built (with --model); distill learns them from the model itself.")
@click.option("--donor", default=None, help="omp: donor model that uses the extended tokenizer.")
@click.option("--hypernet", default=None, type=click.Path(path_type=Path), help="hypernet: checkpoint folder.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda ...")
@threads_option
@row_options
@click.option("--seed", type=int, default=None, help="Seed of snippet selection and batch order [default: 0].")
@click.option("--resume", is_flag=True, help="Continue an interrupted distillation from its checkpoint beside OUT.")
@click.option("--force", is_flag=True, help="Replace an existing output folder (and discard a stray checkpoint).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def extend_command(sources, model, tokenizer, add, out_dir, counts, keep, min_frequency, method, donor, hypernet, device,
                   threads, resume, force, quiet, seed, **rows) -> None:
    """Learn ADD new BPE merges on SOURCES and append them to a tokenizer: every old id, merge and the ids of
    old text stay as they are (exactly, for --keep-text files). With --model, the model gets rows for the
    new ids (old rows copied bit-exactly)."""
    from tokkit.atomic import check_output
    from tokkit.config import peak_rss_mb
    from tokkit.errors import TokkitError
    from tokkit.train.extend_tokenizer import extend_tokenizer, extension_summary, read_texts, write_extension

    if (model is None) == (tokenizer is None):
        raise click.UsageError("give exactly one of --model (extend a model and its tokenizer) or --tokenizer (tokenizer only)")
    if not sources and not counts:
        raise click.UsageError("give at least one SOURCE text file (or --counts TABLE) to learn the new merges from")
    check_output(out_dir, force=force)
    t0 = time.perf_counter()
    keep_texts = read_texts(keep, what="--keep-text") if keep else []
    if keep and not any(keep_texts):
        raise TokkitError(f"--keep-text {', '.join(map(str, keep))} holds no text; give the text whose ids must not change")
    from tokkit.tokenizer import load_tokenizer

    if model is not None:
        from tokkit.names import resolve_model

        folder = resolve_model(model)
        base = load_tokenizer(folder)
    else:
        base = load_tokenizer(tokenizer)
    ext = extend_tokenizer(base, list(sources), add=add, min_frequency=min_frequency, keep_texts=keep_texts,
                           counts=list(counts), progress=not quiet)
    ext.report["tokenizer"] = str(model or tokenizer)
    if model is None:
        out = write_extension(ext, out_dir, force=force)
        for line in extension_summary(ext.report):
            click.echo(line)
        click.echo(f"wrote {out} (tokenizer.json{', tokenizer.tiktoken' if 'tiktoken' not in ext.report else ''}, "
                   f"extend_report.json) in {time.perf_counter() - t0:.1f} s, peak memory {peak_rss_mb():.0f} MB")
        return
    from tokkit.train.extend_tokenizer import twin_files
    from tokkit.transplant.config import Method, TransplantConfig
    from tokkit.transplant.extend import run_extend

    apply_threads(threads)  # the model runs from here on (distill, the output fit)
    flags = row_flags(rows)
    config = TransplantConfig.model_validate({"src": str(folder), "dst": "-", **flags}) if flags else None
    learns = method.lower() == "distill" or flags.get("output_rows") == "fit"
    if learns and not sources:
        raise click.UsageError("--method distill and --output-rows fit read text: give SOURCE text files "
                               "(a --counts table has no text to learn rows from)")
    texts = read_capped(sources, ROW_TEXT_BYTES, what="SOURCE") if learns else []
    result = run_extend(folder, ext, out_dir, method=Method(method.lower()), donor=donor,
                        hypernet=None if hypernet is None else str(hypernet), device=device, force=force,
                        extra_files=twin_files(ext), config=config, seed=seed, texts=texts, keep_texts=keep_texts,
                        resume=resume)
    for line in extension_summary(result.report):
        click.echo(line)
    click.echo(f"new rows: {len(ext.new_ids):,} by {result.report['extension']['method']}; old rows copied bit-exactly")
    for line in rows_summary(result.report):
        click.echo(line)
    click.echo(f"wrote {result.out_dir} (+ transplant_report.json) in {time.perf_counter() - t0:.1f} s, "
               f"peak memory {peak_rss_mb():.0f} MB")
