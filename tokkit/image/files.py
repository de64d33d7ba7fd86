"""Image files -> 8-bit RGB pictures at their own size, with a note for every change tokkit makes to the pixels.

* :func:`open_image` decodes a file with Pillow: frame 0 of an animated GIF / WebP / APNG (noted), the EXIF
  orientation applied (``PIL.ImageOps.exif_transpose``: the picture as viewers show it), PNG metadata text of any
  size read past (it is not used). Every Pillow failure on the file (unidentified, truncated, corrupt, a plugin's
  ``SyntaxError``) becomes one :class:`~tokkit.errors.FormatError` naming it; an image above Pillow's pixel limit
  an :class:`~tokkit.image.errors.ImageSizeError`, from its header, before a pixel is decoded.
* :func:`to_rgb` makes any mode RGB at the image's own size, before any crop, pad or resize: alpha (RGBA, LA, PA,
  a palette's alpha, a tRNS key colour of an RGB / grayscale PNG) is composited onto white (noted only when some
  pixel is not opaque, so a fully opaque RGBA / LA / P image gives exactly the pixels of its RGB conversion);
  16-bit grayscale (``I;16*``) and 32-bit integer (``I``, read as 16-bit) are scaled by 1/257, float (``F``) from
  0..1 (x255) or 0..255 (as is); other ranges are refused rather than clipped to white or black.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tokkit.errors import FormatError, MissingFileError, TokkitError
from tokkit.image.errors import ImageSizeError

__all__ = ["open_image", "to_rgb", "PNG_TEXT_LIMIT"]

#: PNG text chunks (zTXt / iTXt: XMP and other metadata) are read past up to this size; Pillow's own limit is 1 MB.
PNG_TEXT_LIMIT = 64 << 20
_text_limit_lock = threading.Lock()
READABLE = "pass PNG/JPEG/WebP files"


@contextmanager
def open_image(path: str | Path, *, notes: list[str] | None = None) -> Iterator[Any]:
    """A decoded PIL image of ``path`` (see the module note); ``notes`` collects what was changed (animation)."""
    im = _decode(Path(path), [] if notes is None else notes)
    try:
        yield im  # an error of the caller's block passes through unchanged
    finally:
        im.close()


def _decode(path: Path, notes: list[str]) -> Any:
    from PIL import PngImagePlugin

    try:
        return _decode_once(path, notes)
    except _TextTooLarge:
        pass
    with _text_limit_lock:  # the limits are Pillow's module globals: raised for this one read only
        old = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
        PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = max(PNG_TEXT_LIMIT, old[1])
        try:
            return _decode_once(path, notes)
        except _TextTooLarge:
            raise FormatError(f"{path} holds PNG metadata text (zTXt/iTXt) over {PNG_TEXT_LIMIT >> 20} MB, more than "
                              "tokkit reads past; re-save the image without its metadata (e.g. with Pillow or "
                              "`exiftool -all= FILE`)") from None
        finally:
            PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = old


class _TextTooLarge(Exception):
    """Pillow refused a PNG text chunk (or their total) as too large."""


def _refuse(path: Path, e: BaseException) -> Exception:
    """The one error a Pillow failure on ``path`` becomes (our own errors and MemoryError pass through)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(e, (TokkitError, MemoryError)):
        return e
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageSizeError(f"{path} declares more pixels than the limit of {Image.MAX_IMAGE_PIXELS:,} ({e}); "
                              "it may be a decompression bomb: downscale it first")
    if isinstance(e, ValueError) and ("MAX_TEXT_CHUNK" in str(e) or "MAX_TEXT_MEMORY" in str(e)):
        return _TextTooLarge()
    if isinstance(e, FileNotFoundError):
        return MissingFileError(f"image {path} does not exist; check the path")
    why = ("not an image format Pillow knows, or damaged" if isinstance(e, UnidentifiedImageError)
           else f"{type(e).__name__}: {e}")
    return FormatError(f"{path} is not a readable image ({why}); {READABLE}")


