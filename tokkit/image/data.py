"""Real images in, ``(B, 3, S, S)`` float tensors out: loading, conversion notes, splits, crops.

* :func:`load_images` / :func:`read_images` read files for the API/CLI: grayscale and palette images become
  RGB, RGBA is composited onto white (each with a logged note), then the image is made square — ``fit="crop"``
  (default) takes the centred square, ``fit="pad"`` pads the short side with white — and resized to S with a box
  filter (area average). An image smaller than S is refused unless ``upscale=True`` (bicubic): upscaling
  invents detail the codec is then credited for. :func:`read_images` also returns each file's own size, so
  callers can report the reduction and state bits per pixel at the input's size.
* :func:`prepare_dataset` turns sources (an emoji font rendered with Pillow, folders of PNG/JPEG such as
  Debian's openclipart-png or scikit-image's bundled photos) into ``train/`` and ``heldout/`` folders of
  PNGs. The split is by sha1 of the source name, so a held-out image can never enter training.
* :class:`CropSampler` draws seeded random crops + horizontal flips from a folder loaded into memory.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from tokkit.errors import FormatError, MissingFileError
from tokkit.image.errors import ImageSizeError
from tokkit.input_files import regular_file

__all__ = ["open_image", "load_images", "read_images", "LoadedImages", "FITS", "image_files", "prepare_dataset", "CropSampler",
           "render_emoji", "to_png_bytes", "grid_png_bytes"]

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


@contextmanager
def open_image(path: str | Path) -> Iterator[Any]:
    """A decoded PIL image; one above PIL's pixel limit (``Image.MAX_IMAGE_PIXELS``, ~89.5M pixels) is refused
    from its header, before a pixel is decoded (a 40 KB PNG can declare 20000 x 20000: a decompression bomb)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # above the limit, not only above 2x
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageSizeError(f"{path} declares more pixels than the limit of {Image.MAX_IMAGE_PIXELS:,} ({e}); "
                                 "it may be a decompression bomb: downscale it first") from None
    with im:
        im.load()
        yield im


def _to_square_rgb(img, size: int, *, name: str, allow_upscale: bool = False, notes: list[str] | None = None,
                   fit: str = "crop"):
    from PIL import Image

    notes = [] if notes is None else notes

    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("L", "I", "I;16", "F", "1"):
        notes.append(f"{name}: grayscale ({img.mode}) image converted to RGB")
        img = img.convert("RGB")
    if img.mode in ("LA", "RGBA"):
        img = img.convert("RGBA")
        side = max(img.size)
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        canvas.alpha_composite(img, ((side - img.width) // 2, (side - img.height) // 2))
        notes.append(f"{name}: transparency composited onto white")
        img = canvas.convert("RGB")
    img = img.convert("RGB")
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


def load_images(paths: list[str | Path], *, size: int, fit: str = "crop", upscale: bool = False) -> torch.Tensor:
    """Files -> ``(B, 3, size, size)`` float32 in [0, 1] (see the module note on conversions)."""
    return read_images(paths, size=size, fit=fit, upscale=upscale).pixels


def read_images(paths: list[str | Path], *, size: int, fit: str = "crop", upscale: bool = False) -> LoadedImages:
    """Files -> :class:`LoadedImages`: ``fit`` in :data:`FITS`; ``upscale`` allows inputs smaller than ``size``."""
    from PIL import UnidentifiedImageError

    if fit not in FITS:
        raise FormatError(f"unknown fit {fit!r}; expected one of {', '.join(FITS)}")
    out, sizes = [], []
    for p in paths:
        p = regular_file(p, what="image", expected="pass PNG/JPEG/WebP files")
        try:
            with open_image(p) as im:
                notes: list[str] = []
                sizes.append(im.size)
                rgb = _to_square_rgb(im, size, name=str(p), notes=notes, fit=fit, allow_upscale=upscale)
                for note in notes:  # the caller should know the pixels it gets are not the file's
                    log.warning(note)
        except (UnidentifiedImageError, OSError) as e:
            raise FormatError(f"{p} is not a readable image ({e}); pass PNG/JPEG/WebP files") from None
        out.append(torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1))
    return LoadedImages(torch.stack(out).float() / 255, tuple(sizes), tuple(str(p) for p in paths))


def to_png_bytes(image: torch.Tensor) -> bytes:
    """``(3, H, W)`` in [0, 1] -> PNG bytes."""
    import io

    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
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
    """Every single-codepoint emoji the colour font renders, as (name, RGBA PIL image 136x128)."""
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
            yield f"emoji_u{cp:05x}", im


def _is_heldout(name: str, heldout_percent: int) -> bool:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100 < heldout_percent


def prepare_dataset(*, out: Path, size: int, folders: list[Path], emoji_font: Path | None, heldout_percent: int,
                    train_margin: int) -> dict[str, int]:
    """Write ``out/train`` (side ``size + train_margin`` for random crops) and ``out/heldout`` (side ``size``)."""
    from PIL import Image

    (out / "train").mkdir(parents=True)
    (out / "heldout").mkdir()
    counts = {"train": 0, "heldout": 0, "skipped_small": 0}

    def sources() -> Iterator[tuple[str, object]]:
        if emoji_font is not None:
            yield from render_emoji(emoji_font)
        seen: set[str] = set()
        for folder in folders:
            for p in image_files(folder):
                digest = hashlib.sha1(p.read_bytes()).hexdigest()
                if p.is_symlink() or digest in seen:  # the same file under two names must not straddle the split
                    continue
                seen.add(digest)
                try:
                    with open_image(p) as im:
                        yield f"{folder.name}/{p.relative_to(folder)}#{digest}", im.copy()
                except ImageSizeError as e:
                    log.warning("skipping %s", e)
                except (OSError, ValueError, Image.DecompressionBombError):
                    log.warning("skipping unreadable %s", p)

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
