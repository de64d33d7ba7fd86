"""Hostile inputs and faults for the bad-input matrix (issue 26): the table and the files it needs.

Eight classes, one per promise of README § Errors:

1. outputs own only what they create (``--force`` over folders tokkit did not write, FIFOs, sockets, kind
   mismatches; outputs that are an input by inode, through a symlink, or as a side output);
2. no code runs from data (a model folder with ``auto_map`` and a Python file; weights only as pickles);
3. nothing is downloaded that the user did not name (aliases whose copy is missing, online, fake hub);
4. bounded resources (ids/ranks far beyond the entries, YAML bombs, devices as recipes, thread counts,
   decompression bombs);
5. non-finite numbers (``nan``/``inf`` options and recipe values, NaN weights);
6. signals and I/O errors (SIGINT/SIGTERM mid-write and mid-training, a file-size limit, a closed stdout,
   non-UTF-8 path bytes);
7. messages that name the defect (broken ``tokenizer.json`` classes, forgotten ``--resume``, tampered
   checkpoints, a parquet text column of numbers);
8. native panics never reach the terminal raw (real processes, fd 2 captured).

Placeholders as in ``test_bad_input_matrix``, plus ``{h}`` (the folder built by :func:`build`), ``{evil}``,
``{pickled}``, ``{nanlm}`` (model folders, see the matrix's fixtures) and ``{big}`` (a generated corpus that
takes the native trainer many seconds).
"""

from __future__ import annotations

import copy
import json
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class H:
    id: str
    cls: int  # 1..8, the classes above
    args: tuple[str, ...]
    needles: tuple[str, ...] = ()
    sub: bool = False  # a real process (fd-level stderr), else in-process
    code: int = 2
    pre: Callable[[Path, dict], None] | None = None  # prepares the working directory (inside the snapshot)
    env: tuple[tuple[str, str], ...] = ()  # extra environment ("{h}" etc. expanded)
    mode: str = ""  # "" | "commit-SIGTERM" | "commit-SIGINT" | "train-SIGINT" | "train-SIGTERM" | "fsize" | "stdout-closed"
    stdin: str = ""
    needs: tuple[str, ...] = field(default=())  # "image", "torch", "hub"; "lm"/"tok": the fixture for a pre-step
    keeps: tuple[str, ...] = ()  # paths (relative to the working folder) a resumable run may keep: its checkpoint
    timeout: int = 600  # seconds a real process may take (a case that would hang fails at this limit)


def h(id: str, cls: int, *args: str, needles: tuple[str, ...] | str = (), sub: bool = False, code: int = 2, pre=None,
      env: dict[str, str] | None = None, mode: str = "", stdin: str = "", needs: tuple[str, ...] = (),
      keeps: tuple[str, ...] = (), timeout: int = 600) -> H:
    return H(id, cls, tuple(args), (needles,) if isinstance(needles, str) else tuple(needles), sub, code, pre,
             tuple((env or {}).items()), mode, stdin, needs, keeps, timeout)


# ------------------------------------------------------------------------------------------------ pre-steps
def foreign_folder(name: str = "res"):
    def pre(cwd: Path, subs: dict) -> None:
        (cwd / name).mkdir()
        (cwd / name / "mine.txt").write_text("precious")
    return pre


def tokkit_folder(name: str = "res"):
    def pre(cwd: Path, subs: dict) -> None:
        (cwd / name).mkdir()
        (cwd / name / ".tokkit-output").write_text("written by tokkit\n")
        (cwd / name / "a.txt").write_text("ours")
    return pre


def fifo(name: str = "res"):
    def pre(cwd: Path, subs: dict) -> None:
        os.mkfifo(cwd / name)
    return pre


def sock(name: str = "res"):
    def pre(cwd: Path, subs: dict) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(cwd / name))
        s.close()  # the socket file stays
    return pre


def a_file(name: str = "res"):
    def pre(cwd: Path, subs: dict) -> None:
        (cwd / name).write_text("my file")
    return pre


def hardlink(name: str, target: str):
    def pre(cwd: Path, subs: dict) -> None:
        os.link(target.format(**subs), cwd / name)
    return pre


def symlink(name: str, target: str):
    def pre(cwd: Path, subs: dict) -> None:
        (cwd / name).symlink_to(target.format(**subs))
    return pre


def side_file(folder: str, name: str, kind: str, into: str):
    """A copy of the ``folder`` fixture ("lm" or "tok") as ``into`` whose side file ``name`` is ``kind``:
    "dev-zero" (a symlink to /dev/zero: never ends) or "fifo" (blocks until a writer comes)."""
    def pre(cwd: Path, subs: dict) -> None:
        import shutil

        d = cwd / into
        shutil.copytree(subs[folder], d)
        (d / name).unlink(missing_ok=True)
        if kind == "dev-zero":
            (d / name).symlink_to("/dev/zero")
        else:
            os.mkfifo(d / name)
    return pre


def foreign_resumable(name: str = "res"):
    """A user's folder that happens to hold a file named like a training state."""
    def pre(cwd: Path, subs: dict) -> None:
        foreign_folder(name)(cwd, subs)
        (cwd / name / "train_state.json").write_text('{"step": 1}')
    return pre


def planted_merge_checkpoint(out: str = "out", body: str = "garbage"):
    def pre(cwd: Path, subs: dict) -> None:
        src = Path(subs["h"]) / f"merges_{body}.ckpt"
        (cwd / f".{out}.merges.ckpt").write_bytes(src.read_bytes())
    return pre