def _decode_once(path: Path, notes: list[str]) -> Any:
    from PIL import Image, ImageOps

    found: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # above the limit, not only above 2x
        try:
            im = Image.open(path)
        except Exception as e:  # noqa: BLE001 - any failure of Pillow on the file is the file's (see _refuse)
            raise _refuse(path, e) from None
        try:
            frames = _frame_count(im)
            if frames != 1:
                found.append(f"{path}: animated ({frames} frames): frame 0 used")
                im.seek(0)
            im.load()
        except Exception as e:  # noqa: BLE001
            im.close()
            raise _refuse(path, e) from None
    try:
        ImageOps.exif_transpose(im, in_place=True)  # orientation 2..8: as viewers show it; 1 or none: unchanged
    except Exception:  # noqa: BLE001 - unreadable EXIF: the pixels as stored are still the picture
        found.append(f"{path}: EXIF orientation unreadable, pixels used as stored")
    notes.extend(found)
    return im


def _frame_count(im: Any) -> int | str:
    """Frames of an animated file (1 for a still image); ``"unknown"`` when a later frame cannot be counted."""
    try:
        return int(getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - a damaged later frame: frame 0 may still decode
        return "unknown"


def to_rgb(img: Any, *, name: str, notes: list[str]) -> Any:
    """``img`` (any PIL mode) as an RGB image of the same size (see the module note); conversions noted."""
    from PIL import Image

    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        img = _deep_gray(img, name=name, notes=notes)
    elif mode in ("1", "L", "LA", "La"):
        notes.append(f"{name}: grayscale ({mode}) image converted to RGB")
    try:
        if img.has_transparency_data:  # RGBA, LA, PA, RGBa, La, a palette with alpha, a tRNS key colour
            rgba = img.convert("RGBA")
            if rgba.getchannel("A").getextrema()[0] < 255:
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                white.alpha_composite(rgba)
                notes.append(f"{name}: transparency composited onto white")
                return white.convert("RGB")
            return rgba.convert("RGB")  # fully opaque: exactly the colours of the RGB conversion
        return img.convert("RGB")
    except ValueError as e:  # a mode Pillow cannot convert (HSV ...)
        raise FormatError(f"{name} has colour mode {mode}, which cannot be converted to RGB ({e}); "
                          "save it as an RGB PNG/JPEG first") from None


def _deep_gray(img: Any, *, name: str, notes: list[str]) -> Any:
    """A 16-bit / 32-bit integer / float grayscale image -> 8-bit ``L`` (``LA`` with a tRNS key colour)."""
    from PIL import Image

    mode = img.mode
    a = np.asarray(img)  # (H, W): uint16 for I;16*, int32 for I, float32 for F
    if mode == "F":
        if a.size and not np.isfinite(a).all():
            raise FormatError(f"{name} holds NaN or infinite float (F) pixels; save it with finite values in 0..1 "
                              "or 0..255 (or as an 8/16-bit image)")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise FormatError(f"{name} holds float (F) pixels in {lo:.4g}..{hi:.4g}; tokkit reads float images with "
                              "values in 0..1 or 0..255: rescale it to one of those ranges (or save it as 8/16-bit)")
        scale, how = (255.0, "float 0..1, x255") if hi <= 1 else (1.0, "float 0..255")
        g8 = np.rint(a.astype(np.float64) * scale).clip(0, 255).astype(np.uint8)
    else:
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise FormatError(f"{name} holds 32-bit integer (I) pixels in {lo}..{hi}; tokkit reads such images as "
                              "16-bit (0..65535): rescale it to 16 or 8 bits first")
        g8 = ((a.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)  # round(v / 257): 257·x -> x exactly
        how = "16-bit" if mode.startswith("I;16") else "32-bit integer, read as 16-bit"
    notes.append(f"{name}: grayscale ({mode}, {how}) image scaled to 8 bits and converted to RGB")
    key = img.info.get("transparency")
    if isinstance(key, int) and mode != "F":  # a tRNS key: that exact value is transparent
        return Image.fromarray(np.dstack([g8, np.where(a == key, 0, 255).astype(np.uint8)]))  # (H, W, 2): LA
    return Image.fromarray(g8)  # (H, W) uint8: L
