"""The bad-input contract, command by command: one generic harness over one table of cases.

Every case runs the real CLI (in-process, ``CliRunner``) inside an empty working directory and asserts
the contract of the developers' guide: exit code 2, exactly one stderr line and it starts with
``error:``, no traceback, and nothing new, changed or removed anywhere under the working directory or
the shared inputs folder (hidden temporaries included: the trees are snapshotted before and after,
with sizes and mtimes). A case may also name substrings its one line must contain.

To add a command: append rows to ``CASES``. Placeholders in arguments: ``{in}`` the shared folder of bad
inputs (built once, see ``inputs``), ``{tok}`` a tiny trained tokenizer folder, ``{lm}`` a tiny Llama
folder with that tokenizer, ``{badlm}`` the same with its weights cut in half, ``{counts}`` a count table, ``{ckpt}`` a tiny
image-tokenizer checkpoint (``{badckpt}`` truncated),
``{icons}`` the committed icons, ``{corpus}`` a small jsonl corpus, ``{txt}`` a small UTF-8 text file.
``pre`` prepares the working directory before the snapshot (an existing output, a planted checkpoint).
``absent``: substrings the line must not contain (a fix the command does not offer, a wrong diagnosis).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from tokkit_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "data" / "image" / "icons"
LEGAL = ROOT / "data" / "legal" / "train.jsonl"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...] = ()  # substrings the error line must contain
    pre: Callable[[Path], None] | None = None  # prepares the working directory (inside the snapshot)
    needs: tuple[str, ...] = field(default=())  # "image": needs torch + Pillow
    absent: tuple[str, ...] = ()  # substrings the error line must not contain


def C(id: str, *args: str, needles: tuple[str, ...] | str = (), pre=None, needs: tuple[str, ...] = (),
      absent: tuple[str, ...] | str = ()) -> Case:
    return Case(id, tuple(args), (needles,) if isinstance(needles, str) else tuple(needles), pre, needs,
                (absent,) if isinstance(absent, str) else tuple(absent))


def _mkdir_with_file(name: str) -> Callable[[Path], None]:
    def pre(cwd: Path) -> None:
        (cwd / name).mkdir()
        (cwd / name / "keep.txt").write_text("keep")
    return pre


def _file(name: str, data: bytes = b"keep") -> Callable[[Path], None]:
    def pre(cwd: Path) -> None:
        (cwd / name).write_bytes(data)
    return pre


def _fifo(name: str) -> Callable[[Path], None]:
    def pre(cwd: Path) -> None:
        os.mkfifo(cwd / name)
    return pre


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    """A file of ``size`` zero bytes that takes no disk space (a list file over the cap)."""
    def pre(cwd: Path) -> None:
        with open(cwd / name, "wb") as f:
            f.truncate(size)
    return pre


class _Evil:
    """Unpickling this runs ``open(path, 'w')``: a checkpoint loader that unpickles would create the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _encode_state(plan: str) -> Callable[[Path], None]:
    """An interrupted `tokkit encode` in ./out: its state folder with ``plan``."""
    def pre(cwd: Path) -> None:
        (cwd / "out" / ".tokkit-encode").mkdir(parents=True)
        (cwd / "out" / ".tokkit-encode" / "plan.json").write_text(plan)
    return pre


def _evil_checkpoint(cwd: Path) -> None:
    (cwd / ".out.merges.ckpt").write_bytes(pickle.dumps((1, _Evil(cwd / "PWNED"))))


def _evil_weights(cwd: Path) -> None:
    (cwd / "evil.bin").write_bytes(pickle.dumps({"latent_tokens": _Evil(cwd / "PWNED")}))


IMG = ("image",)
RESUME_PICKLE = "not a tokkit merge checkpoint"
SKIP = "--skip-bad-utf8"  # offered by train-bpe, count and encode only: no other command may suggest it

