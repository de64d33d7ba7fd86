"""Preflight (fail fast, one line) and the carry folder the device machine gets.

The device machine has python3 with torch, transformers, tokenizers, tiktoken, sentencepiece,
safetensors, numpy, PyYAML, regex, tqdm, click and Pillow, but not pydantic, and it reaches no
registry. ``prepare`` (run on a machine with the fixtures and a registry) fills ``.gpu_carry/`` in
the repository root, ignored by git and named in the device tool's ``carry``:

* ``home/`` — a ``TOKKIT_HOME`` with the real tokenizer files that fit (SmolLM2, Llama 3, Mistral v1);
* ``whl/`` — cp312 manylinux wheels of pydantic and what it needs, at the versions installed here.

Both sides (``preflight``) refuse to start, with one ``error:`` line, when a package or file is missing.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PACKAGES", "TOKENIZERS", "DATA", "WHEELS", "check_packages", "preflight", "prepare", "tree_bytes", "PreflightError"]

#: import name -> distribution, every package the checks import (the device image has all but pydantic's).
PACKAGES = {"torch": "torch", "transformers": "transformers", "tokenizers": "tokenizers", "tiktoken": "tiktoken",
            "sentencepiece": "sentencepiece", "safetensors": "safetensors", "numpy": "numpy", "yaml": "pyyaml",
            "regex": "regex", "tqdm": "tqdm", "click": "click", "PIL": "pillow", "pydantic": "pydantic",
            "pydantic_core": "pydantic-core"}
#: role -> file under TOKKIT_HOME (the aliases' own layout, so `load_tokenizer("llama3")` works there too).
TOKENIZERS = {"smollm2": "models/smollm2/tokenizer.json", "llama3": "tokenizers/llama3/tokenizer.json",
              "mistral": "tokenizers/mistral/tokenizer.model"}
#: carried beside them (special-token roles and chat templates).
EXTRA_FILES = ("models/smollm2/tokenizer_config.json", "tokenizers/llama3/tokenizer_config.json")
#: repository files the checks read (tracked, so they travel with the tree).
DATA = ("data/extend/de_reference_sample.txt", "data/heldout/moby_dick_ch1.txt", "data/heldout/gnome_help_de_net.txt",
        "data/legal/train.jsonl", "data/image/icons")
#: distributions carried as wheels (missing on the device image): pydantic and what it requires.
WHEELS = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions")
CARRY = ".gpu_carry"


class PreflightError(Exception):
    """Stops the run before any work; the driver prints it as one ``error:`` line and exits 2."""


def check_packages() -> None:
    """Every package the checks import is importable, else :class:`PreflightError` naming the fix."""
    for name, dist in PACKAGES.items():
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise PreflightError(f"python package {dist} is missing ({e}); on the device machine carry its wheel: "
                                 f"run `bash scripts/gpu_check.sh --prepare` here and name {CARRY} in carry") from None


def preflight(repo: Path, home: Path) -> None:
    """Every tokenizer and data file present, else :class:`PreflightError` naming the fix."""
    for role, rel in TOKENIZERS.items():
        if not (home / rel).is_file():
            raise PreflightError(f"tokenizer file {home / rel} ({role}) is missing; run `bash scripts/gpu_check.sh "
                                 f"--prepare` where the fixtures are (scripts/fetch_fixtures.py) and carry {CARRY}")
    for rel in DATA:
        if not (repo / rel).exists():
            raise PreflightError(f"repository file {repo / rel} is missing; run from a full checkout of tokkit")


def tree_bytes(repo: Path) -> int:
    """Bytes of what the device tool sends besides carry: tracked plus untracked files git does not ignore."""
    names = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    total = 0
    for n in names:
        p = repo / n.decode()
        if n and p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def _download(dist: str, version: str, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "-d", str(dest), f"{dist}=={version}"]
    for plat in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64"):
        cmd += ["--platform", plat]
    subprocess.run(cmd, check=True)


def prepare(repo: Path, home: Path) -> tuple[Path, int]:
    """Fill ``repo/.gpu_carry`` from ``home`` and the registry; returns the folder and the bytes that will travel."""
    carry = repo / CARRY
    ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", f"{CARRY}/"]).returncode == 0
    if not ignored:
        raise PreflightError(f"{carry} is not ignored by git, so it would travel as part of the tree: add /{CARRY}/ to "
                             f".gitignore")
    for rel in (*TOKENIZERS.values(), *EXTRA_FILES):
        src = home / rel
        if not src.is_file():
            raise PreflightError(f"{src} is missing: run `python scripts/fetch_fixtures.py` first")
        dst = carry / "home" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    whl = carry / "whl"
    whl.mkdir(parents=True, exist_ok=True)
    for dist in WHEELS:
        version = md.version(dist)
        stem = dist.replace("-", "_")
        stale = [p for p in whl.glob(f"{stem}-*.whl") if not p.name.startswith(f"{stem}-{version}-")]
        for p in stale:  # one version of each: two stop the whole install on the device
            p.unlink()
        if not any(whl.glob(f"{stem}-{version}-*.whl")):
            _download(dist, version, whl)
    carried = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    return carry, carried + tree_bytes(repo)