def image_checkpoint(tamper: str):
    """A copy of the tiny image checkpoint with one file changed."""
    def pre(cwd: Path, subs: dict) -> None:
        import shutil

        shutil.copytree(subs["ckpt"], cwd / "ck")
        if tamper == "step":
            p = cwd / "ck" / "train_state.json"
            s = json.loads(p.read_text())
            s["step"] = "three"
            p.write_text(json.dumps(s))
        else:
            import torch
            from safetensors.torch import load_file, save_file

            name = "rng.safetensors" if tamper == "rng" else "model.safetensors"
            w = load_file(cwd / "ck" / name)
            k = "torch" if tamper == "rng" else sorted(w)[0]
            w[k] = torch.zeros(3, dtype=w[k].dtype)
            save_file(w, cwd / "ck" / name)
    return pre


SIG = ("interrupted by",)
FORCE_RULE = "--force replaces only"

# ------------------------------------------------------------------------------------------------ the table
HOSTILE: list[H] = [
    # ---- 1. outputs own only what they create
    h("own-count-foreign-folder", 1, "count", "{corpus}", "-o", "res", "--force", needles=("did not write", FORCE_RULE),
      sub=True, pre=foreign_folder()),
    h("own-export-foreign-folder", 1, "export-tokenizer", "{tok}", "-o", "res", "--force", needles="did not write",
      sub=True, pre=foreign_folder()),
    h("own-train-foreign-folder", 1, "train-bpe", "{corpus}", "--vocab-size", "300", "-o", "res", "--force",
      needles="did not write", sub=True, pre=foreign_folder()),
    h("own-tiktoken-foreign-folder", 1, "export-tiktoken", "{tok}", "-o", "res", "--force", needles="did not write",
      sub=True, pre=foreign_folder()),
    h("own-compare-json-foreign-folder", 1, "compare", "{tok}", "--text", "{corpus}", "--json", "res", "--force",
      needles="did not write", sub=True, pre=foreign_folder()),
    h("own-encode-foreign-folder", 1, "encode", "{corpus}", "--tokenizer", "{tok}", "-o", "res", "--force",
      needles="did not write", sub=True, pre=foreign_folder()),
    h("own-extend-foreign-folder", 1, "extend", "--tokenizer", "{tok}", "{corpus}", "--add", "10", "-o", "res",
      "--force", needles="did not write", pre=foreign_folder()),
    h("own-transplant-foreign-folder", 1, "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "res", "--force",
      needles="did not write", pre=foreign_folder()),
    h("own-embeddings-foreign-folder", 1, "embeddings", "{lm}", "-o", "res", "--force", needles="did not write",
      pre=foreign_folder()),
    h("own-heal-foreign-folder", 1, "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "res", "--force",
      needles="did not write", pre=foreign_folder()),
    h("own-heal-foreign-checkpoint-folder", 1, "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "res", "--force",
      needles="did not write", pre=foreign_folder("res.heal-checkpoint")),
    h("own-image-resume-foreign-folder", 1, "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "res",
      "--resume", needles=("checkpoint in res",), pre=foreign_resumable(), needs=("image",)),
    h("own-hypernet-foreign-folder", 1, "hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "-o", "res",
      "--force", needles="did not write", pre=foreign_folder()),
    h("own-image-encode-foreign-folder", 1, "image", "encode", "--model", "{ckpt}", "{icon}", "-o", "res", "--force",
      needles="did not write", pre=foreign_folder(), needs=("image",)),
    h("own-image-train-foreign-folder", 1, "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "res",
      "--force", needles="did not write", pre=foreign_folder(), needs=("image",)),
    h("own-image-prepare-foreign-folder", 1, "image", "prepare", "--folder", "{icons}", "-o", "res", "--force",
      needles="did not write", pre=foreign_folder(), needs=("image",)),
    h("own-count-fifo", 1, "count", "{corpus}", "-o", "res", "--force", needles="FIFO", sub=True, pre=fifo()),
    h("own-tiktoken-fifo", 1, "export-tiktoken", "{tok}", "-o", "res", "--force", needles="FIFO", sub=True, pre=fifo()),
    h("own-compare-csv-fifo", 1, "compare", "{tok}", "--text", "{corpus}", "--csv", "res", "--force", needles="FIFO",
      sub=True, pre=fifo()),
    h("own-train-fifo", 1, "train-bpe", "{corpus}", "-o", "res", "--force", needles="FIFO", sub=True, pre=fifo()),
    h("own-count-socket", 1, "count", "{corpus}", "-o", "res", "--force", needles="socket", sub=True, pre=sock()),
    h("own-export-socket", 1, "export-tokenizer", "{tok}", "-o", "res", "--force", needles="socket", sub=True,
      pre=sock()),
    h("own-count-hardlink-of-input", 1, "count", "{corpus}", "-o", "hl.jsonl", "--force", needles=("is the input", "inode"),
      sub=True, pre=hardlink("hl.jsonl", "{corpus}")),
    h("own-tiktoken-hardlink-of-input", 1, "export-tiktoken", "{tok}/tokenizer.json", "-o", "hl.json", "--force",
      needles="is the input", sub=True, pre=hardlink("hl.json", "{tok}/tokenizer.json")),
    h("own-compare-json-hardlink-of-text", 1, "compare", "{tok}", "--text", "{corpus}", "--json", "hl.jsonl", "--force",
      needles="is the input", sub=True, pre=hardlink("hl.jsonl", "{corpus}")),
    h("own-count-symlink-to-input", 1, "count", "{corpus}", "-o", "sl", "--force", needles="is the input", sub=True,
      pre=symlink("sl", "{corpus}")),
    h("own-export-symlink-to-input", 1, "export-tokenizer", "{tok}", "-o", "sl", "--force", needles="is the input",
      sub=True, pre=symlink("sl", "{tok}")),
    h("own-tiktoken-side-output-is-input", 1, "export-tiktoken", "{in}/tok_copy/tokenizer.json", "-o",
      "{in}/tok_copy/tokenizer", "--force", needles=("tokenizer.json", "is the input"), sub=True),
    h("own-export-over-a-file", 1, "export-tokenizer", "{tok}", "-o", "res", "--force",
      needles="is a file but this command writes a folder", sub=True, pre=a_file()),
    h("own-train-over-a-file", 1, "train-bpe", "{corpus}", "-o", "res", "--force", needles="writes a folder", sub=True,
      pre=a_file()),
    h("own-count-over-a-tokkit-folder", 1, "count", "{corpus}", "-o", "res", "--force", needles="writes a file",
      sub=True, pre=tokkit_folder()),
    h("own-export-inside-input-via-symlink", 1, "export-tokenizer", "{tok}", "-o", "lnk/sub", "--force",
      needles="lies inside", sub=True, pre=symlink("lnk", "{tok}")),
    h("own-embeddings-inside-model-via-symlink", 1, "embeddings", "{lm}", "-o", "lnk/e.safetensors", "--force",
      needles="lies inside", pre=symlink("lnk", "{lm}")),
    h("own-encode-over-a-file", 1, "encode", "{corpus}", "--tokenizer", "{tok}", "-o", "res", "--force",
      needles="writes a folder", sub=True, pre=a_file()),
    # ---- 2. no code runs from data (stdin answers y to any prompt; the sentinel must never appear)
    *[h(f"code-{n}-auto-map", 2, *a, needles="auto_map", stdin="y\ny\n")  # real processes: tests/test_safe_loading.py
      for n, a in (("bytes-score", ("bytes", "score", "{evil}", "hi")), ("bytes-next", ("bytes", "next", "{evil}", "ab")),
                   ("bytes-complete", ("bytes", "complete", "{evil}", "ab")),
                   ("eval-lm", ("eval-lm", "{evil}", "--text", "{txt}")),
                   ("transplant", ("transplant", "--src", "{evil}", "--dst", "{tok}", "-o", "out")),
                   ("embeddings", ("embeddings", "{evil}")),
                   ("extend", ("extend", "--model", "{evil}", "{corpus}", "--add", "10", "-o", "out")),
                   ("hypernet", ("hypernet", "train", "--base", "{evil}", "--corpus", "{txt}", "-o", "hn")),
                   ("heal", ("heal", "{evil}", "{txt}", "--train", "embeddings", "-o", "out")))],
    *[h(f"code-{n}-recipe-python-tag", 2, *a, needles=("!!python/object/apply:os.system", "constructs a Python object",
                                                       "plain YAML only"), sub=n == "train")
      for n, a in (("train", ("train-bpe", "{corpus}", "--recipe", "{h}/python_tag.yaml", "-o", "o")),
                   ("count", ("count", "{corpus}", "--recipe", "{h}/python_tag.yaml", "-o", "t.counts")))],
    h("code-image-add-to-vocab-auto-map", 2, "image", "add-to-vocab", "--model", "{ckpt}", "--lm", "{evil}", "-o", "x",
      needles="auto_map", stdin="y\n", needs=("image",)),
    *[h(f"code-{n}-pickle-only", 2, *a, needles="pickle", stdin="y\n")
      for n, a in (("bytes-score", ("bytes", "score", "{pickled}", "hi")),
                   ("eval-lm", ("eval-lm", "{pickled}", "--text", "{txt}")),
                   ("transplant", ("transplant", "--src", "{pickled}", "--dst", "{tok}", "-o", "out")),
                   ("embeddings", ("embeddings", "{pickled}")),
                   ("heal", ("heal", "{pickled}", "{txt}", "--train", "embeddings", "-o", "out")))],
    # ---- 3. nothing downloaded that the user did not name (online, a live fake hub, the registry copies missing)
    *[h(f"net-{n}", 3, *a, needles=need, sub=True, needs=("hub",))
      for n, a, need in (
          ("vocab-llama3-copy-missing", ("vocab", "llama3"), ("llama3", "fetch_fixtures")),
          ("vocab-mistral-copy-missing", ("vocab", "mistral"), "fetch_fixtures"),
          ("vocab-gpt2-copy-missing", ("vocab", "gpt2"), "fetch_fixtures"),
          ("export-qwen3-copy-missing", ("export-tokenizer", "qwen3", "-o", "q"), "fetch_fixtures"),
          ("compare-llama3-copy-missing", ("compare", "{tok}", "llama3", "--text", "{corpus}"), "fetch_fixtures"),
          ("encode-llama3-copy-missing", ("encode", "{corpus}", "--tokenizer", "llama3", "-o", "o"), "fetch_fixtures"),
          ("extend-llama3-copy-missing", ("extend", "--tokenizer", "llama3", "{corpus}", "--add", "10", "-o", "o"),
           "fetch_fixtures"),
          ("lint-llama3-copy-missing", ("lint-tokenizer", "llama3"), "fetch_fixtures"),
          ("embeddings-smollm2-copy-missing", ("embeddings", "smollm2"), "fetch_fixtures"),
          ("transplant-dst-copy-missing", ("transplant", "--src", "{lm}", "--dst", "llama3", "-o", "o"),
           "fetch_fixtures"),
          ("vocab-missing-path", ("vocab", "./in/nope.json"), "does not exist"),
      )],
    h("net-embeddings-family-offline", 3, "embeddings", "mistral", needles=("HF_HUB_OFFLINE", "Mistral-7B"), sub=True,
      env={"HF_HUB_OFFLINE": "1"}, needs=("hub",)),
    # ---- 4. bounded resources, checked before anything is allocated
    *[h(f"res-{n}-huge-added-id", 4, *a, needles=("300,000,000", "2 x entries + 1024"), sub=True)
      for n, a in (("vocab", ("vocab", "{h}/huge_added.json")),
                   ("export", ("export-tokenizer", "{h}/huge_added.json", "-o", "o")),
                   ("compare", ("compare", "{h}/huge_added.json", "--text", "{corpus}")),
                   ("tiktoken", ("export-tiktoken", "{h}/huge_added.json", "-o", "r.tiktoken")),
                   ("lint", ("lint-tokenizer", "{h}/huge_added.json")),
                   ("encode", ("encode", "{corpus}", "--tokenizer", "{h}/huge_added.json", "-o", "o")),
                   ("extend", ("extend", "--tokenizer", "{h}/huge_added.json", "{corpus}", "--add", "10", "-o", "o")))],
    h("res-vocab-huge-vocab-id", 4, "vocab", "{h}/huge_vocab.json", needles="300,000,000", sub=True),
    h("res-compare-huge-vocab-id", 4, "compare", "{h}/huge_vocab.json", "--text", "{corpus}", needles="300,000,000",
      sub=True),
    h("res-vocab-huge-rank", 4, "vocab", "{h}/huge.tiktoken", needles=("300,000,000", "largest rank"), sub=True),
    h("res-compare-huge-rank", 4, "compare", "{h}/huge.tiktoken", "--text", "{corpus}", needles="300,000,000", sub=True),
    h("res-export-huge-rank", 4, "export-tokenizer", "{h}/huge.tiktoken", "-o", "o", needles="300,000,000", sub=True),
    h("res-vocab-negative-rank", 4, "vocab", "{h}/negative.tiktoken", needles="negative id", sub=True),
    h("res-vocab-tekken-declared-size", 4, "vocab", "{h}/tekken_huge.json", needles="default_vocab_size", sub=True),
    h("res-train-yaml-bomb", 4, "train-bpe", "{corpus}", "--recipe", "{h}/bomb.yaml", "-o", "o",
      needles=("expands to more than", "aliases"), sub=True),
    h("res-count-yaml-bomb", 4, "count", "{corpus}", "--recipe", "{h}/bomb.yaml", "-o", "t.counts",
      needles="expands to more than", sub=True),
    h("res-image-train-yaml-bomb", 4, "image", "train", "--recipe", "{h}/bomb.yaml", "--data", "{icons}", "-o", "ck",
      needles="expands to more than", needs=("image",)),
    h("res-prior-train-yaml-bomb", 4, "image", "prior", "train", "{ckpt}", "--data", "{icons}", "-o", "pr", "--recipe",
      "{h}/bomb.yaml", needles="expands to more than", needs=("image",)),
    h("res-train-recursive-yaml", 4, "train-bpe", "{corpus}", "--recipe", "{h}/recursive.yaml", "-o", "o",
      needles="expands to more than", sub=True),
    h("res-train-recipe-dev-zero", 4, "train-bpe", "{corpus}", "--recipe", "/dev/zero", "-o", "o",
      needles="not a regular file", sub=True),
    h("res-count-recipe-dev-zero", 4, "count", "{corpus}", "--recipe", "/dev/zero", "-o", "t.counts",
      needles="not a regular file", sub=True),
    h("res-train-recipe-fifo", 4, "train-bpe", "{corpus}", "--recipe", "{h}/fifo.yaml", "-o", "o",
      needles="not a regular file", sub=True),
    # list files (--domain-tokens, --terms) are read whole: a device would fill the memory, a FIFO block forever
    h("res-train-domain-tokens-dev-zero", 4, "train-bpe", "{corpus}", "--domain-tokens", "/dev/zero", "-o", "o",
      needles=("--domain-tokens file /dev/zero", "not a regular file"), sub=True),
    h("res-count-domain-tokens-dev-zero", 4, "count", "{corpus}", "--domain-tokens", "/dev/zero", "-o", "t.counts",
      needles=("--domain-tokens file /dev/zero", "not a regular file"), sub=True),
    h("res-count-domain-tokens-fifo", 4, "count", "{corpus}", "--domain-tokens", "d.txt", "-o", "t.counts",
      needles=("--domain-tokens file d.txt", "not a regular file"), sub=True, pre=fifo("d.txt")),
    h("res-compare-terms-fifo", 4, "compare", "{tok}", "--text", "{corpus}", "--terms", "terms.txt",
      needles=("--terms file terms.txt", "not a regular file"), sub=True, pre=fifo("terms.txt")),
    h("res-compare-terms-dev-zero", 4, "compare", "{tok}", "--text", "{corpus}", "--terms", "/dev/zero",
      needles=("--terms file /dev/zero", "not a regular file"), sub=True),
    # side files of a model or tokenizer folder (tokenizer_config.json, generation_config.json, chat_template.jinja)
    # are read as regular files of a capped size: a device would fill the memory, a FIFO block forever
    *[h(f"res-{cmd}-{name.split('.')[0].replace('_', '-')}-{kind}", 4, *args, needles=(name, "not a regular file"),
        sub=True, pre=side_file(folder, name, kind, into), needs=(folder,), timeout=120)
      for kind in ("dev-zero", "fifo")
      for cmd, folder, name, into, args in (
          ("vocab", "tok", "tokenizer_config.json", "t", ("vocab", "t")),
          ("transplant-dst", "tok", "tokenizer_config.json", "t", ("transplant", "--src", "{lm}", "--dst", "t", "-o", "o")),
          ("eval-lm", "lm", "tokenizer_config.json", "m", ("eval-lm", "m", "--text", "{txt}")),
          ("transplant-src", "lm", "generation_config.json", "m", ("transplant", "--src", "m", "--dst", "{tok}", "-o", "o")),
          ("transplant-src", "lm", "chat_template.jinja", "m", ("transplant", "--src", "m", "--dst", "{tok}", "-o", "o")),
          ("transplant-src", "lm", "config.json", "m", ("transplant", "--src", "m", "--dst", "{tok}", "-o", "o")),
      )],
    h("res-train-recipe-2mb", 4, "train-bpe", "{corpus}", "--recipe", "{h}/big.yaml", "-o", "o", needles="larger than",
      sub=True),
    *[h(f"res-{n}-threads-99999", 4, *a, "--threads", "99999", needles=("--threads", "99999", "4 x"))
      for n, a in (("transplant", ("transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "o")),
                   ("eval-lm", ("eval-lm", "{lm}", "--text", "{txt}")),
                   ("hypernet", ("hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "-o", "hn")),
                   ("heal", ("heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "o")))],
    h("res-bytes-threads-99999", 4, "bytes", "--threads", "99999", "score", "{lm}", "hi", needles=("--threads", "99999")),
    h("res-image-train-threads-99999", 4, "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "ck",
      "--threads", "99999", needles="--threads", needs=("image",)),
    h("res-eval-lm-env-threads", 4, "eval-lm", "{lm}", "--text", "{txt}", needles=("TOKKIT_THREADS", "99999"),
      env={"TOKKIT_THREADS": "99999"}),
    h("res-bytes-env-threads", 4, "bytes", "score", "{lm}", "hi", needles="TOKKIT_THREADS", env={"TOKKIT_THREADS": "99999"}),
    h("res-transplant-env-threads-text", 4, "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "o",
      needles=("TOKKIT_THREADS", "whole number"), env={"TOKKIT_THREADS": "many"}),
    h("res-image-encode-decompression-bomb", 4, "image", "encode", "--model", "{ckpt}", "{h}/bomb.png", "-o", "x.tok",
      needles=("bomb.png", "pixels"), needs=("image",)),
    h("res-image-eval-decompression-bomb", 4, "image", "eval", "{ckpt}", "--images", "{h}/bombdir", needles="pixels",
      needs=("image",)),
    h("res-image-train-decompression-bomb", 4, "image", "train", "--recipe", "tiny", "--data", "{h}/bombdir", "-o", "ck",
      needles="pixels", needs=("image",)),
    # ---- 5. non-finite numbers never pass silently
    *[h(f"nan-{n}", 5, *a, needles=(flag, "finite")) for n, a, flag in (
        ("transplant-temperature-nan", ("transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "o", "--temperature", "nan"),
         "--temperature"),
        ("transplant-memory-inf", ("transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "o", "--memory-gb", "inf"),
         "--memory-gb"),
        ("bytes-temperature-inf", ("bytes", "complete", "{lm}", "ab", "--temperature", "inf"), "--temperature"),
        ("heal-lr-nan", ("heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "o", "--lr", "nan"), "--lr"),
        ("heal-lr-inf", ("heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "o", "--lr", "inf"), "--lr"),
        ("heal-tau-nan", ("heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "o", "--tau", "nan"), "--tau"),
        ("hypernet-lr-inf", ("hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "-o", "hn", "--lr", "inf"), "--lr"),
        ("hypernet-max-minutes-inf", ("hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "-o", "hn",
                                      "--max-minutes", "inf"), "--max-minutes"),
    )],
    h("nan-train-held-out-nan", 5, "train-bpe", "{corpus}", "--held-out", "nan", "-o", "o", needles=("--held-out", "finite"),
      sub=True),
    h("nan-image-train-lr-nan", 5, "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "ck", "--lr", "nan",
      needles="--lr", needs=("image",)),
    h("nan-image-sample-temperature-nan", 5, "image", "sample", "{ckpt}", "--temperature", "nan", "-o", "g.png",
      needles="--temperature", needs=("image",)),
    h("nan-prior-train-lr-inf", 5, "image", "prior", "train", "{ckpt}", "--data", "{icons}", "-o", "pr", "--lr", "inf",
      needles="--lr", needs=("image",)),
    *[h(f"nan-weights-{n}", 5, *a, needles=("model.layers.0.mlp.up_proj.weight", "NaN or infinite"))
      for n, a in (("bytes-score", ("bytes", "score", "{nanlm}", "hi")),
                   ("eval-lm", ("eval-lm", "{nanlm}", "--text", "{txt}")),
                   ("embeddings", ("embeddings", "{nanlm}")),
                   ("transplant", ("transplant", "--src", "{nanlm}", "--dst", "{tok}", "-o", "o")),
                   ("heal", ("heal", "{nanlm}", "{txt}", "--train", "embeddings", "-o", "o")),
                   ("hypernet", ("hypernet", "train", "--base", "{nanlm}", "--corpus", "{txt}", "-o", "hn")),
                   ("extend", ("extend", "--model", "{nanlm}", "{corpus}", "--add", "10", "-o", "o")))],
    h("nan-train-recipe-nan", 5, "train-bpe", "{corpus}", "--recipe", "{h}/nan.yaml", "-o", "o",
      needles=("held_out = nan", "finite"), sub=True),
    h("nan-count-recipe-inf", 5, "count", "{corpus}", "--recipe", "{h}/inf.yaml", "-o", "t.counts", needles="finite",
      sub=True),
    h("nan-image-recipe-nan-lr", 5, "image", "train", "--recipe", "{h}/nan_image.yaml", "--data", "{icons}", "-o", "ck",
      needles=("lr = nan", "finite"), needs=("image",)),
    # ---- 6. signals and I/O errors: one line, 130/143/141, nothing left
    *[h(f"sig-{n}-{sig.lower()}-mid-write", 6, *a, needles=SIG, sub=True, code=130 if sig == "SIGINT" else 143,
        mode=f"commit-{sig}") for sig in ("SIGTERM", "SIGINT") for n, a in (
        ("train", ("train-bpe", "{corpus}", "--vocab-size", "300", "-o", "o", "--quiet")),
        ("export", ("export-tokenizer", "{tok}", "-o", "sub/dir/o")),
        ("count", ("count", "{corpus}", "-o", "t.counts", "--quiet", "--workers", "1")),
        ("tiktoken", ("export-tiktoken", "{tok}", "-o", "r.tiktoken")),
        ("compare-json", ("compare", "{tok}", "--text", "{corpus}", "--json", "r.json")),
    )],
    h("sig-encode-sigterm-mid-write", 6, "encode", "{corpus}", "--tokenizer", "{tok}", "-o", "o", "--workers", "1",
      "--quiet", needles=(*SIG, "--resume"), sub=True, code=143, mode="commit-SIGTERM", keeps=("o",)),  # its plan
    h("sig-embeddings-sigterm-mid-write", 6, "embeddings", "{lm}", "-o", "deep/e.safetensors", needles=SIG, sub=True,
      code=143, mode="commit-SIGTERM"),
    h("sig-train-sigint-native-trainer", 6, "train-bpe", "{big}", "--vocab-size", "30000", "-o", "o", "--quiet",
      needles=SIG, sub=True, code=130, mode="train-SIGINT"),
    h("sig-train-sigterm-native-trainer", 6, "train-bpe", "{big}", "--vocab-size", "30000", "-o", "o", "--quiet",
      needles=SIG, sub=True, code=143, mode="train-SIGTERM"),
    *[h(f"io-{n}-file-size-limit", 6, *a, needles=("cannot write output", "File too large", "nothing was written"),
        sub=True, mode="fsize") for n, a in (
        ("train", ("train-bpe", "{corpus}", "--vocab-size", "300", "-o", "new/o", "--quiet")),
        ("export", ("export-tokenizer", "{tok}", "-o", "o")),
        ("count", ("count", "{corpus}", "-o", "t.counts", "--quiet", "--workers", "1")),
        ("tiktoken", ("export-tiktoken", "{tok}", "-o", "r.tiktoken")),
        ("compare-json", ("compare", "{tok}", "--text", "{corpus}", "--json", "r.json")),
        ("encode", ("encode", "{corpus}", "--tokenizer", "{tok}", "-o", "o", "--workers", "1", "--quiet")),
        ("extend", ("extend", "--tokenizer", "{tok}", "{corpus}", "--add", "10", "-o", "o")),
    )],
    *[h(f"io-{n}-stdout-closed", 6, *a, needles="stdout was closed", sub=True, code=141, mode="stdout-closed")
      for n, a in (("vocab", ("vocab", "{tok}", "--json")), ("compare", ("compare", "{tok}", "--text", "{corpus}")),
                   ("lint", ("lint-tokenizer", "{tok}")))],
    h("io-vocab-non-utf8-path", 6, "vocab", "{in}/caf\udce9.json", needles="does not exist", sub=True),
    h("io-count-non-utf8-corpus-name", 6, "count", "{h}/lat\udce9n.txt", "-o", "t.counts", needles="--skip-bad-utf8",
      sub=True),
    # ---- 7. messages that name the defect
    *[h(f"msg-{n}-{d}", 7, *a.replace("D", d).split("|"), needles=need, sub=True) for d, need in (
        ("merge_unknown", ("model.merges[3]", "'zzz'", "not a token of model.vocab")),
        ("negative_id", ("token 'a'", "-5 (negative)")),
        ("string_id", ("token 'a'", "'5' (a string)")),
        ("float_id", ("token 'a'", "5.5 (a fraction)")),
        ("added_no_id", ("added token", "added_tokens[0]", "has no id")),
        ("bad_regex", ("pre_tokenizer", "regex", "does not compile", "character")),
        ("duplicate_id", ("gives id", "two tokens")),
    ) for n, a in (("vocab", "vocab|{h}/D.json"), ("export", "export-tokenizer|{h}/D.json|-o|o"))],
    *[h(f"msg-{n}", 7, *a.split("|"), needles=need, sub=True) for n, a, need in (
        ("compare-merge-unknown", "compare|{h}/merge_unknown.json|--text|{corpus}", "model.merges[3]"),
        ("tiktoken-negative-id", "export-tiktoken|{h}/negative_id.json|-o|r.tiktoken", "-5 (negative)"),
        ("lint-added-no-id", "lint-tokenizer|{h}/added_no_id.json", "has no id"),
        ("encode-string-id", "encode|{corpus}|--tokenizer|{h}/string_id.json|-o|o", "'5' (a string)"),
        ("extend-float-id", "extend|--tokenizer|{h}/float_id.json|{corpus}|--add|10|-o|o", "5.5 (a fraction)"),
        ("train-parquet-int-column", "train-bpe|{h}/int.parquet|-o|o", ("column 'text' holds int64", "['body']")),
        ("count-parquet-int-column", "count|{h}/int.parquet|-o|t.counts|--workers|1", "column 'text' holds int64"),
        ("encode-parquet-int-column", "encode|{h}/int.parquet|--tokenizer|{tok}|-o|o|--workers|1", "holds int64"),
    )],
    # a model that holds no tokens; an added token on an id that model.vocab (or another added token) gives away
    *[h(f"msg-{n}-{d}", 7, *a.replace("D", d).split("|"), needles=need, sub=n == "vocab") for d, need in (
        ("empty_vocab", ("the model holds no tokens", "only 13 added tokens", "fix the file")),
        ("empty_model", ("the model holds no tokens", "model.vocab is empty")),
        ("added_collides", ("added token '<coll>' has id", "which model.vocab gives to 'a'", "free id")),
        ("added_twice", ("added_tokens give id", "two tokens, '<x1>' and '<x2>'")),
    ) for n, a in (("vocab", "vocab|{h}/D.json"), ("vocab-text", "vocab|{h}/D.json|--text|hello"),
                   ("compare", "compare|{h}/D.json|--text|{corpus}"), ("tiktoken", "export-tiktoken|{h}/D.json|-o|r.tiktoken"),
                   ("export", "export-tokenizer|{h}/D.json|-o|o"), ("lint", "lint-tokenizer|{h}/D.json"),
                   ("encode", "encode|{corpus}|--tokenizer|{h}/D.json|-o|o|--workers|1"))],
    # recipes: plain YAML only, each key once, tokens that are UTF-8
    *[h(f"msg-{n}-recipe-{r}", 7, *a.replace("R", r).split("|"), needles=need, sub=n == "train")
      for r, need in (("dup_key", ("key 'vocab_size' appears twice", "line 1 and line 3", "remove one")),
                      ("surrogate", ("special token", "lone surrogate U+D800", "UTF-8")))
      for n, a in (("train", "train-bpe|{corpus}|--recipe|{h}/R.yaml|-o|o"),
                   ("count", "count|{corpus}|--recipe|{h}/R.yaml|-o|t.counts"))],
    h("msg-train-special-token-not-utf8", 7, "train-bpe", "{corpus}", "--vocab-size", "400", "--special-token",
      os.fsdecode(b"\xff"), "-o", "o", needles=("--special-token", "not UTF-8", "byte 0xff"), sub=True),
    h("msg-train-forgotten-resume", 7, "train-bpe", "--counts", "{counts}", "--vocab-size", "300", "-o", "out",
      needles=("--resume", "interrupted merge loop"), sub=True, pre=planted_merge_checkpoint(body="good")),
    h("msg-train-tampered-merge-state", 7, "train-bpe", "--counts", "{counts}", "--vocab-size", "300", "-o", "out",
      "--resume", needles=("not a tokkit merge checkpoint", "outside"), sub=True, pre=planted_merge_checkpoint(body="tampered")),
    h("msg-train-garbage-merge-state", 7, "train-bpe", "--counts", "{counts}", "--vocab-size", "300", "-o", "out",
      "--resume", needles="not a tokkit merge checkpoint", sub=True, pre=planted_merge_checkpoint(body="garbage")),
    h("msg-train-force-keeps-a-foreign-merge-state", 7, "train-bpe", "--counts", "{counts}", "--vocab-size", "300",
      "-o", "out", "--force", needles=("is not one", "move it away yourself"), sub=True,
      pre=planted_merge_checkpoint(body="garbage")),
    *[h(f"msg-image-train-tampered-{t}", 7, "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "ck",
        "--steps", "3", "--resume", needles=("checkpoint in ck", "damaged or was changed"), pre=image_checkpoint(t),
        needs=("image",)) for t in ("rng", "model", "step")],
    # ---- 8. native panics never reach the terminal raw (real processes: fd 2 as the user's terminal sees it)
    *[h(f"panic-{n}", 8, *a.split("|"), needles=need, sub=True) for n, a, need in (
        ("vocab-cut-tiktoken", "vocab|{in}/cut.tiktoken", "damaged tiktoken rank file"),
        ("compare-cut-tiktoken", "compare|{in}/cut.tiktoken|--text|{corpus}", "damaged"),
        ("export-cut-tiktoken", "export-tokenizer|{in}/cut.tiktoken|-o|o", "damaged"),
        ("encode-cut-tiktoken", "encode|{corpus}|--tokenizer|{in}/cut.tiktoken|-o|o", "damaged"),
        ("extend-cut-tiktoken", "extend|--tokenizer|{in}/cut.tiktoken|{corpus}|--add|10|-o|o", "cut.tiktoken"),
        ("lint-cut-tiktoken", "lint-tokenizer|{in}/cut.tiktoken", "cut.tiktoken"),
        ("vocab-garbage-spm", "vocab|{in}/garbage.model", "garbage.model"),
        ("vocab-truncated-spm", "vocab|{in}/trunc.model", "sentencepiece"),
        ("vocab-truncated-gguf", "vocab|{in}/trunc.gguf", "truncated"),
        ("compare-garbage-spm", "compare|{in}/garbage.model|--text|{corpus}", "garbage.model"),
    )],
]


# ------------------------------------------------------------------------------------------------ the files
def _tokenizer_variants(d: Path, tok_json: Path) -> None:
    base = json.loads(tok_json.read_text(encoding="utf-8"))

    def variant(name: str, change: Callable[[dict], None]) -> None:
        data = copy.deepcopy(base)
        change(data)
        (d / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def merge_unknown(x):
        x["model"]["merges"][3] = ["zzz", "q"]

    def vocab_set(tok, value):
        def change(x):
            x["model"]["vocab"][tok] = value
        return change

    def added_no_id(x):
        x["added_tokens"][0].pop("id")

    def bad_regex(x):
        x["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(ab[c"}, "behavior": "Isolated", "invert": False}

    def huge_added(x):
        x["added_tokens"].append({"id": 300_000_000, "content": "<big>", "single_word": False, "lstrip": False,
                                  "rstrip": False, "normalized": False, "special": True})

    def duplicate(x):
        v = x["model"]["vocab"]
        v["a"] = v["b"]

    def empty_vocab(x):  # the model holds nothing; only the special tokens are left (added_tokens)
        x["model"]["vocab"], x["model"]["merges"] = {}, []

    def empty_model(x):
        empty_vocab(x)
        x["added_tokens"] = []

    def _added(content, i):
        return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    def added_collides(x):  # an added token on the id model.vocab gives to 'a'
        x["added_tokens"].append(_added("<coll>", x["model"]["vocab"]["a"]))

    def added_twice(x):  # two added tokens with one (free) id
        top = max(x["model"]["vocab"].values()) + 1
        x["added_tokens"] += [_added("<x1>", top), _added("<x2>", top)]

    variant("merge_unknown", merge_unknown)
    variant("negative_id", vocab_set("a", -5))
    variant("string_id", vocab_set("a", "5"))
    variant("float_id", vocab_set("a", 5.5))
    variant("added_no_id", added_no_id)
    variant("bad_regex", bad_regex)
    variant("huge_added", huge_added)
    variant("huge_vocab", vocab_set("a", 300_000_000))
    variant("duplicate_id", duplicate)
    variant("empty_vocab", empty_vocab)
    variant("empty_model", empty_model)
    variant("added_collides", added_collides)
    variant("added_twice", added_twice)


def _merge_states(d: Path, counts: Path) -> None:
    """A real interrupted merge loop's checkpoint, one with an id out of range, and garbage."""
    import numpy as np

    from tokkit.train import load_recipe
    from tokkit.train.bpe_counts import BpeSpec, train_bpe_counts
    from tokkit.train.from_counts import load_counts

    rec = load_recipe(overrides={"vocab_size": 300})
    loaded = load_counts([counts], rec)
    from tokenizers import pre_tokenizers

    alphabet = tuple(sorted(set(pre_tokenizers.ByteLevel.alphabet())))
    spec = BpeSpec(300, rec.min_frequency, tuple(rec.special_tokens), alphabet, None)
    good = d / "merges_good.ckpt"
    train_bpe_counts(loaded.table.words(byte_level=True), spec, progress=False, checkpoint=good, checkpoint_every=1,
                     stop_after=3)
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["words"] = arrays["words"].copy()
    arrays["words"][0] = 10**6  # a symbol id far beyond the alphabet
    with open(d / "merges_tampered.ckpt", "wb") as f:
        np.savez(f, **arrays)
    (d / "merges_garbage.ckpt").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)


def build(d: Path, *, tok: Path, counts: Path) -> Path:
    """Write every hostile input into ``d`` (once per module)."""
    d.mkdir(exist_ok=True)
    _tokenizer_variants(d, tok / "tokenizer.json")
    (d / "huge.tiktoken").write_text("IQ== 0\nIg== 1\nIw== 300000000\n")
    (d / "negative.tiktoken").write_text("IQ== 0\nIg== -4\n")
    (d / "tekken_huge.json").write_text(json.dumps({
        "config": {"pattern": r"\S+|\s+", "default_vocab_size": 300_000_000, "default_num_special_tokens": 3,
                   "version": "v3"},
        "vocab": [{"rank": i, "token_bytes": "IQ==", "token_str": "!"} for i in range(3)], "special_tokens": []}))
    levels = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (d / "bomb.yaml").write_text("\n".join(levels) + "\n")
    (d / "recursive.yaml").write_text("a: &a [1, *a]\n")
    (d / "big.yaml").write_text("# padding\n" * 220_000 + "kind: bpe\n")  # 2.2 MB
    os.mkfifo(d / "fifo.yaml")
    (d / "nan.yaml").write_text("vocab_size: 500\nheld_out: .nan\n")
    (d / "inf.yaml").write_text("kind: bpe\nextra_weight: [1.0, .inf]\n")
    (d / "nan_image.yaml").write_text("recipe: tiny\nlr: .nan\n")
    (d / "dup_key.yaml").write_text("vocab_size: 400\nmin_frequency: 2\nvocab_size: 500\n")
    (d / "python_tag.yaml").write_text('vocab_size: !!python/object/apply:os.system ["touch PWNED"]\n')
    (d / "surrogate.yaml").write_text('vocab_size: 400\nspecial_tokens: ["\\ud800"]\n')  # YAML's escape: a lone surrogate
    (d / "lat\udce9n.txt").write_bytes(b"caf\xe9 au lait\n" * 3)  # a file name that is not UTF-8 (b"lat\xe9n.txt")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [1, 2, 3], "body": ["a", "b", "c"]}), d / "int.parquet")
    _merge_states(d, counts)
    return d


def build_images(d: Path) -> None:
    """A PNG that declares 20000 x 20000 pixels (about 400 KB on disk): a decompression bomb."""
    from PIL import Image

    im = Image.new("1", (20000, 20000))
    im.save(d / "bomb.png", optimize=True)
    (d / "bombdir").mkdir(exist_ok=True)
    im.save(d / "bombdir" / "bomb.png", optimize=True)


def big_corpus(path: Path) -> Path:
    """About 3 MB of seeded random words in jsonl: HF's trainer needs many seconds for 30k merges on it."""
    import random

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12))) for _ in range(150_000)]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(2000):
            f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(200))}) + "\n")
    return path


#: Cases whose class needs no file-descriptor view run in-process (CliRunner): CI time stays modest while more
#: than a third still run as real processes (every signal, stdout, hub and panic case among them).
_IN_PROCESS = {
    "own-train-foreign-folder", "own-tiktoken-foreign-folder", "own-compare-json-foreign-folder",
    "own-encode-foreign-folder", "own-tiktoken-fifo", "own-compare-csv-fifo", "own-train-fifo", "own-export-socket",
    "own-tiktoken-hardlink-of-input", "own-compare-json-hardlink-of-text", "own-count-symlink-to-input",
    "own-export-symlink-to-input", "own-train-over-a-file", "own-count-over-a-tokkit-folder", "own-encode-over-a-file",
    "res-export-huge-added-id", "res-compare-huge-added-id", "res-tiktoken-huge-added-id", "res-lint-huge-added-id",
    "res-encode-huge-added-id", "res-extend-huge-added-id", "res-compare-huge-vocab-id", "res-compare-huge-rank",
    "res-export-huge-rank", "res-vocab-negative-rank", "res-count-yaml-bomb", "res-train-recursive-yaml",
    "res-count-recipe-dev-zero", "res-train-recipe-2mb", "res-count-domain-tokens-dev-zero", "res-compare-terms-dev-zero",
    *(f"msg-export-{d}" for d in ("merge_unknown", "negative_id", "string_id", "float_id", "added_no_id", "bad_regex",
                                   "duplicate_id")),
    "msg-compare-merge-unknown", "msg-tiktoken-negative-id", "msg-lint-added-no-id", "msg-encode-string-id",
    "msg-extend-float-id", "msg-count-parquet-int-column", "msg-encode-parquet-int-column",
    "msg-train-garbage-merge-state",
}
assert _IN_PROCESS <= {c.id for c in HOSTILE}, sorted(_IN_PROCESS - {c.id for c in HOSTILE})
HOSTILE = [replace(c, sub=False) if c.id in _IN_PROCESS else c for c in HOSTILE]
