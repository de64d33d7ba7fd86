"""Outputs own only what they create (tokkit.atomic + the CLI's preflight): what ``--force`` may replace,
inputs recognised by inode, exclusive creation between real concurrent processes, cleanup of parents."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokkit.atomic import MARKER, atomic_dir, atomic_file, check_output, check_replaceable, rename_noreplace
from tokkit.errors import OutputExistsError, OutputWriteError
from tokkit_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"


def _run(args, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args])
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tok"
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return out


def test_force_replaces_a_file_with_a_file_and_a_tokkit_folder_with_a_folder(tmp_path, tok):
    (tmp_path / "r.tiktoken").write_text("old")
    r = _run(["export-tiktoken", tok, "-o", "r.tiktoken", "--force"], tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.tiktoken").read_text().startswith("IQ== ")
    r = _run(["export-tokenizer", tok, "-o", "hf"], tmp_path)
    assert r.exit_code == 0 and (tmp_path / "hf" / MARKER).is_file()
    (tmp_path / "hf" / "stray.txt").write_text("x")
    r = _run(["export-tokenizer", tok, "-o", "hf", "--force"], tmp_path)
    assert r.exit_code == 0 and not (tmp_path / "hf" / "stray.txt").exists()


@pytest.mark.parametrize("make, needle", [
    (lambda p: (p.mkdir(), (p / "mine.txt").write_text("precious")), "did not write"),
    (lambda p: os.mkfifo(p), "FIFO"),
    (lambda p: socket.socket(socket.AF_UNIX).bind(str(p)), "socket"),
], ids=["foreign-folder", "fifo", "socket"])
def test_force_refuses_what_tokkit_did_not_write(tmp_path, tok, make, needle):
    target = tmp_path / "results"
    make(target)
    before = sorted(os.listdir(tmp_path)), os.lstat(target).st_mode
    for args in (["count", LEGAL, "-o", "results", "--force"], ["export-tokenizer", tok, "-o", "results", "--force"]):
        r = _run(args, tmp_path)
        assert r.exit_code == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.output
        assert (sorted(os.listdir(tmp_path)), os.lstat(target).st_mode) == before
    if target.is_dir():
        assert (target / "mine.txt").read_text() == "precious"


def test_a_character_device_is_never_replaced():
    """Only checked, never written: ``-o /dev/null --force`` as root once replaced the device with a file."""
    with pytest.raises(OutputExistsError, match="character device"):
        check_output("/dev/null", force=True)
    with pytest.raises(OutputExistsError, match="character device"):
        check_replaceable("/dev/null", "file")


def test_kind_mismatch_is_refused_before_the_work(tmp_path, tok):
    (tmp_path / "afile").write_text("mine")
    r = _run(["export-tokenizer", tok, "-o", "afile", "--force"], tmp_path)  # a folder output over a file
    assert r.exit_code == 2 and "is a file but this command writes a folder" in r.stderr
    assert (tmp_path / "afile").read_text() == "mine"
    assert _run(["export-tokenizer", tok, "-o", "hf"], tmp_path).exit_code == 0
    with pytest.raises(OutputExistsError, match="writes a file"):
        with atomic_file(tmp_path / "hf", force=True) as t:
            t.write_text("x")
    assert (tmp_path / "hf" / "tokenizer.json").is_file()


def test_a_symlink_is_replaced_itself_never_its_target(tmp_path, tok):
    target = tmp_path / "elsewhere.tiktoken"
    target.write_text("the target")
    (tmp_path / "link.tiktoken").symlink_to(target)
    r = _run(["export-tiktoken", tok, "-o", "link.tiktoken", "--force"], tmp_path)
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "link.tiktoken").is_symlink() and target.read_text() == "the target"


def test_inputs_are_recognised_by_inode_and_side_outputs_are_checked(tmp_path, tok):
    (tmp_path / "T").mkdir()
    src = tmp_path / "T" / "tokenizer.json"
    src.write_bytes((tok / "tokenizer.json").read_bytes())
    data = src.read_bytes()
    # OUT.json, the side output of export-tiktoken, would be the input itself
    r = _run(["export-tiktoken", "T/tokenizer.json", "-o", "T/tokenizer", "--force"], tmp_path)
    assert r.exit_code == 2 and "is the input" in r.stderr, r.output
    os.link(src, tmp_path / "hard.json")
    r = _run(["count", LEGAL, "-o", "hard.json", "--force"], tmp_path)
    assert r.exit_code == 0  # not an input of this command: replaced by rename, the other name keeps its data
    os.link(src, tmp_path / "hard2.json")
    r = _run(["export-tiktoken", "hard2.json", "-o", "T/tokenizer.json", "--force"], tmp_path)  # same inode
    assert r.exit_code == 2 and "is the input" in r.stderr and "inode" in r.stderr, r.output
    (tmp_path / "sym.json").symlink_to(src)
    r = _run(["export-tiktoken", "sym.json", "-o", "T/tokenizer.json", "--force"], tmp_path)
    assert r.exit_code == 2 and "is the input" in r.stderr
    assert src.read_bytes() == data
    assert not list(tmp_path.glob("**/.*.tk*"))


def test_parents_created_by_a_failed_run_are_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "a" / "b" / "c" / "out.bin") as t:
            t.write_bytes(b"x")
            raise RuntimeError("the work failed")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "d" / "e" / "out") as t:
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_library_temporary_lands_inside_ours(tmp_path):
    """safetensors writes through its own ``.tmpXXXX`` beside the path it is given: inside our folder."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "e.safetensors") as t:
            save_file({"w": torch.zeros(4)}, str(t))
            assert t.parent != tmp_path and t.name == "e.safetensors"
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_io_errors_of_native_writers_are_one_line(tmp_path):
    with pytest.raises(OutputWriteError, match=r"cannot write output .*out\.json: No space left on device; nothing"):
        with atomic_file(tmp_path / "out.json") as t:
            raise Exception("No space left on device (os error 28)")  # what tokenizers' save raises
    assert list(tmp_path.iterdir()) == []


