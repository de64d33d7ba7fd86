"""Fetching from the HF hub -- only what the user named, only the files tokkit reads, announced first.

:mod:`tokkit.names` decides *whether* to fetch (a hub id or a family name's default checkpoint, online,
``HF_HUB_OFFLINE`` unset, nothing cached); this module does the fetching:

* one request lists the repository's files with their sizes; only the files tokkit reads are taken --
  at the top level: the config, the tokenizer files and the safetensors weights with their index.
  Never ``*.bin``/``*.pth`` (pickles), ``*.gguf``, ``*.onnx``, other formats' sub-folders (``original/``,
  ``onnx/``, ``gguf/`` ...). A repository without safetensors weights is refused before any download;
* one log line (warning level, so it shows by default) says what will be downloaded and how big;
* every request has a timeout; a failure is one :class:`~tokkit.errors.MissingFileError` line.

The endpoint is ``huggingface_hub``'s (``HF_ENDPOINT``), so tests run it against a local fake hub.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tokkit.errors import FormatError, MissingFileError

__all__ = ["MODEL_FILES", "wanted_files", "fetch_model", "fetch_file", "endpoint"]

LOG = logging.getLogger(__name__)

#: Top-level files tokkit reads from a model repository (besides ``*.safetensors``).
MODEL_FILES = frozenset({
    "config.json", "generation_config.json", "model.safetensors.index.json", "chat_template.jinja",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json",
    "merges.txt", "added_tokens.json", "tekken.json",
})
_SAFETENSORS = re.compile(r"^[^/]+\.safetensors$")
_TIMEOUT = 10.0


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def wanted_files(names: list[str]) -> list[str]:
    """The repository files tokkit downloads: top level only, the config/tokenizer files and safetensors weights."""
    return sorted(n for n in names if n in MODEL_FILES or _SAFETENSORS.match(n))


def _size(n: int) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n} bytes"


def _failed(repo: str, e: BaseException) -> MissingFileError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return MissingFileError(f"could not fetch {repo} from {endpoint()} ({type(e).__name__}: {first}); check the name "
                            "and your network, or download it yourself and pass the local folder")


def fetch_model(repo: str) -> Path:
    """Download the files tokkit reads of model ``repo`` into the HF cache; returns the snapshot folder."""
    from huggingface_hub import HfApi, hf_hub_download

    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - network, 404, gated: one line
        raise _failed(repo, e) from None
    sizes = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
    files = wanted_files(list(sizes))
    if not any(_SAFETENSORS.match(f) for f in files) or "config.json" not in files:
        raise FormatError(f"{repo} on the hub has no config.json with top-level *.safetensors weights (it has "
                          f"{', '.join(sorted(sizes)[:6]) or 'no files'}); tokkit reads safetensors only and never "
                          "pickles: convert the model or pass a local folder")
    total = sum(sizes[f] for f in files)
    LOG.warning("downloading %s of %s from %s: %d files (%s; config, tokenizer and safetensors weights only)",
                _size(total), repo, endpoint(), len(files), ", ".join(files[:4]) + (", ..." if len(files) > 4 else ""))
    path = None
    try:
        for f in files:
            path = Path(hf_hub_download(repo, f, etag_timeout=_TIMEOUT))  # main: the cache ref later runs find
    except Exception as e:  # noqa: BLE001
        raise _failed(repo, e) from None
    assert path is not None
    return path.parent


def fetch_file(repo: str, filename: str) -> Path:
    """Download one file of ``repo`` (e.g. ``tokenizer.json`` of a named hub tokenizer), announced with its size."""
    from huggingface_hub import HfApi, hf_hub_download

    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=_TIMEOUT)
        sizes = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
        if filename not in sizes:
            raise MissingFileError(f"{repo} on the hub has no {filename}")
        LOG.warning("downloading %s (%s) of %s from %s", filename, _size(sizes[filename]), repo, endpoint())
        return Path(hf_hub_download(repo, filename, etag_timeout=_TIMEOUT))
    except MissingFileError:
        raise
    except Exception as e:  # noqa: BLE001
        raise _failed(repo, e) from None
