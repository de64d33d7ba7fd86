"""``tokkit image``: train, evaluate and use 1D variable-length image tokenizers.

Thin commands: parse, build the config, call :mod:`tokkit.image`, print a summary. torch is imported
inside each command so ``tokkit --help`` stays light.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tokkit_cli.main import apply_threads, cli, max_minutes_option, threads_option

SAMPLERS = ["none", "tail_batch", "nested_uniform", "nested_pow2", "nested_mix", "nested_dual"]
SMOKE_MARGIN_DB = 1.0  # a tokenizer within this of the 2-byte mean-colour code has learnt nothing recognisable
MODEL_HELP = "Checkpoint folder, published TiTok / One-D-Piece checkpoint (file, preset name or hub id)."
FIT_HELP = "Make a non-square input square: crop (centred square) or pad (white borders); then box-resized."


def _write(path: Path, data: bytes, *, force: bool) -> None:
    """Atomic write with ordinary permissions (the temporary file is created private)."""
    import os

    from tokkit.atomic import atomic_file

    with atomic_file(path, force=force) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)


@cli.group("image")
def image() -> None:
    """1D image tokenizers (TiTok / One-D-Piece / FlexTok): any prefix of the tokens decodes."""


@image.command("prepare")
@click.option("--emoji-font", type=click.Path(path_type=Path), default=None,
              help="NotoColorEmoji.ttf (Debian fonts-noto-color-emoji) to render every emoji from.")
@click.option("--folder", "folders", multiple=True, type=click.Path(path_type=Path),
              help="Folder of images (e.g. /usr/share/openclipart/png); repeatable.")
@click.option("--size", type=click.IntRange(8, 4096), default=32, show_default=True, help="Held-out side; training side adds 1/8 for crops.")
@click.option("--heldout-percent", type=click.IntRange(0, 100), default=5, show_default=True, help="Share held out, chosen by sha1 of the file.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def prepare(emoji_font, folders, size, heldout_percent, out, force) -> None:
    """Write OUT/train and OUT/heldout PNG folders from real image sources (split by content hash)."""
    from tokkit.atomic import atomic_dir
    from tokkit.errors import MissingFileError
    from tokkit.image.data import prepare_dataset

    if emoji_font is None and not folders:
        raise MissingFileError("nothing to prepare: pass --emoji-font FILE and/or --folder DIR")
    if emoji_font is not None:
        from tokkit.input_files import regular_file

        regular_file(emoji_font, what="emoji font", expected="pass a .ttf font file (apt-get download fonts-noto-color-emoji)")
    with atomic_dir(out, force=force) as tmp:
        counts = prepare_dataset(out=tmp / "data", size=size, folders=list(folders), emoji_font=emoji_font,
                                 heldout_percent=heldout_percent, train_margin=size // 8)
        for sub in ("train", "heldout"):
            (tmp / "data" / sub).rename(tmp / sub)
        (tmp / "data").rmdir()
    click.echo(f"wrote {out}: {counts['train']} train, {counts['heldout']} held-out images (skipped: "
               f"{counts['skipped_small']} smaller than {size}px, {counts['skipped_unreadable']} unreadable, "
               f"{counts['duplicates']} duplicates)")
    if counts["heldout"] == 0:
        why = ("--heldout-percent 0" if heldout_percent == 0 else
               f"only {counts['train']} usable image(s); at least 2 are needed to hold one out")
        click.echo(f"no held-out image ({why}): `tokkit image eval` needs a folder of held-out images")


@image.command("train")
@click.option("--recipe", default="small", show_default=True, help="tiny | small | base, or a YAML file.")
@click.option("--data", default=None, type=click.Path(path_type=Path),
              help="Folder of training images (e.g. prepare's OUT/train); default: the committed data/image/icons.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Checkpoint folder.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="Length sampler (overrides the recipe).")
@click.option("--steps", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--seed", type=int, default=None)
@threads_option
@max_minutes_option
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:i].")
@click.option("--init", default=None, help="Fine-tune this checkpoint (tokkit folder, published TiTok / One-D-Piece "
                                          "path, preset or hub id) instead of starting from random weights.")
@click.option("--trainable", type=click.Choice(["all", "decoder"]), default=None,
              help="'decoder' freezes encoder and codebook (TiTok stage 2): ids stay valid for existing .tok files.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in OUT.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
def train_cmd(recipe, data, out, sampler, steps, batch_size, lr, seed, threads, max_minutes, device, resume, force,
              init=None, trainable=None) -> None:
    """Train a 1D image tokenizer on real images; resumable safetensors checkpoints in OUT."""
    from tokkit.image import load_recipe, train

    cfg = load_recipe(recipe, {"sampler": sampler, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                               "threads": threads, "init": init, "trainable": trainable})
    apply_threads(cfg.threads)
    t0 = time.time()
    r = train(cfg, data=_default_icons() if data is None else data, out=out, device=device, resume=resume, force=force,
              max_minutes=max_minutes)
    this_call = time.time() - t0
    took = (f"{this_call:.0f} s this call ({r.earlier_seconds + this_call:.0f} s in all calls)" if r.earlier_seconds
            else f"{this_call:.0f} s")
    click.echo(f"trained {r.steps} steps ({r.images_seen} images) in {took}, peak RSS {r.peak_rss_mb:.0f} MB")
    if r.stopped:
        click.echo(f"stopped by --max-minutes at step {r.steps}; run the same command with --resume to continue")
    click.echo(f"final loss {r.final_loss:.5f}, train-crop PSNR at N {r.final_psnr:.2f} dB, codes used "
               f"{r.codes_used}/{r.codebook_size}, per-position entropy {r.position_entropy_bits:.2f} bits -> {out}")
    if r.final_psnr < r.mean_colour_psnr + SMOKE_MARGIN_DB:  # False when either is NaN (no readout)
        click.echo(f"note: reconstructions ({r.final_psnr:.1f} dB) are no better than a flat image of each picture's "
                   f"mean colour ({r.mean_colour_psnr:.1f} dB): {r.steps} steps of this recipe are a smoke test of the "
                   "pipeline, not a usable tokenizer; use --recipe small (docs/image.md, Recipes)")


def _default_icons() -> Path:
    """The 22 icons committed in data/image/icons (the embedded default, as data/legal is for text)."""
    from tokkit.errors import MissingFileError

    d = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"
    if not d.is_dir():
        raise MissingFileError(f"no --data given and the default {d} is absent (an installed copy without the "
                               "repository's data/): pass --data FOLDER of training images")
    return d


def _load(model: Path, device: str):
    from tokkit.image import ImageTokenizer
    from tokkit.image.train import resolve_device

    return ImageTokenizer.load(model, device=resolve_device(device))


def _prior_or_none(ckpt: Path):
    from tokkit.image.entropy import PRIOR_FILE, TokenPrior

    return TokenPrior.load(ckpt) if (Path(ckpt) / PRIOR_FILE).is_file() else None


@image.command("eval")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder of held-out images.")
@click.option("--contrast", "contrasts", multiple=True, type=click.Path(path_type=Path),
              help="Other checkpoint(s) to evaluate on the same images (e.g. trained without tail drop).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use the first N images only.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the results here.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Write a PNG plot here.")
@click.option("--no-codecs", is_flag=True, help="Skip the JPEG/WebP sweeps.")
@click.option("--prior", "ar_prior", type=click.Path(path_type=Path), default=None,
              help="AR prior folder: add AR-coded bytes per k and held-out bits per token (AR vs per-position vs uniform).")
@click.option("--rd", is_flag=True, help="Add the per-image RD table at equal payload budgets (2..64 B) vs JPEG/WebP.")
@click.option("--fit", type=click.Choice(["crop", "pad"]), default="crop", show_default=True, help=FIT_HELP)
@click.option("--upscale", is_flag=True, help="Accept images smaller than the model's input (bicubic upscaling).")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Replace existing --json/--plot files.")
def eval_cmd(ckpt, images, contrasts, limit, json_out, plot, no_codecs, device, force, ar_prior=None, rd=False,
             fit="crop", upscale=False) -> None:
    """PSNR/SSIM against token count k on held-out images, beside JPEG/WebP and trivial codes at equal bytes."""
    from tokkit.atomic import check_output
    from tokkit.image.data import image_files, read_images
    from tokkit.image.evaluate import evaluate, plot_eval

    for p in (json_out, plot):
        if p is not None:
            check_output(p, force=force)
    tok = _load(ckpt, device)
    tok.require_ids()
    files = image_files(images)[:limit]
    loaded = read_images(files, size=tok.config.image_size, fit=fit, upscale=upscale)
    x = loaded.pixels
    t0 = time.time()
    coder = None if ar_prior is None else _ar_coder(ar_prior, tok)
    main = evaluate(tok, x, codecs=not no_codecs, prior=_prior_or_none(ckpt), ar_prior=coder)
    if rd:
        from tokkit.image.rd import rd_table

        main["rd_at_budget"] = rd_table(tok, x, coder=coder, prior=_prior_or_none(ckpt))
    results = {str(ckpt): main}
    for c in contrasts:
        label = str(c) if str(c) not in results else f"{c} (#{len(results) + 1})"
        results[label] = evaluate(_load(c, device), x, codecs=False)
    main["contrast"] = {name: r["per_k"] for name, r in results.items() if r is not main}
    main["images_folder"], main["seconds"] = str(images), round(time.time() - t0, 1)
    _report_resize(loaded, fit)  # quality and bytes below are at the model's input size
    _print_table(results, main)
    if json_out is not None:
        _write(json_out, json.dumps(main, indent=1).encode(), force=force)
        click.echo(f"wrote {json_out}")
    if plot is not None:
        import io

        buf = io.BytesIO()
        plot_eval(results, buf)
        _write(plot, buf.getvalue(), force=force)
        click.echo(f"wrote {plot}")


def _print_table(results: dict, main: dict) -> None:
    names = list(results)
    click.echo(f"{main['images']} images, {main['image_size']} px, N={main['max_tokens']}, K={main['codebook_size']}, "
               f"codes used {main['codes_used']}, index entropy {main['index_entropy_bits_per_position']:.2f} bit/position")
    head = "k  bytes  " + "  ".join(f"PSNR/SSIM[{i}]" for i in range(len(names)))
    click.echo(head)
    for j, row in enumerate(main["per_k"]):
        cells = "  ".join(f"{r['per_k'][j]['psnr']:6.2f}/{r['per_k'][j]['ssim']:.3f}" for r in results.values())
        ent = f"  (entropy-coded {row['entropy_bytes']:.1f} B)" if "entropy_bytes" in row else ""
        click.echo(f"{row['k']:<3}{row['bytes']:>5}  {cells}{ent}")
    for i, n in enumerate(names):
        click.echo(f"[{i}] {n}")
    for b in main["baselines"]:
        click.echo(f"baseline {b['name']:>14}: {b['bytes']:>3} B  {b['psnr']:6.2f} dB / {b['ssim']:.3f}")
    for codec in ("jpeg", "webp"):
        for s in main.get(codec, []):
            click.echo(f"{codec} q={s['quality']:<3} file {s['file_bytes']:6.1f} B  payload {s['payload_bytes']:6.1f} B  "
                       f"{s['psnr']:6.2f} dB / {s['ssim']:.3f}")
    bpt = main.get("held_out_bits_per_token", {})
    click.echo("held-out bits per token: " + ", ".join(f"{k} {v:.3f}" for k, v in bpt.items()))
    if "rd_at_budget" in main:
        cols = [c for c in main["rd_at_budget"][0] if c != "budget" and not c.endswith("_served")]
        click.echo("PSNR at equal payload budget (per image best code within B; mean colour where none fits)")
        click.echo("B    " + "  ".join(f"{c:>20}" for c in cols))
        for row in main["rd_at_budget"]:
            click.echo(f"{row['budget']:<4} " + "  ".join(f"{row[c]:>14.2f} ({row[c + '_served']:.2f})" for c in cols))


def _report_resize(loaded, fit: str) -> None:
    """One line (stderr) naming the inputs that were reduced (or enlarged) to the model's input side."""
    S = loaded.pixels.shape[-1]
    for verb, items in (("reduced", loaded.reduced()),
                        ("upscaled (bicubic)", [(n, wh) for n, wh in zip(loaded.names, loaded.sizes)
                                                if (min(wh) if fit == "crop" else max(wh)) < S])):
        if items:
            shown = ", ".join(f"{Path(n).name} {w}x{h}" for n, (w, h) in items[:3])
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            click.echo(f"note: {verb} {len(items)} image(s) to the model's {S}x{S} input ({fit}, then box filter): "
                       f"{shown}{more}", err=True)