CASES: list[Case] = [
    # ---- global
    C("unknown-command", "nosuchcommand", needles="nosuchcommand"),
    C("unknown-option", "vocab", "gpt2", "--bogus", needles="--bogus"),
    C("missing-argument", "vocab", needles="NAME_OR_PATH"),
    # ---- vocab: the tokenizer loaders
    C("vocab-unknown-alias", "vocab", "llama9", needles=("llama9", "gpt2", "mistral")),
    # argv bytes that are not UTF-8 reach Python as surrogates (PEP 383): b"ab\xed\xa0\x80"
    C("vocab-device", "vocab", "/dev/zero", needles=("/dev/zero", "not a regular file")),  # read to the end: never ends
    C("vocab-text-not-utf8", "vocab", "gpt2", "--text", os.fsdecode(b"ab\xed\xa0\x80"), needles=("--text", "not UTF-8", "0xed at byte 2")),
    C("vocab-missing-file", "vocab", "{in}/nope/tokenizer.json", needles="does not exist"),
    C("vocab-missing-relative", "vocab", "./nope", needles="does not exist"),
    C("vocab-missing-under-existing-folder", "vocab", "{in}/does_not_exist", needles="does not exist"),
    C("vocab-empty-json", "vocab", "{in}/tokenizer_empty.json", needles="empty"),
    C("vocab-truncated-json", "vocab", "{in}/tok_trunc/tokenizer.json", needles=("not valid JSON", "truncated")),
    C("vocab-json-not-tokenizer", "vocab", "{in}/notatok.json", needles=("not a tokenizer.json", "model")),
    C("vocab-json-list", "vocab", "{in}/list.json", needles=("top level is a list", "keys")),
    C("vocab-empty-gguf", "vocab", "{in}/empty.gguf", needles="empty"),
    C("vocab-truncated-gguf", "vocab", "{in}/trunc.gguf", needles="truncated"),
    C("vocab-cut-tiktoken", "vocab", "{in}/cut.tiktoken", needles=("damaged tiktoken rank file", "PanicException")),
    C("vocab-truncated-spm", "vocab", "{in}/trunc.model", needles="sentencepiece"),
    C("vocab-garbage-spm", "vocab", "{in}/garbage.model"),
    C("vocab-folder-without-tokenizer", "vocab", "{in}/notmodel", needles="folder"),
    C("vocab-binary-file", "vocab", "{in}/binary.bin", needles="format"),
    C("vocab-latin1-json", "vocab", "{in}/latin1.json", needles="UTF-8"),
    # ---- export-tokenizer
    C("export-truncated", "export-tokenizer", "{in}/tok_trunc/tokenizer.json", "-o", "out", needles="truncated"),
    C("export-parent-is-file", "export-tokenizer", "{tok}", "-o", "{in}/afile/sub", needles=("afile", "not a folder")),
    C("export-unwritable", "export-tokenizer", "{tok}", "-o", "/proc/tokkit-out", needles="cannot write"),
    C("export-exists", "export-tokenizer", "{tok}", "-o", "out", needles="--force", pre=_mkdir_with_file("out")),
    C("export-onto-input", "export-tokenizer", "{tok}", "-o", "{tok}", "--force", needles=("is the input", "--force")),
    C("export-inside-input", "export-tokenizer", "{tok}", "-o", "{tok}/sub", "--force", needles="lies inside"),
    C("export-contains-input", "export-tokenizer", "{in}/tok_copy/tokenizer.json", "-o", "{in}/tok_copy", "--force",
      needles="contains"),
    # ---- embeddings
    C("emb-not-model-folder", "embeddings", "{in}/notmodel", needles=("config.json", "model folder")),
    C("emb-missing", "embeddings", "./nope", needles="does not exist"),
    C("emb-unknown-model", "embeddings", "llama9", needles="llama9"),
    C("emb-truncated-gguf", "embeddings", "{in}/trunc.gguf", needles="truncated"),
    C("emb-parent-is-file", "embeddings", "{lm}", "-o", "{in}/afile/e.safetensors", needles="not a folder"),
    C("emb-exists", "embeddings", "{lm}", "-o", "e.safetensors", needles="--force", pre=_file("e.safetensors")),
    C("emb-into-model", "embeddings", "{lm}", "-o", "{lm}/model.safetensors", "--force", needles="input"),
    C("emb-truncated-weights", "embeddings", "{badlm}", needles=("model.safetensors", "truncated")),
    C("emb-tokenizer-too-large", "embeddings", "{lm}", "--tokenizer", "gpt2", "-o", "e.safetensors",
      needles="embedding has only"),
    # ---- train-bpe: corpora, numbers, recipes, outputs, count tables, checkpoints
    C("train-empty-corpus", "train-bpe", "{in}/empty.txt", "--vocab-size", "300", "-o", "out", needles="no training text"),
    C("train-latin1-corpus", "train-bpe", "{in}/latin1.txt", "--vocab-size", "300", "-o", "out",
      needles=("latin1.txt", "--skip-bad-utf8")),
    C("train-binary-corpus", "train-bpe", "{in}/binary.bin", "--vocab-size", "300", "-o", "out", needles="UTF-8"),
    C("train-missing-source", "train-bpe", "./nope.txt", "-o", "out", needles="matches no file"),
    C("train-no-source", "train-bpe", "-o", "out", needles="SOURCES"),
    C("train-vocab-0", "train-bpe", "{corpus}", "--vocab-size", "0", "-o", "out", needles=("--vocab-size", "269")),
    C("train-vocab-huge", "train-bpe", "{corpus}", "--vocab-size", "100000000000", "-o", "out",
      needles=("--vocab-size", "16777216")),
    C("train-vocab-200", "train-bpe", "{corpus}", "--vocab-size", "200", "-o", "out", needles=("--vocab-size", "269")),
    C("train-vocab-text", "train-bpe", "{corpus}", "--vocab-size", "lots", "-o", "out", needles="--vocab-size"),
    C("train-min-frequency-0", "train-bpe", "{corpus}", "--min-frequency", "0", "-o", "out", needles="--min-frequency"),
    C("train-held-out-1.5", "train-bpe", "{corpus}", "--held-out", "1.5", "-o", "out", needles="--held-out"),
    C("train-pad-to-0", "train-bpe", "{corpus}", "--pad-to", "0", "-o", "out", needles="--pad-to"),
    C("train-pad-to-text", "train-bpe", "{corpus}", "--pad-to", "many", "-o", "out", needles="--pad-to"),
    C("train-char-without-length", "train-bpe", "{corpus}", "--kind", "char", "-o", "out", needles="max_token_length"),
    C("train-recipe-yaml-syntax", "train-bpe", "{corpus}", "--recipe", "{in}/syntax.yaml", "-o", "out",
      needles=("line 3", "column 1")),
    C("train-recipe-unknown-key", "train-bpe", "{corpus}", "--recipe", "{in}/unknown_key.yaml", "-o", "out",
      needles=("vocab_sise", "Known keys")),
    C("train-recipe-wrong-type", "train-bpe", "{corpus}", "--recipe", "{in}/wrong_type.yaml", "-o", "out",
      needles="vocab_size"),
    C("train-recipe-list", "train-bpe", "{corpus}", "--recipe", "{in}/list.yaml", "-o", "out", needles="mapping"),
    C("train-recipe-unknown-name", "train-bpe", "{corpus}", "--recipe", "legal-99k", "-o", "out", needles="legal-32k"),
    C("train-recipe-not-utf8", "train-bpe", "{corpus}", "--recipe", "{in}/latin1.yaml", "-o", "out", needles="UTF-8"),
    C("train-parent-is-file", "train-bpe", "{corpus}", "--vocab-size", "300", "-o", "{in}/afile/sub",
      needles="not a folder"),
    C("train-exists", "train-bpe", "{corpus}", "--vocab-size", "300", "-o", "out", needles="--force",
      pre=_mkdir_with_file("out")),
    C("train-out-contains-input", "train-bpe", "{in}/corpus_dir/c.jsonl", "-o", "{in}/corpus_dir", "--force",
      needles="contains"),
    C("train-no-text-column", "train-bpe", "{in}/nocol.jsonl", "-o", "out", needles=("text column", "--text-column")),
    C("train-broken-jsonl", "train-bpe", "{in}/broken.jsonl", "--vocab-size", "300", "-o", "out", needles="broken.jsonl"),
    C("train-domain-tokens-latin1", "train-bpe", "{corpus}", "--domain-tokens", "{in}/latin1.txt", "-o", "out",
      needles="UTF-8"),
    C("train-domain-tokens-empty", "train-bpe", "{corpus}", "--domain-tokens", "{in}/empty.txt", "-o", "out",
      needles="empty"),
    C("train-domain-tokens-over-64mb", "train-bpe", "{corpus}", "--domain-tokens", "d.txt", "-o", "out",
      needles=("--domain-tokens file", "larger than 64 MB"), pre=_sparse("d.txt", (64 << 20) + 1)),
    C("train-counts-foreign", "train-bpe", "--counts", "{in}/binary.bin", "--vocab-size", "300", "-o", "out",
      needles="count table"),
    C("train-counts-empty", "train-bpe", "--counts", "{in}/empty.txt", "--vocab-size", "300", "-o", "out"),
    C("train-counts-folder", "train-bpe", "--counts", "{in}/notmodel", "--vocab-size", "300", "-o", "out",
      needles=("notmodel is a folder", "count table file"), absent="does not exist"),
    C("train-counts-missing", "train-bpe", "--counts", "./nope.counts", "--vocab-size", "300", "-o", "out",
      needles="nope.counts"),
    C("train-resume-without-counts", "train-bpe", "{corpus}", "--resume", "-o", "out", needles="--resume"),
    C("train-prune-below-0", "train-bpe", "--counts", "{counts}", "--prune-below", "0", "-o", "out",
      needles="--prune-below"),
    C("train-resume-malicious-pickle", "train-bpe", "--counts", "{counts}", "--vocab-size", "300", "--resume", "-o",
      "out", needles=(RESUME_PICKLE, "never loads"), pre=_evil_checkpoint),
    C("train-seed-negative", "train-bpe", "{corpus}", "--seed", "-1", "-o", "out", needles="--seed"),
    C("train-seed-huge", "train-bpe", "{corpus}", "--seed", str(2**64), "-o", "out", needles="--seed"),
    # ---- count
    C("count-missing", "count", "./nope.txt", "-o", "t.counts", needles="matches no file"),
    C("count-empty", "count", "{in}/empty.txt", "-o", "t.counts", needles="empty.txt"),
    C("count-latin1", "count", "{in}/latin1.txt", "-o", "t.counts", needles="--skip-bad-utf8"),
    C("count-parent-is-file", "count", "{corpus}", "-o", "{in}/afile/t.counts", needles="not a folder"),
    C("count-exists", "count", "{corpus}", "-o", "t.counts", needles="--force", pre=_file("t.counts")),
    C("count-onto-input", "count", "{in}/corpus_dir/c.jsonl", "-o", "{in}/corpus_dir/c.jsonl", "--force",
      needles="is the input"),
    C("count-workers-0", "count", "{corpus}", "-o", "t.counts", "--workers", "0", needles="--workers"),
    C("count-min-count-neg", "count", "{corpus}", "-o", "t.counts", "--min-count", "-1", needles="--min-count"),
    C("count-shard-bytes-0", "count", "{corpus}", "-o", "t.counts", "--shard-bytes", "0", needles="--shard-bytes"),
    C("count-recipe-syntax", "count", "{corpus}", "-o", "t.counts", "--recipe", "{in}/syntax.yaml", needles="line 3"),
    # ---- encode
    C("encode-missing", "encode", "./nope.txt", "-t", "gpt2", "-o", "out", needles="matches no file"),
    C("encode-empty", "encode", "{in}/empty.txt", "-t", "gpt2", "-o", "out", needles="holds no text"),
    C("encode-latin1", "encode", "{in}/latin1.txt", "-t", "gpt2", "-o", "out", needles="--skip-bad-utf8"),
    C("encode-no-text-column", "encode", "{in}/nocol.jsonl", "-t", "gpt2", "-o", "out", needles="--text-column"),
    C("encode-broken-jsonl", "encode", "{in}/broken.jsonl", "-t", "gpt2", "-o", "out", needles="not JSON"),
    C("encode-unknown-format", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--format", "tfrecord", needles="tfrecord"),
    C("encode-unknown-engine", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--engine", "spark", needles="spark"),
    C("encode-unknown-tokenizer", "encode", "{corpus}", "-t", "llama9", "-o", "out", needles="llama9"),
    C("encode-exists", "encode", "{corpus}", "-t", "gpt2", "-o", "out", needles="--force", pre=_mkdir_with_file("out")),
    C("encode-onto-input", "encode", "{in}/corpus_dir", "-t", "gpt2", "-o", "{in}/corpus_dir", "--force", needles="input"),
    C("encode-parent-is-file", "encode", "{corpus}", "-t", "gpt2", "-o", "{in}/afile/out", needles="not a folder"),
    C("encode-no-bos-token", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--bos", needles=("BOS", "--bos-token")),
    C("encode-eos-token-not-one", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--eos-token", "two words",
      needles="not one token"),
    C("encode-shard-size-tiny", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--shard-size", "10", needles="--shard-size"),
    C("encode-workers-0", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--workers", "0", needles="--workers"),
    C("encode-interrupted-without-resume", "encode", "{corpus}", "-t", "gpt2", "-o", "out", needles="--resume",
      pre=_encode_state('{"version": 1}')),
    C("encode-resume-other-settings", "encode", "{corpus}", "-t", "gpt2", "-o", "out", "--resume",
      needles="other settings", pre=_encode_state('{"version": 1}')),
    # ---- compare
    C("compare-empty-text", "compare", "{tok}", "--text", "{in}/empty.txt", needles=("empty.txt", "holds no text")),
    C("compare-latin1-text", "compare", "{tok}", "--text", "{in}/latin1.txt", needles="UTF-8", absent=SKIP),
    C("compare-text-fifo", "compare", "{tok}", "--text", "t.fifo", needles=("t.fifo", "not a regular file"),
      pre=_fifo("t.fifo")),
    C("compare-unknown-tokenizer", "compare", "llama9", "--text", "{corpus}", needles="llama9"),
    C("compare-json-parent-is-file", "compare", "{tok}", "--text", "{corpus}", "--json", "{in}/afile/r.json",
      needles="not a folder"),
    C("compare-json-exists", "compare", "{tok}", "--text", "{corpus}", "--json", "r.json", needles="--force",
      pre=_file("r.json")),
    C("compare-json-onto-input", "compare", "{tok}", "--text", "{in}/corpus_dir/c.jsonl", "--json",
      "{in}/corpus_dir/c.jsonl", "--force", needles="is the input"),
    C("compare-terms-latin1", "compare", "{tok}", "--text", "{corpus}", "--terms", "{in}/latin1.txt", needles="UTF-8",
      absent=SKIP),
    # list files (--terms, --domain-tokens) are capped: a wrong multi-GB file is refused before it is read
    C("compare-terms-over-64mb", "compare", "{tok}", "--text", "{corpus}", "--terms", "terms.txt",
      needles=("--terms file", "larger than 64 MB"), pre=_sparse("terms.txt", (64 << 20) + 1)),
    C("compare-csv-unwritable", "compare", "{tok}", "--text", "{corpus}", "--csv", "/proc/r.csv", needles="cannot write"),
    # two reports into one file: refused before any work (it used to write the JSON, then fail; --force: CSV over JSON)
    C("compare-json-csv-same-path", "compare", "{tok}", "--text", "{corpus}", "--json", "r.out", "--csv", "r.out",
      needles=("--json and --csv both name", "r.out", "own file")),
    C("compare-json-csv-same-path-force", "compare", "{tok}", "--text", "{corpus}", "--json", "r.out", "--csv",
      "../work/./r.out", "--force", needles=("--json and --csv both name", "give --csv another path")),
    C("compare-csv-plot-same-path", "compare", "{tok}", "--text", "{corpus}", "--csv", "r.png", "--plot", "r.png",
      "--force", needles="--csv and --plot both name"),
    # ---- export-tiktoken / lint-tokenizer
    C("tiktoken-truncated", "export-tiktoken", "{in}/tok_trunc/tokenizer.json", "-o", "r.tiktoken", needles="truncated"),
    C("tiktoken-missing", "export-tiktoken", "./nope", "-o", "r.tiktoken", needles="nope"),
    C("tiktoken-parent-is-file", "export-tiktoken", "{tok}", "-o", "{in}/afile/r.tiktoken", needles="not a folder"),
    C("tiktoken-exists", "export-tiktoken", "{tok}", "-o", "r.tiktoken", needles="--force", pre=_file("r.tiktoken")),
    C("tiktoken-verify-latin1", "export-tiktoken", "{tok}", "-o", "r.tiktoken", "--verify", "{in}/latin1.txt",
      needles="UTF-8", absent=SKIP),
    C("lint-truncated", "lint-tokenizer", "{in}/tok_trunc/tokenizer.json", needles="truncated"),
    C("lint-spm", "lint-tokenizer", "mistral", needles="HF tokenizer.json"),
    # ---- bytes
    C("bytes-not-model-folder", "bytes", "score", "{in}/notmodel", "hi", needles="config.json"),
    C("bytes-missing-model", "bytes", "score", "./nope", "hi", needles="does not exist"),
    C("bytes-score-empty-file", "bytes", "score", "{lm}", "--file", "{in}/empty.txt", needles="empty"),
    C("bytes-score-missing-file", "bytes", "score", "{lm}", "--file", "./nope.txt", needles="does not exist"),
    C("bytes-score-file-fifo", "bytes", "score", "{lm}", "--file", "t.fifo", needles=("t.fifo", "not a regular file"),
      pre=_fifo("t.fifo")),
    C("bytes-score-no-text", "bytes", "score", "{lm}", needles="TEXT"),
    C("bytes-next-top-0", "bytes", "next", "{lm}", "ab", "--top", "0", needles="--top"),
    C("bytes-complete-max-bytes-0", "bytes", "complete", "{lm}", "ab", "--max-bytes", "0", needles="--max-bytes"),
    C("bytes-complete-temperature-neg", "bytes", "complete", "{lm}", "ab", "--temperature", "-1",
      needles="--temperature"),
    C("bytes-complete-bad-escape", "bytes", "complete", "{lm}", "ab\\x4", "--escapes", needles="escape"),
    C("bytes-generate-max-bytes-0", "bytes", "generate", "{lm}", "ab", "--max-bytes", "0", needles="--max-bytes"),
    C("bytes-generate-threads-0", "bytes", "generate", "{lm}", "ab", "--threads", "0", needles="--threads"),
    C("bytes-complete-seed-negative", "bytes", "complete", "{lm}", "ab", "--seed", "-1", needles="--seed"),
    C("bytes-ensemble-weights", "bytes", "ensemble", "{lm}", "{lm}", "--text", "hi", "--weights", "a,b",
      needles="--weights"),
    C("bytes-ensemble-beam-0", "bytes", "ensemble", "{lm}", "--text", "hi", "--beam", "0", needles="--beam"),
    # ---- transplant / eval-lm
    C("transplant-onto-src", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "{lm}", "--force",
      needles=("is the input", "--force")),
    C("transplant-inside-src", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "{lm}/sub", "--force",
      needles="lies inside"),
    C("transplant-src-not-model", "transplant", "--src", "{in}/notmodel", "--dst", "{tok}", "-o", "out",
      needles=("config.json", "model folder")),
    C("transplant-src-missing", "transplant", "--src", "./nope", "--dst", "{tok}", "-o", "out", needles="does not exist"),
    C("transplant-dst-unknown", "transplant", "--src", "{lm}", "--dst", "llama9", "-o", "out", needles="llama9"),
    C("transplant-dst-truncated", "transplant", "--src", "{lm}", "--dst", "{in}/tok_trunc/tokenizer.json", "-o", "out",
      needles="truncated"),
    C("transplant-k-0", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", "-k", "0", needles="--k"),
    C("transplant-temperature-0", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", "--temperature", "0",
      needles="--temperature"),
    C("transplant-memory-0", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", "--memory-gb", "0",
      needles="--memory-gb"),
    C("transplant-seed-negative", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", "--seed", "-5",
      needles="--seed"),
    C("transplant-exists", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", needles="--force",
      pre=_mkdir_with_file("out")),
    C("transplant-keep-text-empty-folder", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "out", "--keep-text",
      "{in}/emptydir", needles=("--keep-text", "folder without files")),
    C("transplant-parent-is-file", "transplant", "--src", "{lm}", "--dst", "{tok}", "-o", "{in}/afile/out",
      needles="not a folder"),
    C("evallm-latin1", "eval-lm", "{lm}", "--text", "{in}/latin1.txt", needles=("latin1.txt", "UTF-8", "0xef")),
    C("evallm-binary", "eval-lm", "{lm}", "--text", "{in}/binary.bin", needles="UTF-8"),
    C("evallm-text-fifo", "eval-lm", "{lm}", "--text", "t.fifo", needles=("t.fifo", "not a regular file"),
      pre=_fifo("t.fifo")),
    C("evallm-empty", "eval-lm", "{lm}", "--text", "{in}/empty.txt", needles="empty"),
    C("evallm-segment-bytes-0", "eval-lm", "{lm}", "--text", "{txt}", "--segment-bytes", "0", needles="--segment-bytes"),
    C("evallm-truncated-weights", "eval-lm", "{badlm}", "--text", "{txt}", needles="truncated"),
    C("transplant-truncated-weights", "transplant", "--src", "{badlm}", "--dst", "{tok}", "-o", "out",
      needles="truncated"),
    C("bytes-truncated-weights", "bytes", "score", "{badlm}", "hi", needles="truncated"),
    C("evallm-not-model", "eval-lm", "{in}/notmodel", "--text", "{txt}", needles="config.json"),
    C("evallm-missing-model", "eval-lm", "./nope", "--text", "{txt}", needles="does not exist"),
    # ---- hypernet train
    C("hypernet-latin1-corpus", "hypernet", "train", "--base", "{lm}", "--corpus", "{in}/latin1.txt", "-o", "hn",
      needles="UTF-8"),
    C("hypernet-corpus-fifo", "hypernet", "train", "--base", "{lm}", "--corpus", "c.fifo", "-o", "hn",
      needles=("c.fifo", "not a regular file"), pre=_fifo("c.fifo")),
    C("hypernet-steps-0", "hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "--steps", "0", "-o", "hn",
      needles="--steps"),
    C("hypernet-vocab-10", "hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "--vocab-size", "10", "-o", "hn",
      needles="--vocab-size"),
    C("hypernet-batch-too-big", "hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "--batch-size", "100000",
      "--seq-len", "100000", "--device", "cpu", "-o", "hn", needles=("GiB", "--batch-size")),
    C("hypernet-base-not-model", "hypernet", "train", "--base", "{in}/notmodel", "--corpus", "{txt}", "-o", "hn",
      needles="config.json"),
    C("hypernet-parent-is-file", "hypernet", "train", "--base", "{lm}", "--corpus", "{txt}", "-o", "{in}/afile/hn",
      needles="not a folder"),
    C("hypernet-out-is-corpus", "hypernet", "train", "--base", "{lm}", "--corpus", "{in}/corpus_dir", "-o",
      "{in}/corpus_dir", "--force", needles="is the input"),
    C("hypernet-empty-corpus", "hypernet", "train", "--base", "{lm}", "--corpus", "{in}/empty.txt", "-o", "hn",
      needles="no text"),
    # ---- extend
    C("extend-latin1", "extend", "--tokenizer", "{tok}", "{in}/latin1.txt", "--add", "10", "-o", "out", needles="UTF-8",
      absent=SKIP),
    C("extend-keep-text-latin1", "extend", "--tokenizer", "{tok}", "{corpus}", "--keep-text", "{in}/latin1.txt",
      "--add", "10", "-o", "out", needles=("--keep-text", "latin1.txt", "UTF-8"), absent=SKIP),
    C("extend-keep-text-empty-folder", "extend", "--tokenizer", "{tok}", "{corpus}", "--keep-text", "{in}/emptydir",
      "--add", "10", "-o", "out", needles=("--keep-text", "emptydir", "folder without files"), absent="corpus source"),
    # --add is at least 1: a text with no merge candidate must not be told to ask for --add 0
    C("extend-no-merge-candidate", "extend", "--tokenizer", "{tok}", "{in}/one_word.txt", "--add", "5", "-o", "out",
      needles=("no merge candidate", "--min-frequency", "more text"), absent=("--add 0", "or fewer")),
    C("extend-fewer-merges-than-asked", "extend", "--tokenizer", "{tok}", "{in}/few_pairs.txt", "--add", "50", "-o",
      "out", needles=("gives only", "ask for --add", "or fewer")),
    C("extend-counts-folder", "extend", "--tokenizer", "{tok}", "--counts", "{in}/notmodel", "--add", "5", "-o", "out",
      needles=("notmodel is a folder", "count table file"), absent="does not exist"),
    C("extend-counts-fifo", "extend", "--tokenizer", "{tok}", "--counts", "t.counts", "--add", "5", "-o", "out",
      needles=("t.counts", "not a regular file"), pre=_fifo("t.counts")),
    C("extend-empty", "extend", "--tokenizer", "{tok}", "{in}/empty.txt", "--add", "10", "-o", "out", needles="no text"),
    C("extend-add-0", "extend", "--tokenizer", "{tok}", "{corpus}", "--add", "0", "-o", "out", needles="--add"),
    C("extend-unknown-tokenizer", "extend", "--tokenizer", "llama9", "{corpus}", "--add", "10", "-o", "out",
      needles="llama9"),
    C("extend-model-not-model", "extend", "--model", "{in}/notmodel", "{corpus}", "--add", "10", "-o", "out",
      needles="config.json"),
    C("extend-onto-tokenizer", "extend", "--tokenizer", "{tok}", "{corpus}", "--add", "10", "-o", "{tok}", "--force",
      needles="is the input"),
    C("extend-parent-is-file", "extend", "--tokenizer", "{tok}", "{corpus}", "--add", "10", "-o", "{in}/afile/x",
      needles="not a folder"),
    C("extend-exists", "extend", "--tokenizer", "{tok}", "{corpus}", "--add", "10", "-o", "out", needles="--force",
      pre=_mkdir_with_file("out")),
    # ---- heal
    C("heal-not-model", "heal", "{in}/notmodel", "{txt}", "-o", "out", needles="config.json"),
    C("heal-latin1", "heal", "{lm}", "{in}/latin1.txt", "--train", "embeddings", "--loss", "lm", "-o", "out", needles="UTF-8"),
    C("heal-empty", "heal", "{lm}", "{in}/empty.txt", "--train", "embeddings", "--loss", "lm", "-o", "out", needles="empty"),
    C("heal-eval-text-latin1", "heal", "{lm}", "{txt}", "--train", "embeddings", "--loss", "lm", "-o", "out",
      "--eval-text", "{in}/latin1.txt", needles=("evaluation text", "latin1.txt", "UTF-8")),  # before any training
    C("heal-steps-0", "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "out", "--steps", "0", needles="--steps"),
    C("heal-seed-negative", "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "out", "--seed", "-1", needles="--seed"),
    C("heal-heldout-1", "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "out", "--heldout", "1", needles="--heldout"),
    C("heal-onto-model", "heal", "{lm}", "{txt}", "-o", "{lm}", "--force", needles="is the input"),
    C("heal-parent-is-file", "heal", "{lm}", "{txt}", "--train", "embeddings", "-o", "{in}/afile/x", needles="not a folder"),
    # ---- image
    C("image-train-missing-data", "image", "train", "--recipe", "tiny", "--data", "./nope", "-o", "ck", needs=IMG),
    C("image-train-steps-0", "image", "train", "--recipe", "tiny", "--data", "{icons}", "--steps", "0", "-o", "ck",
      needles="--steps", needs=IMG),
    C("image-train-batch-0", "image", "train", "--recipe", "tiny", "--data", "{icons}", "--batch-size", "0", "-o", "ck",
      needles="--batch-size", needs=IMG),
    C("image-train-batch-too-big", "image", "train", "--recipe", "tiny", "--data", "{icons}", "--batch-size",
      "1000000000", "--device", "cpu", "-o", "ck", needles=("GiB", "--batch-size"), needs=IMG),
    C("image-train-recipe-syntax", "image", "train", "--recipe", "{in}/syntax.yaml", "--data", "{icons}", "-o", "ck",
      needles="line 3", needs=IMG),
    C("image-train-recipe-unknown", "image", "train", "--recipe", "nosuch", "--data", "{icons}", "-o", "ck",
      needles="nosuch", needs=IMG),
    C("image-train-no-images", "image", "train", "--recipe", "tiny", "--data", "{in}/notmodel", "-o", "ck", needs=IMG),
    C("image-train-checkpoint-exists", "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "{ckpt}",
      needles=("--resume", "--force"), needs=IMG),
    C("image-train-parent-is-file", "image", "train", "--recipe", "tiny", "--data", "{icons}", "-o", "{in}/afile/ck",
      needles="not a folder", needs=IMG),
    C("image-train-out-is-data", "image", "train", "--recipe", "tiny", "--data", "{in}/img_dir", "-o", "{in}/img_dir",
      "--force", needles="is the input", needs=IMG),
    C("image-encode-not-image", "image", "encode", "--model", "{ckpt}", "{in}/not_image.png", "-o", "x.tok",
      needles="not_image.png", needs=IMG),
    C("image-encode-fifo", "image", "encode", "--model", "{ckpt}", "f.png", "-o", "x.tok",
      needles=("f.png", "not a regular file"), absent="does not exist", pre=_fifo("f.png"), needs=IMG),
    C("image-encode-folder", "image", "encode", "--model", "{ckpt}", "{in}/notmodel", "-o", "x.tok",
      needles=("notmodel", "is a folder"), absent="does not exist", needs=IMG),
    C("image-encode-1x1", "image", "encode", "--model", "{ckpt}", "{in}/one.png", "-o", "x.tok", needles="one.png",
      needs=IMG),
    C("image-encode-not-model", "image", "encode", "--model", "{in}/notmodel", "{in}/one.png", "-o", "x.tok", needs=IMG),
    C("image-encode-truncated-weights", "image", "encode", "--model", "{badckpt}", "{icon}", "-o", "x.tok",
      needles="truncated", needs=IMG),
    C("image-encode-k-99", "image", "encode", "--model", "{ckpt}", "{icon}", "-k", "99", "-o", "x.tok", needs=IMG),
    C("image-encode-k-0", "image", "encode", "--model", "{ckpt}", "{icon}", "-k", "0", "-o", "x.tok", needles="--tokens",
      needs=IMG),
    C("image-encode-exists", "image", "encode", "--model", "{ckpt}", "{icon}", "-o", "x.tok", needles="--force",
      pre=_file("x.tok"), needs=IMG),
    C("image-encode-parent-is-file", "image", "encode", "--model", "{ckpt}", "{icon}", "-o", "{in}/afile/x.tok",
      needles="not a folder", needs=IMG),
    C("image-decode-k-0", "image", "decode", "--model", "{ckpt}", "{in}/trunc.tok", "-k", "0", "-o", "o.png",
      needles="--tokens", needs=IMG),
    C("image-import-unknown", "image", "import", "no-such-model", "-o", "out", needles=("no-such-model", "titok-l-32"),
      needs=IMG),
    C("image-import-pickle-with-code", "image", "import", "evil.bin", "-o", "out",
      needles="not a loadable tensor-only checkpoint", pre=_evil_weights, needs=IMG),
    C("image-decode-truncated", "image", "decode", "--model", "{ckpt}", "{in}/trunc.tok", "-o", "o.png", needs=IMG),
    C("image-decode-bitflip", "image", "decode", "--model", "{ckpt}", "{in}/flipped.tok", "-o", "o.png", needs=IMG),
    C("image-decode-foreign", "image", "decode", "--model", "{ckpt}", "{in}/foreign.tok", "-o", "o.png", needles="model",
      needs=IMG),
    C("image-decode-not-tok", "image", "decode", "--model", "{ckpt}", "{in}/latin1.txt", "-o", "o.png", needs=IMG),
    C("image-decode-fifo", "image", "decode", "--model", "{ckpt}", "f.tok", "-o", "o.png",
      needles=("f.tok", "not a regular file"), pre=_fifo("f.tok"), needs=IMG),
    C("image-decode-missing", "image", "decode", "--model", "{ckpt}", "./nope.tok", "-o", "o.png", needles="nope.tok",
      needs=IMG),
    C("image-decode-unwritable", "image", "decode", "--model", "{ckpt}", "{in}/good.tok", "-o", "/proc/o.png",
      needles="cannot write", needs=IMG),
    C("image-decode-parent-is-file", "image", "decode", "--model", "{ckpt}", "{in}/good.tok", "-o", "{in}/afile/o.png",
      needles="not a folder", needs=IMG),
    C("image-eval-missing-images", "image", "eval", "{ckpt}", "--images", "./nope", needs=IMG),
    C("image-eval-limit-0", "image", "eval", "{ckpt}", "--images", "{icons}", "--limit", "0", needles="--limit",
      needs=IMG),
    C("image-eval-json-parent-is-file", "image", "eval", "{ckpt}", "--images", "{icons}", "--json", "{in}/afile/r.json",
      needles="not a folder", needs=IMG),
    C("image-fit-prior-not-model", "image", "fit-prior", "{in}/notmodel", "--data", "{icons}", needs=IMG),
    C("image-fit-prior-limit-0", "image", "fit-prior", "{ckpt}", "--data", "{icons}", "--limit", "0", needles="--limit",
      needs=IMG),
    C("image-prepare-nothing", "image", "prepare", "-o", "x", needles="nothing to prepare", needs=IMG),
    C("image-prepare-size-0", "image", "prepare", "--folder", "{icons}", "--size", "0", "-o", "x", needles="--size",
      needs=IMG),
    C("image-prepare-percent-200", "image", "prepare", "--folder", "{icons}", "--heldout-percent", "200", "-o", "x",
      needles="--heldout-percent", needs=IMG),
    C("image-prior-train-not-checkpoint", "image", "prior", "train", "{in}/notmodel", "--data", "{icons}", "-o", "pr",
      needs=IMG),
    C("image-prior-train-steps-0", "image", "prior", "train", "{ckpt}", "--data", "{icons}", "-o", "pr", "--steps", "0",
      needles="--steps", needs=IMG),
    C("image-prior-train-missing-data", "image", "prior", "train", "{ckpt}", "--data", "./nope", "-o", "pr", needs=IMG),
    C("image-prior-train-recipe-syntax", "image", "prior", "train", "{ckpt}", "--data", "{icons}", "-o", "pr",
      "--recipe", "{in}/syntax.yaml", needles="line 3", needs=IMG),
    C("image-prior-train-onto-tokenizer", "image", "prior", "train", "{ckpt}", "--data", "{icons}", "-o", "{ckpt}",
      "--force", needles="is the input", needs=IMG),
    C("image-sample-not-prior", "image", "sample", "{in}/notmodel", "-o", "g.png", needs=IMG),
    C("image-sample-missing", "image", "sample", "./nope", "-o", "g.png", needs=IMG),
    C("image-sample-n-0", "image", "sample", "{in}/notmodel", "-n", "0", "-o", "g.png", needles="-n", needs=IMG),
    C("image-sample-temperature-neg", "image", "sample", "{in}/notmodel", "--temperature", "-1", "-o", "g.png",
      needles="--temperature", needs=IMG),
    C("image-sample-parent-is-file", "image", "sample", "{in}/notmodel", "-o", "{in}/afile/g.png",
      needles="not a folder", needs=IMG),
    C("image-add-to-vocab-lm-not-model", "image", "add-to-vocab", "--model", "{ckpt}", "--lm", "{in}/notmodel", "-o",
      "x", needles="config.json", needs=IMG),
    C("image-add-to-vocab-onto-lm", "image", "add-to-vocab", "--model", "{ckpt}", "--lm", "{lm}", "-o", "{lm}",
      "--force", needles="is the input", needs=IMG),
]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The shared folder of bad (and a few good) inputs; built once, snapshotted around every case."""
    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "empty.txt").write_bytes(b"")
    (d / "latin1.txt").write_bytes(b"good text\n" * 10 + "na\u00efve caf\u00e9\n".encode("latin-1"))
    (d / "latin1.json").write_bytes(b'{"version": "1.0", "note": "caf\xe9"}')
    (d / "latin1.yaml").write_bytes(b"kind: bpe\n# caf\xe9\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (d / "notatok.json").write_text('{"name": "not a tokenizer", "size": [1, 2, 3]}')
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "tokenizer_empty.json").write_bytes(b"")
    (d / "empty.gguf").write_bytes(b"")
    (d / "nocol.jsonl").write_text('{"body": "hello"}\n')
    (d / "broken.jsonl").write_text('{"text": "fine"}\n{"text": "cut\n')
    (d / "syntax.yaml").write_text("kind: bpe\nvocab_size: [1, 2\n")
    (d / "unknown_key.yaml").write_text("kind: bpe\nvocab_sise: 1000\n")
    (d / "wrong_type.yaml").write_text("vocab_size: lots\n")
    (d / "list.yaml").write_text("- a\n- b\n")
    (d / "afile").write_text("a file, not a folder")
    (d / "one_word.txt").write_text("a\n")  # one token of any byte-level BPE: no pair to merge
    (d / "few_pairs.txt").write_text("zq zq zq qx qx qx\n")
    (d / "emptydir").mkdir()
    (d / "notmodel").mkdir()
    (d / "notmodel" / "README.txt").write_text("not a model")
    (d / "corpus_dir").mkdir()
    (d / "corpus_dir" / "c.jsonl").write_bytes(b"".join(LEGAL.read_bytes().splitlines(keepends=True)[:20]))
    from tokkit.config import tokkit_home

    gguf = next((tokkit_home() / "gguf").glob("*.gguf"), None)
    if gguf is not None:
        with open(gguf, "rb") as f:
            (d / "trunc.gguf").write_bytes(f.read(200_000))
    spm = tokkit_home() / "tokenizers" / "mistral" / "tokenizer.model"
    if spm.exists():
        (d / "trunc.model").write_bytes(spm.read_bytes()[:5000])
    (d / "garbage.model").write_bytes(b"\n\x07garbage" + bytes(range(200)))
    ranks = [p for p in (tokkit_home() / "tiktoken").glob("*") if p.read_bytes()[:7] == b"IQ== 0\n"]
    if ranks:  # a real rank file cut inside the rank of its 344th line: tiktoken's Rust core panics on it
        lines = min(ranks, key=lambda p: p.stat().st_size).read_bytes().split(b"\n")[:344]
        (d / "cut.tiktoken").write_bytes(b"\n".join(lines[:-1] + [lines[-1][:-2]]))
    return d


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tok"
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def built(inputs, tok) -> Path:
    """Inputs that need a trained tokenizer: a truncated and a copied tokenizer.json."""
    import shutil

    src = (tok / "tokenizer.json").read_bytes()
    (inputs / "tok_trunc").mkdir(exist_ok=True)
    (inputs / "tok_trunc" / "tokenizer.json").write_bytes(src[: len(src) // 2])
    (inputs / "tok_copy").mkdir(exist_ok=True)
    shutil.copy(tok / "tokenizer.json", inputs / "tok_copy" / "tokenizer.json")
    return inputs


@pytest.fixture(scope="module")
def lm(tmp_path_factory, tok) -> Path:
    pytest.importorskip("torch")
    from conftest import tiny_llama

    from tokkit import load_tokenizer

    return tiny_llama(tmp_path_factory.mktemp("lm") / "lm", load_tokenizer(tok))


def _truncated_copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    w = dst / ("model.safetensors")
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    return dst


@pytest.fixture(scope="module")
def badlm(tmp_path_factory, lm) -> Path:
    """The tiny Llama with its weights cut in half (a download that stopped)."""
    return _truncated_copy(lm, tmp_path_factory.mktemp("badlm") / "lm")


@pytest.fixture(scope="module")
def badckpt(tmp_path_factory, image_inputs) -> Path:
    return _truncated_copy(image_inputs["ckpt"], tmp_path_factory.mktemp("badckpt") / "ckpt")


@pytest.fixture(scope="module")
def counts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("counts") / "legal.counts"
    r = CliRunner().invoke(cli, ["count", str(LEGAL), "-o", str(out), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def image_inputs(tmp_path_factory, inputs) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    from PIL import Image

    ck = tmp_path_factory.mktemp("img") / "ckpt"
    r = CliRunner().invoke(cli, ["image", "train", "--recipe", "tiny", "--data", str(ICONS), "-o", str(ck),
                                 "--device", "cpu", "--steps", "2"])
    assert r.exit_code == 0, r.output
    icon = sorted(ICONS.glob("*.png"))[0]
    good = inputs / "good.tok"
    if not good.exists():
        r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ck), str(icon), "-o", str(good)])
        assert r.exit_code == 0, r.output
        data = good.read_bytes()
        (inputs / "trunc.tok").write_bytes(data[: len(data) - 3])
        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0x10
        (inputs / "flipped.tok").write_bytes(bytes(flipped))
        from tokkit.image import pack, unpack

        h = unpack(data)  # the same layout, written for another model
        (inputs / "foreign.tok").write_bytes(pack(list(h.ids), model_id="0" * len(h.model_id),
                                                  codebook_size=h.codebook_size, max_tokens=h.max_tokens,
                                                  image_size=h.image_size))
        (inputs / "not_image.png").write_text("this is text, not a PNG")
        Image.new("RGB", (1, 1)).save(inputs / "one.png")
        (inputs / "img_dir").mkdir()
        Image.new("RGB", (40, 40)).save(inputs / "img_dir" / "a.png")
    return {"ckpt": ck, "icon": icon}


# --------------------------------------------------------------------------------------------- harness


def _walk(*roots: Path):
    """``(path, lstat)`` of every path under ``roots``, hidden ones included."""
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                yield p, os.lstat(p)


def _tree(*roots: Path) -> dict[str, tuple]:
    """Every path under ``roots`` (hidden included) with kind, size and mtime: a change anywhere shows."""
    return {p: (os.path.isdir(p), st.st_size if not os.path.isdir(p) else 0, st.st_mtime_ns) for p, st in _walk(*roots)}


def _expand(case: Case, request) -> list[str]:
    text = " ".join(case.args)
    subs: dict[str, str] = {}
    if "{in}" in text:
        subs["in"] = str(request.getfixturevalue("built"))
    if "{tok}" in text:
        subs["tok"] = str(request.getfixturevalue("tok"))
    if "{lm}" in text:
        subs["lm"] = str(request.getfixturevalue("lm"))
    if "{badlm}" in text:
        subs["badlm"] = str(request.getfixturevalue("badlm"))
    if "{badckpt}" in text:
        subs["badckpt"] = str(request.getfixturevalue("badckpt"))
    if "{counts}" in text:
        subs["counts"] = str(request.getfixturevalue("counts"))
    if "{ckpt}" in text or "{icon}" in text or "image" in case.needs:
        img = request.getfixturevalue("image_inputs")
        subs["ckpt"], subs["icon"] = str(img["ckpt"]), str(img["icon"])
    subs["icons"], subs["corpus"] = str(ICONS), str(request.getfixturevalue("built") / "corpus_dir" / "c.jsonl")
    subs["txt"] = str(ROOT / "data" / "heldout" / "moby_dick_ch1.txt")
    return [re.sub(r"\{(\w+)\}", lambda m: subs.get(m[1], m[0]), a) for a in case.args]


_BAR = re.compile(r"\d+%\||\d+/\d+ \[|\[\d\d:\d\d[<,]")  # a tqdm progress render


def visible_lines(stderr: str) -> list[str]:
    """The stderr lines a user reads: progress-bar renders (tqdm, redrawn with \\r) are not messages."""
    out = []
    for line in stderr.split("\n"):
        parts = [p for p in line.split("\r") if p.strip() and not _BAR.search(p)]
        out += parts
    return out


def run_bad_input(case: Case, request, workdir: Path) -> str:
    """Run one case in ``workdir``; assert the contract; return the error line."""
    if "image" in case.needs:
        pytest.importorskip("torch")
        pytest.importorskip("PIL")
    args = _expand(case, request)
    roots = [workdir, request.getfixturevalue("built")]
    if case.pre is not None:
        case.pre(workdir)
    before = _tree(*roots)
    old = os.getcwd()
    os.chdir(workdir)
    try:
        r = CliRunner().invoke(cli, args)
    finally:
        os.chdir(old)
    after = _tree(*roots)
    shown = f"args={args}\nexit={r.exit_code}\nstdout={r.stdout}\nstderr={r.stderr}\nexc={r.exception!r}"
    assert r.exit_code == 2, shown
    lines = visible_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert "Traceback" not in r.output, shown
    assert before == after, f"{shown}\nnew: {sorted(set(after) - set(before))}\ngone: {sorted(set(before) - set(after))}\n" \
                            f"changed: {sorted(k for k in before if k in after and before[k] != after[k])}"
    for n in case.needles:
        assert n in lines[0], f"{n!r} not in the error line\n{shown}"
    for n in case.absent:
        assert n not in lines[0], f"{n!r} in the error line\n{shown}"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, request, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    print(f"\n[{case.id}] {run_bad_input(case, request, work)}")  # shown with -s: the messages side by side
    assert not (work / "PWNED").exists()


def test_matrix_is_large_and_covers_every_command():
    assert len(CASES) >= 80 and len({c.id for c in CASES}) == len(CASES)
    def leaves(group, prefix: str) -> set[str]:
        out = set()
        for name, cmd in group.commands.items():
            path = f"{prefix}{name}"
            out |= leaves(cmd, path + " ") if hasattr(cmd, "commands") else {path}
        return out

    commands = leaves(cli, "")
    covered = {cmd for cmd in commands for c in [*CASES, *HOSTILE] if " ".join(c.args).startswith(cmd + " ")}
    missing = commands - covered - {"fetch"}  # fetch takes no input but a flag
    assert not missing, f"commands without a bad-input case: {sorted(missing)}"


def test_python_api_bad_input_is_a_clear_error():
    """The library side of the contract: wrong types and out-of-range ids raise TokkitErrors that say what to do."""
    from conftest import cached_tokenizer

    from tokkit.errors import InputTypeError, VocabMismatchError

    tok = cached_tokenizer("gpt2")
    with pytest.raises(InputTypeError, match=r"pass a str or decode your bytes"):
        tok.encode(b"caf\xc3\xa9")
    with pytest.raises(InputTypeError, match="wrap it in a list"):
        tok.encode_batch("one text")
    for ids in (None, 1.5 + 0j, object()):  # not ids at all: said so, not a bare "not iterable" TypeError
        with pytest.raises(InputTypeError, match=r"expected token ids as a list of int .* found"):
            tok.decode(ids)
    with pytest.raises(InputTypeError, match=r"batch_decode takes a list of id lists, found a single int"):
        tok.batch_decode(15496)
    with pytest.raises(VocabMismatchError, match=r"out of range for gpt2 \(50257 ids: 0..50256\)"):
        tok.decode([15496, 10**9])
    with pytest.raises(VocabMismatchError, match="out of range"):
        tok.decode_bytes([-1])


def test_a_path_that_does_not_exist_never_tries_the_hub(monkeypatch, tmp_path):
    """Online or not, a name that is plainly a path (its folder exists here, or ./, /, ~) fails at once."""
    import huggingface_hub

    from tokkit import names

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TOKKIT_OFFLINE", raising=False)
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(names, "hub_reachable", lambda: calls.append("probe") or True)
    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path)
    for args in (["vocab", "in/does_not_exist"], ["vocab", "./nope"], ["embeddings", "in/nope"],
                 ["transplant", "--src", "in/m", "--dst", "gpt2", "-o", "out"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and "does not exist" in r.stderr, (args, r.stderr)
    assert calls == []


def test_offline_means_no_hub_probe(monkeypatch):
    import socket

    from tokkit import names

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("the hub was probed while offline"))
    assert names.hub_reachable() is False and names._hub_file("someone/some-model", "tokenizer.json") is None


def test_missing_optional_dependency_names_the_extra(tmp_path):
    """Without Pillow (the quick start's plain install), an image command says which extra to install."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['PIL'] = None\n"  # as if Pillow were not installed
            "from tokkit_cli.main import cli\n"
            f"cli(['image', 'prepare', '--folder', {str(ICONS)!r}, '-o', 'out'], prog_name='tokkit')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = visible_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "pip install 'tokkit[image]'" in lines[0] and "'PIL'" in lines[0]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- hostile inputs
# Issue 26: hostile inputs and faults in eight classes (tests/hostile_cases.py). The same contract, stricter:
# the exit code (2; 130/143 for SIGINT/SIGTERM, 141 for a closed stdout), exactly one `error:` line, no
# traceback or panic text, every file under the working folder and the inputs byte-identical (sha256, kinds,
# link targets: a temporary left behind shows as a new path). Cases marked `sub` run as real processes whose
# stderr is a pipe on file descriptor 2, so a native library writing there directly is seen too.

import hashlib  # noqa: E402
import signal as _signal  # noqa: E402
import stat as _stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from hostile_cases import HOSTILE, H, big_corpus, build, build_images  # noqa: E402

_RAW = ("Traceback", "panicked", "RUST_BACKTRACE", "Segmentation fault", "core dumped", "Fatal Python error")


@pytest.fixture(scope="module")
def hostile(built, tok, counts) -> Path:
    return build(built / "h", tok=tok, counts=counts)


@pytest.fixture(scope="module")
def hostile_images(hostile) -> Path:
    pytest.importorskip("PIL")
    build_images(hostile)
    return hostile


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory, lm) -> dict[str, Path]:
    """A model folder that names its own code (auto_map + a .py that would create a sentinel), one with only
    pickled weights, one with a NaN and an inf in a weight."""
    import shutil

    from safetensors.torch import load_file, save_file

    from conftest import code_and_pickle_copies

    d = tmp_path_factory.mktemp("hostile_models")
    sentinel = d / "SENTINEL"
    evil, pickled = code_and_pickle_copies(
        lm, d, f"import pathlib\npathlib.Path({str(sentinel)!r}).write_text('ran')\n"
               "from transformers import LlamaConfig as EvilConfig, LlamaForCausalLM as EvilModel\n")
    nanlm = d / "nanlm"
    shutil.copytree(lm, nanlm)
    w = load_file(nanlm / "model.safetensors")
    w["model.layers.0.mlp.up_proj.weight"][1, 2] = float("nan")
    w["model.layers.0.mlp.up_proj.weight"][0, 0] = float("inf")
    save_file(w, nanlm / "model.safetensors", metadata={"format": "pt"})
    return {"evil": evil, "pickled": pickled, "nanlm": nanlm, "sentinel": sentinel}


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return big_corpus(tmp_path_factory.mktemp("big") / "big.jsonl")


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory):
    from fake_hub import FakeHub

    home = tmp_path_factory.mktemp("empty_tokkit_home")
    with FakeHub({}) as hub:
        yield hub, home


def _hashed(*roots: Path) -> dict[str, tuple]:
    """Every path under ``roots``: its kind and, for a file, its sha256; for a link, its target."""
    out: dict[str, tuple] = {}
    for p, st in _walk(*roots):
        if _stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                out[p] = ("file", hashlib.sha256(f.read()).hexdigest())
        elif _stat.S_ISLNK(st.st_mode):
            out[p] = ("link", os.readlink(p))
        else:
            out[p] = ("dir" if _stat.S_ISDIR(st.st_mode) else "special", _stat.S_IFMT(st.st_mode))
    return out


def _hostile_subs(case: H, request) -> tuple[dict[str, str], list[Path]]:
    text = " ".join(case.args) + " ".join(v for _, v in case.env)
    subs: dict[str, str] = {}
    roots = [request.getfixturevalue("built")]
    for name in ("tok", "lm", "counts"):
        if "{" + name + "}" in text or name in case.needs:
            p = request.getfixturevalue(name)
            subs[name] = str(p)
            roots.append(p)
    if "{h}" in text or case.pre is not None:
        subs["h"] = str(request.getfixturevalue("hostile"))
    if "bomb.png" in text or "bombdir" in text:
        request.getfixturevalue("hostile_images")
    if any("{" + n + "}" in text for n in ("evil", "pickled", "nanlm")):
        folders = request.getfixturevalue("model_folders")
        for n in ("evil", "pickled", "nanlm"):
            subs[n] = str(folders[n])
            roots.append(folders[n])
    if "{big}" in text:
        subs["big"] = str(request.getfixturevalue("big"))
    if "{ckpt}" in text or "{icon}" in text or "image" in case.needs:
        img = request.getfixturevalue("image_inputs")
        subs["ckpt"], subs["icon"] = str(img["ckpt"]), str(img["icon"])
        roots.append(img["ckpt"])
    subs["in"] = str(request.getfixturevalue("built"))
    subs["icons"], subs["corpus"] = str(ICONS), str(request.getfixturevalue("built") / "corpus_dir" / "c.jsonl")
    subs["txt"] = str(ROOT / "data" / "heldout" / "moby_dick_ch1.txt")
    return subs, roots


# Runs the CLI with a signal sent to itself at the first commit (the temporary complete, not yet renamed:
# mid-write), or with a ready-file touched when the native trainer starts (the test then signals it).
_SIGNAL_WRAPPER = r"""
import os, signal, sys
mode = os.environ["TOKKIT_TEST_MODE"]
if mode.startswith("commit-"):
    import tokkit.atomic as A
    real = A._commit
    def commit(tmp, final):
        os.kill(os.getpid(), getattr(signal, mode.split("-", 1)[1]))
        return real(tmp, final)
    A._commit = commit
else:
    import tokkit.native_calls as N
    real = N.interruptible
    def interruptible(fn, *a, **k):
        open(os.environ["TOKKIT_TEST_READY"], "w").close()
        return real(fn, *a, **k)
    N.interruptible = interruptible
from tokkit_cli.main import main
sys.argv[0] = "tokkit"
main()
"""


def _fsize_limit() -> None:  # in the child: writes beyond 512 bytes fail with EFBIG instead of killing it
    import resource

    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


def _run_sub(case: H, args: list[str], cwd: Path, env: dict[str, str], tmp: Path) -> tuple[int, str]:
    base = [sys.executable, "-m", "tokkit_cli.main"]
    if case.mode.startswith(("commit-", "train-")):
        base = [sys.executable, "-c", _SIGNAL_WRAPPER]
        env = {**env, "TOKKIT_TEST_MODE": case.mode, "TOKKIT_TEST_READY": str(tmp / "ready")}
    if case.mode.startswith("train-"):
        p = subprocess.Popen(base + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        t0 = time.time()
        while not (tmp / "ready").exists() and p.poll() is None and time.time() - t0 < 300:
            time.sleep(0.02)
        time.sleep(0.3)  # the trainer is running in its thread
        assert p.poll() is None, p.communicate()
        sent = time.perf_counter()
        p.send_signal(getattr(_signal, case.mode.split("-", 1)[1]))
        out, err = p.communicate(timeout=60)
        took = time.perf_counter() - sent
        assert took < 2.0, f"ended {took:.1f} s after the signal"
        return p.returncode, err.decode("utf-8", "replace")
    if case.mode == "stdout-closed":
        p = subprocess.Popen(base + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdout.close()  # the reader went away before the command printed anything
        err = p.stderr.read()
        return p.wait(timeout=300), err.decode("utf-8", "replace")
    r = subprocess.run(base + args, cwd=cwd, env=env, input=case.stdin.encode(), capture_output=True, timeout=case.timeout,
                       preexec_fn=_fsize_limit if case.mode == "fsize" else None)
    return r.returncode, r.stderr.decode("utf-8", "replace")


def run_hostile(case: H, request, workdir: Path, tmp: Path) -> str:
    """Run one hostile case in ``workdir``; assert the contract; return its error line."""
    if "image" in case.needs:
        pytest.importorskip("torch")
        pytest.importorskip("PIL")
    subs, roots = _hostile_subs(case, request)
    args = [re.sub(r"\{(\w+)\}", lambda m: subs.get(m[1], m[0]), a) for a in case.args]
    extra = {k: re.sub(r"\{(\w+)\}", lambda m: subs.get(m[1], m[0]), v) for k, v in case.env}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}
    hub = None
    if "hub" in case.needs:  # online: a live (fake) hub, HF_HUB_OFFLINE unset unless the case sets it, no copies
        hub, home = request.getfixturevalue("fake_hub")
        hub.requests.clear()
        env = {k: v for k, v in env.items() if k not in ("HF_HUB_OFFLINE", "TOKKIT_OFFLINE")}
        env.update({"HF_ENDPOINT": hub.url, "TOKKIT_HOME": str(home), "HF_HOME": str(tmp / "hf"), **extra})
    if case.pre is not None:
        case.pre(workdir, subs)
    before = _hashed(workdir, *roots)
    keep = [str(workdir / k) for k in case.keeps]
    if case.sub:
        code, err = _run_sub(case, args, workdir, env, tmp)
        shown = f"args={args}\nexit={code}\nstderr={err}"
    else:
        old = os.getcwd()
        os.chdir(workdir)
        try:
            r = CliRunner().invoke(cli, args, input=case.stdin or None, env=extra)
        finally:
            os.chdir(old)
        code, err = r.exit_code, r.stderr
        shown = f"args={args}\nexit={code}\nstdout={r.stdout}\nstderr={err}\nexc={r.exception!r}"
    after = _hashed(workdir, *roots)
    kept = {p for p in set(after) - set(before) if any(p == k or p.startswith(k + os.sep) for k in keep)}
    assert not [p for p in kept if ".tk" in os.path.basename(p)], f"temporaries left: {sorted(kept)}"
    after = {p: v for p, v in after.items() if p not in kept}
    assert code == case.code, shown
    lines = visible_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert not any(raw in err for raw in _RAW), shown
    assert before == after, f"{shown}\nnew: {sorted(set(after) - set(before))}\ngone: {sorted(set(before) - set(after))}\n" \
                            f"changed: {sorted(k for k in before if k in after and before[k] != after[k])}"
    for n in case.needles:
        assert n in lines[0], f"{n!r} not in the error line\n{shown}"
    if "evil" in subs:
        assert not request.getfixturevalue("model_folders")["sentinel"].exists(), "the folder's code ran"
    if hub is not None:
        assert hub.requests == [], f"requests to the hub: {hub.requests}"
    return lines[0]


@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_hostile_input(case: H, request, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    print(f"\n[{case.id}] {run_hostile(case, request, work, tmp_path)}")


def test_hostile_matrix_covers_the_eight_classes():
    ids = [c.id for c in HOSTILE]
    assert len(HOSTILE) >= 150 and len(set(ids)) == len(ids) and not set(ids) & {c.id for c in CASES}
    per_class = {k: sum(c.cls == k for c in HOSTILE) for k in range(1, 9)}
    assert all(n >= 5 for n in per_class.values()), per_class
    assert sum(c.sub for c in HOSTILE) * 3 >= len(HOSTILE), "at least a third run as real processes"
    assert all(c.cls != 8 or c.sub for c in HOSTILE), "panic cases must see file descriptor 2"


# --------------------------------------------------------------------------------------------- ids of tokenizer.json


def _variant(tok: Path, out: Path, change) -> Path:
    import json

    data = json.loads((tok / "tokenizer.json").read_text(encoding="utf-8"))
    change(data)
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return out


def _special(content: str, i: int) -> dict:
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
            "special": True}


def test_a_model_without_tokens_is_refused_at_load(tok, tmp_path):
    """An empty model.vocab used to be a ValueError traceback (vocab, compare) or exit 0 with an empty rank file
    (export-tiktoken), '0 ids' (export-tokenizer) or '[]' for every text: now one FormatError at load."""
    from tokkit import load_tokenizer
    from tokkit.errors import FormatError
    from tokkit.formats.hf_json import read_json, vocab_from_json
    from tokkit.train.tiktoken_export import export_tiktoken

    def empty(x):
        x["model"]["vocab"], x["model"]["merges"] = {}, []

    ve = _variant(tok, tmp_path / "ve.json", empty)
    te = _variant(tok, tmp_path / "te.json", lambda x: (empty(x), x.update(added_tokens=[])))
    with pytest.raises(FormatError, match=r"the model holds no tokens \(model\.vocab is empty, only 13 added tokens\)"):
        load_tokenizer(ve)
    with pytest.raises(FormatError, match=r"the model holds no tokens \(model\.vocab is empty\); .*fix the file"):
        load_tokenizer(te)
    with pytest.raises(FormatError, match="holds no tokens"):
        vocab_from_json(read_json(ve), name="ve.json")
    with pytest.raises(FormatError, match="holds no tokens"):
        export_tiktoken(ve, tmp_path / "ve.tiktoken")
    assert not (tmp_path / "ve.tiktoken").exists() and not (tmp_path / "ve.tiktoken.json").exists()


def test_an_added_token_on_an_id_the_model_gives_away_is_refused(tok, tmp_path):
    """An added token whose id model.vocab gives to another token used to load: encode('<coll>') gave [77] and
    decode gave 'a'. Refused at load, like two tokens with one id in model.vocab; an added token that *is* the
    vocab's token of that id (HF writes specials so) still loads."""
    import json

    from tokkit import load_tokenizer
    from tokkit.errors import FormatError
    from tokkit.formats.hf_json import read_json, vocab_from_json
    from tokkit.train.tiktoken_export import export_tiktoken

    vocab = json.loads((tok / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    a = vocab["a"]
    coll = _variant(tok, tmp_path / "collide.json", lambda x: x["added_tokens"].append(_special("<coll>", a)))
    want = rf"added token '<coll>' has id {a}, which model\.vocab gives to 'a'; .*free id \(e\.g\. {len(vocab)}\)"
    with pytest.raises(FormatError, match=want):
        load_tokenizer(coll)
    with pytest.raises(FormatError, match=want):
        vocab_from_json(read_json(coll), name="collide.json")
    with pytest.raises(FormatError, match=want):
        export_tiktoken(coll, tmp_path / "c.tiktoken")
    top = len(vocab)
    twice = _variant(tok, tmp_path / "twice.json",
                     lambda x: x["added_tokens"].extend([_special("<x1>", top), _special("<x2>", top)]))
    with pytest.raises(FormatError, match=rf"added_tokens give id {top} to two tokens, '<x1>' and '<x2>'"):
        len(load_tokenizer(twice).vocab)
    # the same token at the same id in both places: what HF writes for the specials of a trained tokenizer
    same = _variant(tok, tmp_path / "same.json", lambda x: x["added_tokens"].append(_special("a", a)))
    assert load_tokenizer(same).decode([a]) == "a"
    assert any(s["content"] in vocab for s in read_json(tok / "tokenizer.json")["added_tokens"])
    assert len(load_tokenizer(tok).vocab) == len(vocab)


@pytest.mark.parametrize("alias", ["llama3", "qwen2", "gemma3", "smollm2", "llama2"])
def test_real_tokenizers_with_added_tokens_still_load(alias):
    """Their added tokens sit beyond model.vocab (llama3, qwen2) or repeat its entry at the same id (gemma3,
    smollm2, llama2): neither is a collision."""
    from conftest import cached_tokenizer

    tok = cached_tokenizer(alias)
    assert len(tok.vocab) > 30_000 and tok.vocab.specials


def test_model_output_copies_no_symlinks_and_nothing_from_outside_the_source(lm, tok, tmp_path, caplog):
    """A source model folder's extra files reach an output only as regular files whose real path lies inside
    the folder: a link to a file inside is copied with its content, a link to a file outside (which an upload
    of the output would leak) is left out with a note; no symlink is ever created in the output."""
    import shutil

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE KEY")
    src = tmp_path / "m"
    shutil.copytree(lm, src)
    (src / "docs.txt").write_text("model card")
    (src / "README.md").symlink_to(secret / "id_rsa")  # absolute, outside
    (src / "LEAK.txt").symlink_to("../secret/id_rsa")  # relative, outside
    (src / "NOTES.md").symlink_to("docs.txt")  # relative, inside
    (src / "CARD.md").symlink_to(src / "docs.txt")  # absolute, inside
    out = tmp_path / "o"
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", str(tok), "--method", "mean", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    assert not (out / "README.md").exists() and not (out / "LEAK.txt").exists()
    assert (out / "NOTES.md").read_text() == (out / "CARD.md").read_text() == "model card"
    notes = [m for m in caplog.messages if "outside the model folder" in m]
    assert len(notes) == 2 and any("README.md" in m for m in notes)
