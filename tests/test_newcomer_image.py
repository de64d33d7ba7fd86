"""The image part of a new user's session, as the docs tell it, through the real command: train -> encode -> decode -k.

Runs ``tokkit`` as a child process in an empty folder with an empty ``TOKKIT_HOME`` (image commands need no
fetched fixture): the quick start's ``image train --recipe tiny`` on the committed icons, ``image encode`` of
two of them (36 px inputs for a 16 px model: the reduction and bits per pixel at the inputs' size are printed),
and ``image decode -k`` of a shorter prefix than was stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("PIL")

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"


def _tokkit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "TOKKIT_HOME": str(cwd / "empty_home")}
    return subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_image_train_encode_decode_k(tmp_path):
    from PIL import Image

    r = _tokkit(["image", "train", "-o", "ckpt", "--recipe", "tiny"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "trained 20 steps" in r.stdout and "smoke test" in r.stdout  # the docs' promise: tiny says what it is
    icons = [str(p) for p in sorted(ICONS.glob("*.png"))[:2]]
    r = _tokkit(["image", "encode", "--model", "ckpt", *icons, "-o", "two.tok"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    n = (tmp_path / "two.tok").stat().st_size
    assert "reduced 2 image(s) to the model's 16x16 input" in r.stderr
    assert f"{n} bytes, {8 * n / (2 * 36 * 36):.4f} bits per pixel of the inputs as given" in r.stdout
    r = _tokkit(["image", "decode", "--model", "ckpt", "two.tok", "-k", "3", "-o", "two_k3"], tmp_path)
    assert r.returncode == 0 and "tokens [3, 3] of [8, 8] stored" in r.stdout, r.stderr[-2000:]
    out = sorted((tmp_path / "two_k3").glob("*.png"))
    assert len(out) == 2 and all(Image.open(p).size == (16, 16) for p in out)
    r = _tokkit(["image", "decode", "--model", "ckpt", "two.tok", "-k", "20", "-o", "bad"], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:") and not (tmp_path / "bad").exists()