@image.command("add-to-vocab")
@click.option("--model", "model", required=True, type=click.Path(path_type=Path), help=MODEL_HELP)
@click.option("--lm", required=True, help="HF model folder or alias (smollm2) whose tokenizer and embeddings grow.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output HF model folder.")
@click.option("--force", is_flag=True)
def add_to_vocab_cmd(model, lm, out, force) -> None:
    """Append <img_i> tokens to an LM; rows initialised by projecting the codebook into its embedding space."""
    from tokkit.atomic import check_output
    from tokkit.image.vocab_bridge import add_image_tokens
    from tokkit.names import resolve_model

    check_output(out, force=force)
    summary = add_image_tokens(_load(model, "cpu"), resolve_model(lm), out, force=force)
    click.echo(f"wrote {out}: image tokens ids {summary['image_token_ids'][0]}..{summary['image_token_ids'][1]}, "
               f"markers {summary['marker_ids']}, {summary['rows']} rows x {summary['dim']}")


@image.command("import")
@click.argument("source")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output checkpoint folder.")
@click.option("--preset", default=None, help="Published model whose config to use (default: the config.json beside "
                                             "the weights, the hub id's preset, or the tensor shapes).")
@click.option("--family", type=click.Choice(["titok", "one_d_piece"]), default=None,
              help="Override the family (the two share every tensor; One-D-Piece decodes any prefix in distribution).")
