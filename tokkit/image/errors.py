"""Errors of the image tokenizer (subclasses of :class:`tokkit.errors.TokkitError`)."""

from __future__ import annotations

from tokkit.errors import FormatError, TokkitError

__all__ = ["ImageSizeError", "TokenCountError", "CorruptTokFileError", "ModelMismatchError"]


class ImageSizeError(TokkitError, ValueError):
    """An image is smaller than the model's input size, has the wrong shape, or pixel values outside [0, 1]."""


class TokenCountError(TokkitError, ValueError):
    """A token count k outside 1..N, or ids outside the codebook."""


class CorruptTokFileError(FormatError):
    """A .tok file is truncated, has a bad magic/checksum, or does not parse."""


class ModelMismatchError(TokkitError, ValueError):
    """A .tok file was written by a different model than the one asked to decode it."""
