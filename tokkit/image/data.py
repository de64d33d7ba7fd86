"""Real images in, ``(B, 3, S, S)`` float tensors out: loading, conversion notes, splits, crops.

* :func:`load_images` / :func:`read_images` read files for the API/CLI (:mod:`tokkit.image.files`: frame 0 of an
  animation, the EXIF orientation applied, every Pillow failure one :class:`~tokkit.errors.FormatError`). Each
  image first becomes RGB at its own size — grayscale and palette images converted, 16-bit / 32-bit / float
  grayscale scaled by their bit depth, alpha composited onto white (each with a logged note) — then the one RGB
  path makes it square — ``fit="crop"`` (default) takes the centred square, ``fit="pad"`` pads the short side with
  white — and resizes it to S with a box filter (area average). An image smaller than S is refused unless
  ``upscale=True`` (bicubic): upscaling invents detail the codec is then credited for. :func:`read_images` also
  returns each file's own size, so callers can report the reduction and state bits per pixel at the input's size.
* :func:`prepare_dataset` turns sources (an emoji font rendered with Pillow, folders of PNG/JPEG such as
  Debian's openclipart-png or scikit-image's bundled photos) into ``train/`` and ``heldout/`` folders of
  PNGs. The split is by sha1 of the source name, so a held-out image can never enter training.
* :class:`CropSampler` draws seeded random crops + horizontal flips from a folder loaded into memory.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from tokkit.errors import EmptyInputError, FormatError, InputTypeError, MissingFileError
from tokkit.image.errors import ImageSizeError
from tokkit.image.files import open_image, to_rgb
from tokkit.input_files import regular_file

__all__ = ["open_image", "load_images", "read_images", "LoadedImages", "FITS", "image_files", "prepare_dataset", "CropSampler",
           "render_emoji", "to_png_bytes", "to_image_bytes", "SAVE_FORMATS", "grid_png_bytes"]

log = logging.getLogger(__name__)
EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
FITS = ("crop", "pad")  # how a non-square image becomes square before resizing


def image_files(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; refuses a missing or empty folder."""
    d = Path(folder)
    if not d.is_dir():
        if d.exists() or d.is_symlink():
            raise FormatError(f"image folder {d} is not a folder; pass a folder of PNG/JPEG files")
        raise MissingFileError(f"image folder {d} does not exist; pass a folder of PNG/JPEG files")
    files = sorted(p for p in d.rglob("*") if p.suffix.lower() in EXTS and p.is_file())
    if not files:
        raise MissingFileError(f"no images ({', '.join(sorted(EXTS))}) found under {d}")
    return files


def _to_square_rgb(img, size: int, *, name: str, allow_upscale: bool = False, notes: list[str] | None = None,
                   fit: str = "crop"):
    """Any PIL image -> RGB at its own size (:func:`~tokkit.image.files.to_rgb`) -> square -> ``size`` x ``size``."""
    from PIL import Image

    notes = [] if notes is None else notes
    img = to_rgb(img, name=name, notes=notes)  # alpha, palette, bit depth: before any crop, pad or size check
    short = min(img.size) if fit == "crop" else max(img.size)
    if short < size and not allow_upscale:
        raise ImageSizeError(f"{name} is {img.width}x{img.height}, smaller than the model's {size}x{size} input; "
                             f"use an image at least {size}px on its {'shorter' if fit == 'crop' else 'longer'} side, "
                             "or allow upscaling (--upscale)")
    if fit == "pad" and img.width != img.height:
        side = max(img.size)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
        img = canvas
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return img.resize((size, size), Image.Resampling.BOX if side >= size else Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class LoadedImages:
    """``pixels (B, 3, S, S)`` float32 in [0, 1] and each file's own ``(width, height)``."""

    pixels: torch.Tensor
    sizes: tuple[tuple[int, int], ...]
    names: tuple[str, ...]

    def reduced(self) -> list[tuple[str, tuple[int, int]]]:
        """The files larger than the model's input side on either axis (they were downsampled)."""
        S = self.pixels.shape[-1]
        return [(n, wh) for n, wh in zip(self.names, self.sizes) if max(wh) > S]

    def input_pixels(self) -> int:
        """Pixels of the files as given (for bits per pixel at the input's size)."""
        return sum(w * h for w, h in self.sizes)


def load_images(paths: Iterable[str | Path], *, size: int, fit: str = "crop", upscale: bool = False) -> torch.Tensor:
    """Files -> ``(B, 3, size, size)`` float32 in [0, 1] (see the module note on conversions)."""
    return read_images(paths, size=size, fit=fit, upscale=upscale).pixels


def read_images(paths: Iterable[str | Path], *, size: int, fit: str = "crop", upscale: bool = False) -> LoadedImages:
    """Files -> :class:`LoadedImages`: ``fit`` in :data:`FITS`; ``upscale`` allows inputs smaller than ``size``."""
    if isinstance(paths, (str, bytes, os.PathLike)):  # a str would be read one character at a time
        raise InputTypeError(f"expected a list of image paths, found one {type(paths).__name__} ({paths!r}); "
                             f"pass a list of paths, e.g. load_images([{paths!r}], size=...)")
    paths = list(paths)
    if not paths:
        raise EmptyInputError("no image paths given (an empty list); pass a list of PNG/JPEG/WebP file paths")
    size = _check_size(size)
    if fit not in FITS:
        raise FormatError(f"unknown fit {fit!r}; expected one of {', '.join(FITS)}")
    out, sizes = [], []
    for p in paths:
        p = regular_file(p, what="image", expected="pass PNG/JPEG/WebP files")
        notes: list[str] = []
        with open_image(p, notes=notes) as im:
            sizes.append(im.size)
            rgb = _to_square_rgb(im, size, name=str(p), notes=notes, fit=fit, allow_upscale=upscale)
        for note in notes:  # the caller should know the pixels it gets are not the file's
            log.warning(note)
        out.append(torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1))
    return LoadedImages(torch.stack(out).float() / 255, tuple(sizes), tuple(str(p) for p in paths))