@click.option("--force", is_flag=True)
def import_cmd(source, out, preset, family, force) -> None:
    """Convert a published TiTok / One-D-Piece checkpoint (SOURCE: file, folder, preset or hub id in the local HF
    cache; pickled .bin files are read with torch.load(weights_only=True), tensors only) into a tokkit folder."""
    from tokkit.atomic import check_output
    import math

    from tokkit.image.checkpoint import import_checkpoint

    check_output(out, force=force)
    r = import_checkpoint(source, out, preset=preset, family=family, force=force)
    c = r["config"]
    kind = (f"VAE, {c.token_size}-d continuous tokens" if c.quantizer == "vae" else
            f"K={c.vq_size} ({math.log2(c.vq_size):.3g} bit/token), {'two-stage' if c.two_stage else 'single-stage'}")
    click.echo(f"imported {r['source']} -> {out}: {c.family}, {c.image_size} px, N={c.max_tokens}, {kind}, "
               f"{r['params'] / 1e6:.1f} M params, model id {r['model_id']}")


def _ar_coder(folder: Path, tok):
    """Load an AR prior and check that it belongs to the tokenizer ``tok``."""
    from tokkit.image.ar_coding import ARCoder
    from tokkit.image.errors import ModelMismatchError

    coder = ARCoder.load(folder)
    if coder.tokenizer_id != tok.model_id:
        raise ModelMismatchError(f"AR prior {folder} was trained on the tokens of model {coder.tokenizer_id}, but the model "
                                 f"given has id {tok.model_id}; use the prior trained for this checkpoint")
    return coder
