"""``tokkit export-tokenizer`` (any tokenizer -> HF folder) and ``tokkit embeddings`` (inspect/extract rows)."""

from __future__ import annotations

import time

import click

from tokkit_cli.main import cli


@cli.command("export-tokenizer")
@click.argument("name_or_path")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(), help="Output folder (HF tokenizer files).")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def export_tokenizer_command(name_or_path: str, out_dir: str, force: bool) -> None:
    """Write NAME_OR_PATH as an HF tokenizer folder that AutoTokenizer loads (exact for spm/tiktoken too)."""
    from tokkit.atomic import check_output
    from tokkit.tokenizer import load_tokenizer

    check_output(out_dir, force=force)
    tok = load_tokenizer(name_or_path)
    out = tok.save(out_dir, force=force)
    click.echo(f"wrote {out} ({len(tok.vocab)} ids, from {tok.backend})")


@cli.command("embeddings")
@click.argument("model")
@click.option("--tokenizer", "tokenizer_name", default=None, help="Pair the rows with this tokenizer (default: the model's own).")
@click.option("-o", "--out", "out_file", default=None, type=click.Path(), help="Also write the rows to this .safetensors file.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def embeddings_command(model: str, tokenizer_name: str | None, out_file: str | None, force: bool) -> None:
    """Show a model's embedding table (rows, dim, tied, norms) and optionally extract it.

    MODEL is an HF model folder, a GGUF file or a model alias (smollm2, gemma3).
    """
    from tokkit.atomic import check_output

    if out_file:
        check_output(out_file, force=force)
    t0 = time.perf_counter()
    from tokkit.names import resolve_model

    path = resolve_model(model)  # torch-free: a bad name or folder fails before torch loads
    from tokkit.embedding import load_model_embeddings, read_gguf_embeddings, save_embeddings
    from tokkit.tokenizer import load_tokenizer

    vocab = load_tokenizer(tokenizer_name).vocab if tokenizer_name else None
    if path.is_file():
        emb = read_gguf_embeddings(path)
        if vocab is not None:
            from tokkit.embedding import EmbeddingTable, ModelEmbeddings

            emb = ModelEmbeddings(EmbeddingTable(vocab, emb.input.weight),
                                  EmbeddingTable(vocab, emb.output.weight) if emb.output is not None else None)
    else:
        emb = load_model_embeddings(path, vocab=vocab)
    w = emb.input.weight.float()
    norms = w.norm(dim=1)
    click.echo(f"{path.name}: {len(emb.input.vocab)} ids, {w.shape[0]} rows x {w.shape[1]} dims, "
               f"{'tied' if emb.tied else 'untied'} output, dtype {emb.input.weight.dtype}")
    click.echo(f"row norms: mean {norms.mean():.4f}, min {norms.min():.4f}, max {norms.max():.4f}")
    if out_file:
        save_embeddings(emb, out_file, force=force)
        click.echo(f"wrote {out_file}")
    click.echo(f"({time.perf_counter() - t0:.1f} s)")