def _check_size(size: object) -> int:
    """The model's input side: a positive int, else one clear error."""
    try:
        if isinstance(size, bool):
            raise TypeError
        side = operator.index(size)  # type: ignore[arg-type]
    except TypeError:
        raise InputTypeError(f"size must be an int (the model's input side in pixels), found {type(size).__name__} "
                             f"{size!r}; pass e.g. size=tok.config.image_size") from None
    if side <= 0:
        raise ImageSizeError(f"size must be a positive number of pixels, found {side}; pass the model's input side "
                             "(e.g. size=tok.config.image_size)")
    return side


def to_png_bytes(image: torch.Tensor) -> bytes:
    """``(3, H, W)`` in [0, 1] -> PNG bytes."""
    import io

    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


#: Formats ``image decode -o FILE`` writes, by the file's suffix (every suffix of :data:`EXTS`): PNG, JPEG at
#: quality 95, WebP lossless, BMP, TIFF, GIF (Pillow's 256-colour palette).
SAVE_FORMATS = {".png": ("PNG", {}), ".jpg": ("JPEG", {"quality": 95}), ".jpeg": ("JPEG", {"quality": 95}),
                ".webp": ("WEBP", {"lossless": True}), ".bmp": ("BMP", {}), ".tif": ("TIFF", {}), ".tiff": ("TIFF", {}),
                ".gif": ("GIF", {})}


def to_image_bytes(image: torch.Tensor, suffix: str) -> bytes:
    """``(3, H, W)`` in [0, 1] -> the bytes of an image file of the format that ``suffix`` names (:data:`SAVE_FORMATS`)."""
    if suffix.lower() == ".png":
        return to_png_bytes(image)
    import io

    from PIL import Image

    fmt, opts = SAVE_FORMATS[suffix.lower()]
    arr = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **opts)
    return buf.getvalue()


