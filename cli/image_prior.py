"""``tokkit image fit-prior``, ``image prior train`` and ``image sample``: the priors over image token ids.

The per-position prior (``fit-prior``, for ``encode --entropy``) and the autoregressive prior
(``prior train``, for context-coded ``.tok`` v3 and ``sample``); the commands that *use* a prior
(encode, decode, eval) live in :mod:`tokkit_cli.image`. torch is imported inside each command.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from tokkit_cli.image import _ar_coder, _load, _write, image
from tokkit_cli.main import apply_threads, max_minutes_option, threads_option


@image.command("fit-prior")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Folder of the model's TRAINING images (never the images you evaluate on).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use the first N images only.")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing token_prior.safetensors.")
def fit_prior_cmd(ckpt, data, limit, device, force) -> None:
    """Count codes per token position on training images -> CKPT/token_prior.safetensors (for encode --entropy)."""
    import math

    from tokkit.atomic import atomic_file, check_output
    from tokkit.image.data import image_files, load_images
    from tokkit.image.entropy import PRIOR_FILE, fit_prior

    if not (Path(ckpt) / "model_config.json").is_file():  # a preset, hub id or hub snapshot: not ours to write into
        from tokkit.errors import MissingFileError

        raise MissingFileError(f"fit-prior writes CKPT/{PRIOR_FILE}, so CKPT must be a tokkit checkpoint folder; "
                               f"for a published checkpoint run `tokkit image import {ckpt} -o DIR` and use DIR")
    tok = _load(ckpt, device)
    out = check_output(Path(ckpt) / PRIOR_FILE, force=force)
    t0 = time.time()
    files = image_files(data)[:limit]
    prior = fit_prior(tok, load_images(files, size=tok.config.image_size))
    with atomic_file(out, force=force) as tmp:
        prior.save(tmp)
        tmp.chmod(0o644)  # safetensors recreates the file private
    click.echo(f"wrote {out}: {len(files)} images, N = {prior.max_tokens}, K = {prior.codebook_size}, "
               f"training-set index entropy {prior.fitted_entropy_bits:.2f} bit/position (packed: "
               f"{math.log2(prior.codebook_size):.2f}), prior id {prior.prior_id}, {time.time() - t0:.0f} s")


@image.group("prior")
def prior_group() -> None:
    """Autoregressive prior over the token ids: context-coded .tok (v3) and sampling."""


@prior_group.command("train")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Folder of the tokenizer's TRAINING images (never the images you evaluate on).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Prior folder.")
@click.option("--recipe", default="tiny", show_default=True, help="tiny (CPU, minutes) | base (GPU), or a YAML file.")
@click.option("--steps", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--seed", type=int, default=None)
@threads_option
@max_minutes_option
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:i] (coding always runs on CPU).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in OUT.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
def prior_train_cmd(ckpt, data, out, recipe, steps, batch_size, lr, seed, threads, max_minutes, device, resume, force) -> None:
    """Train a causal transformer on the token ids of CKPT's training images -> OUT (for encode/decode --prior)."""
    from tokkit.image.prior import load_prior_recipe
    from tokkit.image.prior_train import train_prior

    cfg = load_prior_recipe(recipe, {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "threads": threads})
    apply_threads(cfg.threads)
    t0 = time.time()
    r = train_prior(cfg, tokenizer=ckpt, data=data, out=out, device=device, resume=resume, force=force,
                    max_minutes=max_minutes)
    click.echo(f"trained {r.steps} steps on {r.train_sequences} token sequences ({r.tokens_seen} tokens seen, "
               f"{r.params / 1e6:.2f} M params) in {time.time() - t0:.0f} s this call ({r.seconds:.0f} s total), "
               f"peak RSS {r.peak_rss_mb:.0f} MB")
    if r.stopped:
        click.echo(f"stopped by --max-minutes at step {r.steps}; run the same command with --resume to continue")
    click.echo(f"bits per token: train batch {r.train_bits:.3f}, readout images {r.val_bits:.3f}; prior id {r.prior_id} -> {out}")


@image.command("sample")
@click.argument("prior", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(1, 4096), default=16, show_default=True, help="Number of samples.")
@click.option("-k", "--tokens", type=click.IntRange(min=1), default=None, help="Tokens per sample (default N).")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True, help="0 = greedy.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="Tokenizer checkpoint (default: the one the prior was trained for).")
@click.option("--cols", type=click.IntRange(1, 1024), default=8, show_default=True)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output PNG grid.")
@click.option("--force", is_flag=True)
def sample_cmd(prior, count, tokens, temperature, seed, model, cols, out, force) -> None:
    """Sample token sequences from PRIOR and decode them into a PNG grid."""
    from tokkit.atomic import check_output
    from tokkit.errors import MissingFileError
    from tokkit.image.ar_coding import ARCoder
    from tokkit.image.data import grid_png_bytes
    from tokkit.image.errors import TokenCountError

    check_output(out, force=force)
    if count < 1 or temperature < 0:
        raise TokenCountError(f"-n must be >= 1 and --temperature >= 0, found {count} and {temperature}")
    coder = ARCoder.load(prior)
    model = model or coder.tokenizer_path
    if model is None or not Path(model).exists():
        raise MissingFileError(f"the tokenizer of prior {prior} ({model}) is not there; pass --model CKPT")
    tok = _load(Path(model), "cpu")
    _ar_coder(prior, tok)  # refuses a prior of another tokenizer
    ids = coder.sample(count, tokens or coder.max_tokens, temperature=temperature, seed=seed)
    _write(out, grid_png_bytes(tok.detokenize(list(ids)), cols=cols), force=force)
    click.echo(f"wrote {out}: {count} samples of {ids.shape[1]} tokens at temperature {temperature} (prior {coder.prior_id})")