def test_rename_noreplace_never_replaces(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with pytest.raises(FileExistsError):
        rename_noreplace(tmp_path / "a", tmp_path / "b")
    (tmp_path / "d").mkdir()
    (tmp_path / "e").mkdir()
    with pytest.raises(FileExistsError):
        rename_noreplace(tmp_path / "d", tmp_path / "e")
    rename_noreplace(tmp_path / "a", tmp_path / "c")
    assert (tmp_path / "b").read_text() == "b" and (tmp_path / "c").read_text() == "a"


# Each writer waits at its first commit until all N have finished their work, so the race is real.
_RACER = r"""
import os, sys, time
import tokkit.atomic as A
gate, n = sys.argv[1], int(sys.argv[2])
real = A._commit
def commit(tmp, final, **kw):
    open(os.path.join(gate, str(os.getpid())), "w").close()
    t0 = time.time()
    while len(os.listdir(gate)) < n and time.time() - t0 < 120:
        time.sleep(0.01)
    return real(tmp, final, **kw)
A._commit = commit
from tokkit_cli.main import cli
cli(sys.argv[3:], prog_name="tokkit")
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_concurrent_writers_without_force_exactly_one_wins(tmp_path, tok, kind):
    n = 4
    gate = tmp_path / "gate"
    gate.mkdir()
    args = (["export-tiktoken", str(tok), "-o", "out.tiktoken"] if kind == "file"
            else ["export-tokenizer", str(tok), "-o", "out"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(gate), str(n), *args], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    wins = [r for r in results if r[0] == 0]
    losses = [r for r in results if r[0] != 0]
    assert len(wins) == 1, results
    for rc, _, err in losses:
        assert rc == 2 and err.count("\n") == 1 and "created by another process" in err, err
    assert len(os.listdir(gate)) == n  # all of them reached the commit
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "gate")
    assert left == (["out.tiktoken", "out.tiktoken.json"] if kind == "file" else ["out"]), left


def test_concurrent_encodes_without_force_exactly_one_wins(tmp_path, tok):
    """``encode`` builds its folder in place (resumable): the folder itself is created exclusively."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "tokkit_cli.main", "encode", str(LEGAL), "--tokenizer", str(tok), "-o", "out",
            "--workers", "1", "--quiet"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2, 2], results
    for rc, err in results:  # "exists", "created by another process" or (a live run's folder) "--resume"
        assert rc == 0 or err.startswith("error: ") and err.count("\n") == 1, err
    assert (tmp_path / "out" / "manifest.json").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tok):
    """A real ENOSPC: a 64 KB tmpfs (needs the right to mount, e.g. root in a container; skipped otherwise)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (mnt / "keep.txt").write_text("mine")
        for args in (["export-tokenizer", str(tok), "-o", "mnt/new/deeper/o"], ["count", str(LEGAL), "-o", "mnt/t.counts"],
                     ["train-bpe", str(LEGAL), "--vocab-size", "400", "-o", "mnt/o", "--quiet"]):
            (mnt / "filler").write_bytes(b"x" * 40_000)  # leave less room than the output needs
            r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", *args], cwd=tmp_path, capture_output=True,
                               text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
            lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "%|" not in ln]
            assert r.returncode == 2 and len(lines) == 1, (args, r.stderr)
            assert "No space left on device" in lines[0] and "cannot write output" in lines[0], lines[0]
            (mnt / "filler").unlink()
            assert sorted(p.name for p in mnt.iterdir()) == ["keep.txt"], (args, list(mnt.iterdir()))
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_encode_never_deletes_a_folder_that_appeared_after_its_check(tmp_path, tok, monkeypatch):
    """The window between the preflight and the exclusive ``mkdir``: a folder another process (or the
    user) made there is left as it is, and this run stops (it used to be removed without ``--force``)."""
    import tokkit.train.encode_corpus as ec

    out = tmp_path / "out"
    real = ec.check_output

    def check_then_someone_creates(path, **kw):
        real(path, **kw)
        path.mkdir()
        (path / "theirs.txt").write_text("not tokkit's")

    monkeypatch.setattr(ec, "check_output", check_then_someone_creates)
    with pytest.raises(OutputExistsError, match="created by another process"):
        ec.encode_corpus([LEGAL], tokenizer=tok, out=out, workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    assert (out / "theirs.txt").read_text() == "not tokkit's"


def test_a_file_linked_into_an_output_keeps_its_source_mode(tmp_path):
    """Model writers hard-link unchanged shards; the output's umask fix must not chmod the source's inode."""
    src = tmp_path / "private.safetensors"
    src.write_bytes(b"weights")
    os.chmod(src, 0o600)
    with atomic_dir(tmp_path / "out") as tmp:
        os.link(src, tmp / "shard.safetensors")
        (tmp / "config.json").write_text("{}")
    assert os.stat(src).st_mode & 0o777 == 0o600
    assert (tmp_path / "out" / "shard.safetensors").read_bytes() == b"weights"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "out" / "config.json").st_mode & 0o777 == 0o666 & ~umask
