"""SIGKILL mid-write / mid-training, then rerun: no temporary is left, and the result is the uninterrupted one.

Each command runs in a child process (the real CLI) that kills itself with SIGKILL at a chosen point of
:mod:`tokkit.atomic`'s commit: at the start of the N-th commit (the temporary is fully written, not yet
renamed: "mid-write"), or right after the N-th output was moved aside to ``.NAME.tk<pid>.old`` (the
output itself is missing: the worst moment of a swap). Nothing can clean up after SIGKILL, so the
rerun must recognise the dead writer's temporaries and remove them (or finish the swap).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"
ICONS = ROOT / "data" / "image" / "icons"

# Runs the CLI with a SIGKILL planted in tokkit.atomic (the child's own copy; nothing in the library changes).
_WRAPPER = r"""
import os, signal, sys
import tokkit.atomic as A
mode, n = os.environ["KILL_MODE"], int(os.environ["KILL_AT"])
seen = [0]
if mode == "commit":
    real = A._commit
    def commit(tmp, final):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(tmp, final)
    A._commit = commit
else:  # "aside": right after the N-th output was renamed to .NAME.tk<pid>.old
    real_replace = os.replace
    def replace(src, dst, *a, **k):
        out = real_replace(src, dst, *a, **k)
        if str(dst).endswith(".old"):
            seen[0] += 1
            if seen[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return out
    A.os.replace = replace
from tokkit_cli.main import cli
cli(sys.argv[1:], prog_name="tokkit")
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def _killed(args: list[str], cwd: Path, *, mode: str = "commit", at: int = 1) -> None:
    r = subprocess.run([sys.executable, "-c", _WRAPPER, *args], cwd=cwd, capture_output=True, text=True,
                       env=_env(KILL_MODE=mode, KILL_AT=str(at)), timeout=600)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-2000:])


def _run(args: list[str], cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], cwd=cwd, capture_output=True, text=True,
                       env=_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def _temporaries(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), f"{n} differs from the uninterrupted run"


def test_train_bpe_killed_mid_write_then_rerun(tmp_path):
    args = [str(LEGAL), "--vocab-size", "400", "--quiet"]
    _run(["train-bpe", *args, "-o", "ref"], tmp_path)
    _killed(["train-bpe", *args, "-o", "out"], tmp_path)
    left = _temporaries(tmp_path, "out")
    assert left and left[0].endswith(".tmp") and not (tmp_path / "out").exists(), left  # killed mid-write
    _run(["train-bpe", *args, "-o", "out"], tmp_path)
    assert _temporaries(tmp_path, "out") == []
    _same_files(tmp_path / "ref", tmp_path / "out", ["tokenizer.json"])


def test_train_bpe_killed_mid_replace_keeps_a_complete_output(tmp_path):
    """--force over an existing output, killed while the old one is moved aside: the new one is restored."""
    args = [str(LEGAL), "--vocab-size", "400", "--quiet"]
    _run(["train-bpe", *args, "-o", "out"], tmp_path)
    _run(["train-bpe", *args, "--vocab-size", "350", "-o", "ref"], tmp_path)
    _killed(["train-bpe", *args, "--vocab-size", "350", "-o", "out", "--force"], tmp_path, mode="aside")
    assert not (tmp_path / "out").exists() and _temporaries(tmp_path, "out")  # the worst moment of a swap
    from tokkit.atomic import recover

    recover(tmp_path / "out")  # what every later command on this output does first
    assert _temporaries(tmp_path, "out") == []
    _same_files(tmp_path / "ref", tmp_path / "out", ["tokenizer.json"])


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    pytest.importorskip("transformers")
    from conftest import tiny_llama

    from tokkit import load_tokenizer

    d = tmp_path_factory.mktemp("lm")
    from click.testing import CliRunner

    from tokkit_cli.main import cli

    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(d / "tok"), "--quiet"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "330", "-o", str(d / "tok2"), "--quiet"])
    assert r.exit_code == 0, r.output
    return tiny_llama(d / "lm", load_tokenizer(d / "tok")), d / "tok2"


@pytest.mark.slow
def test_transplant_killed_mid_write_then_rerun(tmp_path, lm):
    src, dst = lm
    args = ["transplant", "--src", str(src), "--dst", str(dst), "--device", "cpu", "--heldout", "0"]
    _run([*args, "-o", "ref"], tmp_path)
    _killed([*args, "-o", "out"], tmp_path)
    assert _temporaries(tmp_path, "out") and not (tmp_path / "out").exists()
    _run([*args, "-o", "out"], tmp_path)
    assert _temporaries(tmp_path, "out") == []
    _same_files(tmp_path / "ref", tmp_path / "out", ["model.safetensors", "tokenizer.json", "config.json"])


_IMAGE_RECIPE = """\
model: {image_size: 16, patch: 4, width: 32, enc_depth: 1, dec_depth: 1, heads: 2, max_tokens: 8, fsq_levels: [5, 5, 5],
        conv_head: false}
steps: 6
batch_size: 4
warmup: 1
log_every: 2
checkpoint_every: 3
eval_images: 4
threads: 1
"""


def _image_args(tmp_path: Path) -> list[str]:
    pytest.importorskip("PIL")
    (tmp_path / "r.yaml").write_text(_IMAGE_RECIPE)
    return ["image", "train", "--recipe", str(tmp_path / "r.yaml"), "--data", str(ICONS), "--device", "cpu"]


