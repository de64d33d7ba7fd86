"""``tokkit image encode`` / ``decode``: images to a ``.tok`` bitstream and back.

Thin commands over :class:`tokkit.image.ImageTokenizer` and :mod:`tokkit.image.bitstream`; the group,
the model loading and the shared helpers live in :mod:`tokkit_cli.image`. torch is imported inside
each command so ``tokkit --help`` stays light.
"""

from __future__ import annotations

from pathlib import Path

import click

from tokkit_cli.image import FIT_HELP, MODEL_HELP, _ar_coder, _load, _prior_or_none, _report_resize, _write, image


@image.command("encode")
@click.option("--model", "model", required=True, type=click.Path(path_type=Path), help=MODEL_HELP)
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output .tok file.")
@click.option("-k", "--tokens", type=click.IntRange(min=1), default=None, help="Keep the first k tokens (default N).")
@click.option("--min-psnr", type=click.FloatRange(min=0, min_open=True, max=200), default=None, help="Adaptive: smallest k per image reaching this PSNR.")
@click.option("--max-bytes", type=click.IntRange(min=1), default=None, help="Adaptive: most tokens whose payload fits in this many bytes.")
@click.option("--entropy", is_flag=True,
              help="Arithmetic-code the ids with the per-position frequencies of MODEL/token_prior.safetensors "
                   "(see fit-prior); --max-bytes still counts plain packed bytes.")
@click.option("--prior", "ar_prior", type=click.Path(path_type=Path), default=None,
              help="AR prior folder (`image prior train`): context-code the ids (.tok v3); --max-bytes then counts "
                   "the real coded bytes of each image.")
@click.option("--fit", type=click.Choice(["crop", "pad"]), default="crop", show_default=True, help=FIT_HELP)
@click.option("--upscale", is_flag=True, help="Accept images smaller than the model's input (bicubic upscaling).")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True)
def encode_cmd(model, images, out, tokens, min_psnr, max_bytes, entropy, device, force, ar_prior=None, fit="crop",
               upscale=False) -> None:
    """Tokenize IMAGES into one .tok file (bits per pixel printed, at the inputs' own size)."""
    from tokkit.atomic import check_output
    from tokkit.image import pack
    from tokkit.image.data import read_images
    from tokkit.image.errors import TokenCountError

    check_output(out, force=force)
    if sum(v is not None for v in (tokens, min_psnr, max_bytes)) > 1:
        raise TokenCountError("pass at most one of -k/--tokens, --min-psnr, --max-bytes")
    tok = _load(model, device)
    coder = _ar_coder(ar_prior, tok) if ar_prior is not None else None
    if coder is not None and entropy:
        raise TokenCountError("pass one of --entropy (per-position prior, .tok v2) or --prior (AR prior, .tok v3)")
    tok.require_ids()
    loaded = read_images(list(images), size=tok.config.image_size, fit=fit, upscale=upscale)
    x = loaded.pixels
    if min_psnr is not None or max_bytes is not None:
        lists = tok.encode_adaptive(x, min_psnr=min_psnr, max_bytes=max_bytes, ar_prior=coder)
    else:
        lists = tok.tokenize(x, max_tokens=tokens)
    prior = None
    if entropy:
        from tokkit.image.entropy import TokenPrior

        prior = TokenPrior.load(model)
    data = pack(lists, model_id=tok.model_id, codebook_size=tok.config.codebook_size,
                max_tokens=tok.config.max_tokens, image_size=tok.config.image_size, prior=prior, ar_prior=coder)
    _write(out, data, force=force)
    S = tok.config.image_size
    model_px, in_px = len(lists) * S * S, loaded.input_pixels()
    bpp = f"{8 * len(data) / model_px:.4f} bits per pixel"
    if in_px != model_px:  # bits per pixel of what the user gave, then of what the model saw
        bpp = (f"{8 * len(data) / in_px:.4f} bits per pixel of the inputs as given ({in_px:,} pixels; "
               f"{8 * len(data) / model_px:.4f} at the model's {S}x{S} input)")
    click.echo(f"wrote {out}: {len(lists)} images, tokens {[len(t) for t in lists]}, {len(data)} bytes, "
               f"{bpp} (model {tok.model_id})")
    _report_resize(loaded, fit)  # after the work: a failed run prints its one error line only


@image.command("decode")
@click.option("--model", "model", required=True, type=click.Path(path_type=Path), help=MODEL_HELP)
@click.argument("tokfile", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path),
              help="Output image file for a one-image .tok (.png; .jpg/.jpeg at quality 95; .webp lossless; .bmp; "
                   ".tif; .gif), else a folder (any name without an image extension) of 00000.png, 00001.png, ...")
@click.option("-k", "--tokens", type=click.IntRange(min=1), default=None,
              help="Decode only the first K stored tokens of each image (default: all of them).")
@click.option("--prior", "ar_prior", type=click.Path(path_type=Path), default=None,
              help="AR prior folder for a context-coded (.tok v3) file.")
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True)
def decode_cmd(model, tokfile, out, device, force, ar_prior=None, tokens=None) -> None:
    """Decode a .tok file to PNG(s), optionally from a shorter prefix; refuses a file written by another model.

    OUT with an image extension (out.png, out.jpg, ...) is one image file, for a .tok of one image; any other
    OUT is a folder of 00000.png, 00001.png, ... (one file per image)."""
    from tokkit.atomic import atomic_dir, check_output
    from tokkit.errors import OptionError
    from tokkit.image import unpack
    from tokkit.image.data import SAVE_FORMATS, to_image_bytes, to_png_bytes
    from tokkit.image.errors import TokenCountError
    from tokkit.input_files import read_input_bytes

    check_output(out, force=force)
    raw = read_input_bytes(tokfile, what=".tok file", expected="pass a .tok file written by `tokkit image encode`")
    tok = _load(model, device)
    tok.require_ids()
    parsed = unpack(raw, expect_model_id=tok.model_id, source=str(tokfile), prior=_prior_or_none(model),
                    ar_prior=None if ar_prior is None else _ar_coder(ar_prior, tok),
                    expect_codebook_size=tok.config.codebook_size, expect_max_tokens=tok.config.max_tokens,
                    expect_image_size=tok.config.image_size)
    ids = list(parsed.ids)
    as_file = out.suffix.lower() in SAVE_FORMATS
    if as_file and len(ids) != 1:
        raise OptionError(f"-o {out} names one image file, but {tokfile} holds {len(ids)} images; pass a folder name "
                          f"without an image extension (e.g. -o {out.with_suffix('')}) to write 00000.png ... there")
    if tokens is not None:
        short = [i for i, t in enumerate(ids) if len(t) < tokens]
        if short:
            raise TokenCountError(f"-k {tokens} asks for more tokens than {tokfile} stores: image {short[0]} has "
                                  f"{len(ids[short[0]])}; pass -k at most {min(len(t) for t in ids)}")
        ids = [t[:tokens] for t in ids]
    imgs = tok.detokenize(ids)
    if as_file:
        _write(out, to_image_bytes(imgs[0], out.suffix), force=force)
    else:
        with atomic_dir(out, force=force) as tmp:
            for i, im in enumerate(imgs):
                (tmp / f"{i:05d}.png").write_bytes(to_png_bytes(im))
    stored = f" of {[len(t) for t in parsed.ids]} stored" if tokens is not None else ""
    click.echo(f"decoded {len(imgs)} images (tokens {[len(t) for t in ids]}{stored}) -> {out}")