def grid_png_bytes(images: torch.Tensor, *, cols: int = 8, scale: int = 2, pad: int = 2) -> bytes:
    """``(M, 3, S, S)`` in [0, 1] -> one PNG: a grid of ``cols`` columns on white, nearest-neighbour ``scale``d."""
    M, _, S, _ = images.shape
    rows, cols = -(-M // cols), min(cols, M)
    cell = S * scale + pad
    canvas = torch.ones(3, rows * cell + pad, cols * cell + pad)
    big = images.clamp(0, 1).repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    for i in range(M):
        r, c = divmod(i, cols)
        canvas[:, pad + r * cell:pad + r * cell + S * scale, pad + c * cell:pad + c * cell + S * scale] = big[i]
    return to_png_bytes(canvas)


def render_emoji(ttf: str | Path) -> Iterator[tuple[str, "object"]]:
    """Every single-codepoint emoji the colour font renders, as (name, RGBA PIL image: the 136x128 bitmap centred
    on a transparent 136x136 square)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(ttf), 109, layout_engine=ImageFont.Layout.BASIC)  # CBDT bitmaps: size 109 only
    seen: set[bytes] = set()
    for cp in [*range(0x2000, 0x2c00), *range(0x1f000, 0x1fb00)]:
        im = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(im).text((0, 0), chr(cp), font=font, embedded_color=True)
        if im.getbbox() is None:
            continue
        digest = hashlib.sha1(im.tobytes()).digest()
        if digest not in seen:  # a missing glyph renders the same fallback box every time
            seen.add(digest)
            square = Image.new("RGBA", (136, 136), (0, 0, 0, 0))  # the whole glyph, centred: no crop cuts it
            square.paste(im, (0, 4))
            yield f"emoji_u{cp:05x}", square


def _is_heldout(name: str, heldout_percent: int) -> bool:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100 < heldout_percent


def prepare_dataset(*, out: Path, size: int, folders: list[Path], emoji_font: Path | None, heldout_percent: int,
                    train_margin: int) -> dict[str, int]:
    """Write ``out/train`` (side ``size + train_margin`` for random crops) and ``out/heldout`` (side ``size``).

    Returns the counts of ``train`` and ``heldout`` images written and of the files skipped: ``skipped_small``
    (smaller than the side), ``skipped_unreadable`` (not a readable image, or above the pixel limit) and
    ``duplicates`` (the same bytes as an earlier file, or a symbolic link)."""
    (out / "train").mkdir(parents=True)
    (out / "heldout").mkdir()
    counts = {"train": 0, "heldout": 0, "skipped_small": 0, "skipped_unreadable": 0, "duplicates": 0}

    def sources() -> Iterator[tuple[str, object]]:
        if emoji_font is not None:
            yield from render_emoji(emoji_font)
        seen: set[str] = set()
        for folder in folders:
            for p in image_files(folder):
                digest = hashlib.sha1(p.read_bytes()).hexdigest()
                if p.is_symlink() or digest in seen:  # the same file under two names must not straddle the split
                    counts["duplicates"] += 1
                    continue
                seen.add(digest)
                try:
                    with open_image(p) as im:
                        yield f"{folder.name}/{p.relative_to(folder)}#{digest}", im.copy()
                except (FormatError, ImageSizeError) as e:  # unreadable, or above the pixel limit
                    counts["skipped_unreadable"] += 1
                    log.warning("skipped: %s", e)

    fallback: tuple[str, str, object] | None = None  # (digest, file name, image): the held-out image of last resort
    for name, im in sources():
        digest = name.rsplit("#", 1)[-1]
        held = _is_heldout(digest, heldout_percent)
        name = name.split("#", 1)[0]
        side = size if held else size + train_margin
        try:
            rgb = _to_square_rgb(im, side, name=name)
        except ImageSizeError:
            counts["skipped_small"] += 1
            continue
        except FormatError as e:  # pixel values it cannot read (a float image outside 0..255 ...)
            counts["skipped_unreadable"] += 1
            log.warning("skipped: %s", e)
            continue
        split = "heldout" if held else "train"
        fname = name.replace("/", "__").rsplit(".", 1)[0] + ".png"
        rgb.save(out / split / fname)
        counts[split] += 1
        if heldout_percent > 0 and not held and (fallback is None or digest < fallback[0]):
            fallback = (digest, fname, im)
    if counts["heldout"] == 0 and counts["train"] >= 2 and fallback is not None:
        # A small folder can draw no held-out image by hash; hold out the train image with the smallest
        # digest (still chosen by content, so the split stays reproducible) so that `image eval` has one.
        _, fname, im = fallback
        (out / "train" / fname).unlink()
        _to_square_rgb(im, size, name=fname).save(out / "heldout" / fname)
        counts["train"] -= 1
        counts["heldout"] += 1
    return counts


class CropSampler:
    """Images of a folder in memory (uint8 ``(M, 3, T, T)``); seeded random S-crops + flips."""

    def __init__(self, folder: str | Path, *, size: int) -> None:
        arrs, skipped = [], 0
        for p in image_files(folder):
            with open_image(p) as im:
                try:
                    arrs.append(np.asarray(_to_square_rgb(im, size + size // 8, name=str(p), allow_upscale=False)))
                except ImageSizeError:
                    try:
                        arrs.append(np.asarray(_to_square_rgb(im, size, name=str(p))))
                    except ImageSizeError:
                        skipped += 1
        if not arrs:
            raise ImageSizeError(f"no image under {folder} is at least {size}px on its shorter side")
        side = min(a.shape[0] for a in arrs)
        self.images = torch.from_numpy(np.stack([a[:side, :side] for a in arrs])).permute(0, 3, 1, 2).contiguous()
        self.size = size
        if skipped:
            log.warning("skipped %d images smaller than %dpx under %s", skipped, size, folder)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, 3, S, S)`` float in [0, 1]: random images, random crops, random horizontal flips."""
        M, _, T, _ = self.images.shape
        idx = torch.randint(0, M, (n,), generator=generator)
        off = torch.randint(0, T - self.size + 1, (n, 2), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        out = torch.empty(n, 3, self.size, self.size, dtype=torch.uint8)
        for b in range(n):
            y, x = int(off[b, 0]), int(off[b, 1])
            crop = self.images[idx[b], :, y:y + self.size, x:x + self.size]
            out[b] = crop.flip(-1) if flip[b] else crop
        return out.float() / 255

    def fixed(self, n: int) -> torch.Tensor:
        """The first ``n`` images, centre-cropped (a deterministic readout set)."""
        T = self.images.shape[-1]
        o = (T - self.size) // 2
        return self.images[:n, :, o:o + self.size, o:o + self.size].float() / 255