@pytest.mark.slow
def test_image_train_killed_mid_checkpoint_resumes_bit_identical(tmp_path):
    args = _image_args(tmp_path)
    _run([*args, "-o", "ref"], tmp_path)
    _killed([*args, "-o", "ck"], tmp_path, at=2)  # the step-3 checkpoint is in place; killed writing step 6
    assert _temporaries(tmp_path, "ck") and (tmp_path / "ck").is_dir()
    _run([*args, "-o", "ck", "--resume"], tmp_path)
    assert _temporaries(tmp_path, "ck") == []
    _same_files(tmp_path / "ref", tmp_path / "ck", ["model.safetensors", "optimizer.safetensors"])


@pytest.mark.slow
def test_image_train_killed_mid_swap_resumes_bit_identical(tmp_path):
    args = _image_args(tmp_path)
    _run([*args, "-o", "ref"], tmp_path)
    _killed([*args, "-o", "ck"], tmp_path, mode="aside", at=1)  # step-3 checkpoint moved aside, step-6 one beside
    assert not (tmp_path / "ck").exists()
    _run([*args, "-o", "ck", "--resume"], tmp_path)
    assert _temporaries(tmp_path, "ck") == []
    _same_files(tmp_path / "ref", tmp_path / "ck", ["model.safetensors", "optimizer.safetensors"])


@pytest.mark.slow
def test_image_fine_tune_from_init_killed_mid_checkpoint_resumes_bit_identical(tmp_path):
    """`image train --init` (a One-D-Piece-architecture checkpoint, random weights) killed, then --resume."""
    from test_image_published import SMALL, make_checkpoint

    init = make_checkpoint(tmp_path / "init", SMALL["one_d_piece"])
    args = [*_image_args(tmp_path), "--init", str(init), "--sampler", "tail_batch"]
    _run([*args, "-o", "ref"], tmp_path)
    _killed([*args, "-o", "ck"], tmp_path, at=2)  # the step-3 checkpoint is in place; killed writing step 6
    assert _temporaries(tmp_path, "ck") and (tmp_path / "ck").is_dir()
    (init / "model.safetensors").unlink()  # a resumed run needs only its own checkpoint, not --init's
    _run([*args, "-o", "ck", "--resume"], tmp_path)
    assert _temporaries(tmp_path, "ck") == []
    _same_files(tmp_path / "ref", tmp_path / "ck", ["model.safetensors", "optimizer.safetensors", "model_config.json"])


@pytest.mark.slow
def test_hypernet_train_killed_mid_checkpoint_resumes_bit_identical(tmp_path, lm):
    src, _ = lm
    args = ["hypernet", "train", "--base", str(src), "--corpus", str(LEGAL), "--steps", "4", "--warmup-steps", "1",
            "--batch-size", "1", "--seq-len", "16", "--vocab-size", "300", "--negatives", "8", "--hidden", "16",
            "--layers", "1", "--heads", "2", "--max-pieces", "4", "--checkpoint-every", "2", "--device", "cpu"]
    _run([*args, "-o", "ref"], tmp_path)
    _killed([*args, "-o", "hn"], tmp_path, at=2)  # step-2 checkpoint in place; killed writing step 4
    assert _temporaries(tmp_path, "hn") and (tmp_path / "hn").is_dir()
    _run([*args, "-o", "hn"], tmp_path)  # an interrupted run in OUT is resumed
    assert _temporaries(tmp_path, "hn") == []
    _same_files(tmp_path / "ref", tmp_path / "hn", ["model.safetensors", "optimizer.safetensors"])


def test_recover_removes_only_dead_writers_temporaries(tmp_path):
    from tokkit.atomic import recover
    from tokkit.output_checks import temp_name

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    out = tmp_path / "out"
    out.mkdir()
    gone = [temp_name(out, "tmp", pid=dead), temp_name(out, "old", pid=dead)]
    gone[0].mkdir()
    gone[1].write_text("old")
    live = temp_name(out, "tmp")  # a live writer (this process): kept
    live.mkdir()
    other = temp_name(tmp_path / "other", "tmp", pid=dead)  # another output's: not ours to judge
    other.mkdir()
    (tmp_path / ".out.backup").write_text("the user's")  # not a tokkit name: kept
    recover(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name, other.name, ".out.backup"])


def test_recover_never_touches_a_users_files_named_like_temporaries(tmp_path):
    """Names of tokkit's shape without its signature (a user's, or forged) are neither deleted nor renamed,
    with or without --force; only a signed name of a dead writer is (``tokkit.output_checks.is_our_temp``)."""
    from tokkit.output_checks import temp_name

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    real = temp_name(tmp_path / "out", "old", pid=dead).name
    forged = [real[:-20] + "0123456789abcdef.old",  # the shape, another signature
              f".out.tk{dead}.old", f".out.tk{dead}.new", f".out.tk{dead}-00ff.tmp"]  # tokkit's names before signatures
    for i, name in enumerate(forged):
        (tmp_path / name).mkdir()
        (tmp_path / name / "thesis.tex").write_text(f"precious {i}")
    tok = tmp_path / "tok"
    _run(["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(tok), "--quiet"], tmp_path)
    r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", "export-tokenizer", str(tok), "-o", "out"], cwd=tmp_path,
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    for i, name in enumerate(forged):
        assert (tmp_path / name / "thesis.tex").read_text() == f"precious {i}"
    assert (tmp_path / "out" / "tokenizer.json").is_file()


def test_outputs_get_the_umask_mode(tmp_path):
    from tokkit.atomic import atomic_dir, atomic_file

    old = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "f.bin") as t:
            t.write_bytes(b"x")
            os.chmod(t, 0o600)  # as safetensors / tempfile do
        with atomic_dir(tmp_path / "d") as t:
            (t / "w.safetensors").write_bytes(b"x")
            os.chmod(t / "w.safetensors", 0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d" / "w.safetensors").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
