"""Every example in README.md and docs/*.md runs, and what it prints is what the docs show.

The documents are parsed by Sybil (https://sybil.readthedocs.io); each example is one pytest item,
``tests/test_docs.py::test_example[docs/training.md:17]``. New files in docs/ are picked up by
themselves. The convention, for whoever writes docs:

* A ```` ```python ```` block runs as a script in a fresh interpreter. Each ``print(...)  # TEXT``
  line promises that it prints TEXT (the existing README style); other lines only have to run.
* A ```` ```bash ````, ```` ```console ```` or untagged block whose lines start with ``$ `` is a
  terminal session: each ``$ command`` (``\\`` continues it on the next line) runs in bash, and the
  lines under it, up to the next ``$``, are what it prints (stdout and stderr together). An expected
  output that starts with ``error:`` means exit status 2, otherwise 0. A ``bash`` block without
  ``$`` lines is a list of commands that must each exit 0; its output is not compared.
* Masked before comparing: durations (``0.4s``, ``29.5 s``, ``12 ms``), peak memory / RSS, speeds
  (``0.73 MB/s``, the ``MB/s`` column of ``tokkit compare``), runs of spaces and of table dashes;
  tqdm progress-bar lines are dropped. A line ``...`` stands
  for any number of lines, and ``...`` inside a line for any text.
* Not meant to run (a synopsis, benchmark output, setup that needs a download): put
  ``<!-- skip: next "why" -->`` on the line before the fence (Sybil's skip directive; a
  ``skip: start`` / ``skip: end`` pair skips a stretch). An untagged block without ``$`` lines
  that is not marked skip fails, so every block is either run or explicitly skipped. Blocks in
  other languages (``json``, ``yaml``, ``text``) are data, never run.
* Takes minutes: first make it cheaper (``eval-lm --max-bytes``, fewer steps, a smaller text) so that
  CI checks it; only what cannot be (Gemma-3-270M, which CI does not fetch) gets ``<!-- slow -->`` on
  the line before the fence (after a skip directive, if any). Such examples carry the ``slow_example``
  marker, which the default run deselects (``addopts`` in pyproject.toml); run them with
  ``pytest tests/test_docs.py -m slow_example``. A skip directive's reason is the test's skip reason
  (printed by ``-rs``).

Each document runs in its own scratch folder in which ``data``, ``recipes``, ``scripts`` and
``benchmarks`` link to the repository's, so ``out/...`` paths are fresh and examples of one document
see each other's outputs, in document order. Progress bars are off (``TQDM_DISABLE=1``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest
from dataclasses import dataclass
from pathlib import Path

import pytest
from sybil import Document, Region
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

from conftest import CORE_ALIASES, need_fixture

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = ("data", "recipes", "scripts", "benchmarks")
SHELL = {"bash", "sh", "console", "shell", ""}
TIMEOUT_S = 900


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, its text and whether it is marked slow."""

    language: str
    source: str
    slow: bool


_SLOW = re.compile(r"<!--\s*slow\b[^>]*-->\s*$")


def _parse_blocks(document: Document):
    lexer = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<language>[\w-]*)[ \t]*$\n", re.M))
    for lexed in lexer(document):
        language = lexed.lexemes["language"].lower()
        if language not in SHELL and language != "python":
            continue
        slow = bool(_SLOW.search(document.text[: lexed.start].rstrip() + "\n"))
        evaluator = _run_python if language == "python" else _run_shell
        yield Region(lexed.start, lexed.end, Block(language, str(lexed.lexemes["source"]), slow), evaluator)


# ---- comparing printed output with the docs -------------------------------------------------------

_MASKS = [
    (re.compile(r"peak (memory|RSS) [\d.,]+ ?[KMG]i?B"), r"peak \1 <mem>"),
    (re.compile(r"(?<![\w.])\d+(\.\d+)? ?(s|ms|min)\b"), "<time>"),
    (re.compile(r"[\d.]+ MB/s"), "<MB/s>"),
    (re.compile(r"-{3,}"), "---"),
    (re.compile(r"[ \t]+"), " "),
]


_BAR = re.compile(r"\d+%\|")


def _normalise(lines: list[str]) -> list[str]:
    out, mbs_column = [], False
    for line in lines:
        if _BAR.search(line):
            continue  # a tqdm progress bar (stderr): progress, not output
        if re.search(r"\bMB/s\s*$", line):
            mbs_column = True
        elif mbs_column and line.strip() and not line.startswith("-"):
            if re.search(r"\s[\d.]+\s*$", line):
                line = re.sub(r"[\d.]+\s*$", "<MB/s>", line)
            else:
                mbs_column = False
        elif not line.strip():
            mbs_column = False
        for pattern, repl in _MASKS:
            line = pattern.sub(repl, line)
        out.append(line.strip())
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return out


def _line_matches(expected: str, got: str) -> bool:
    if "..." not in expected:
        return expected == got
    parts = [re.escape(p) for p in expected.split("...")]
    return re.fullmatch(".*".join(parts), got) is not None


def _match(expected: list[str], got: list[str]) -> bool:
    """``expected`` against ``got`` line by line; a line ``...`` matches any run of lines."""
    if not expected:
        return not got
    if expected[0] == "...":
        return any(_match(expected[1:], got[i:]) for i in range(len(got) + 1))
    return bool(got) and _line_matches(expected[0], got[0]) and _match(expected[1:], got[1:])


def _diff(expected: list[str], got: list[str]) -> str:
    import difflib

    return "\n".join(difflib.unified_diff(expected, got, "docs", "printed", lineterm="", n=2))


# ---- running ---------------------------------------------------------------------------------------

_WORKDIRS: list[Path] = []


def _workdir(example) -> Path:
    ns = example.namespace
    if "workdir" not in ns:
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="tokkit-docs-"))
        for name in LINKED:
            (d / name).symlink_to(ROOT / name)
        ns["workdir"] = d
        _WORKDIRS.append(d)
    return ns["workdir"]


@pytest.fixture(scope="module", autouse=True)
def _remove_workdirs():
    """The scratch folders hold transplanted models (hundreds of MB): removed when the module is done."""
    yield
    import shutil

    for d in _WORKDIRS:
        shutil.rmtree(d, ignore_errors=True)


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", PYTHONHASHSEED="0", COLUMNS="200")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run_python(example) -> str | None:
    block: Block = example.parsed
    promised = [l.split("#", 1)[1].strip() for l in block.source.splitlines()
                if l.lstrip().startswith("print(") and "#" in l]
    r = subprocess.run([sys.executable, "-c", block.source], capture_output=True, text=True,
                       cwd=_workdir(example), env=_env(), timeout=TIMEOUT_S)
    if r.returncode != 0:
        return f"exit {r.returncode}:\n{r.stderr[-3000:]}"
    printed = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    if [_normalise([p])[0] if p else p for p in promised] != _normalise(printed):
        return f"the docs promise {promised}, it printed {printed}\n{r.stderr[-2000:]}"
    return None


def _session(source: str) -> list[tuple[str, list[str] | None]]:
    """``(command, expected lines or None)`` pairs of a shell block."""
    lines = source.splitlines()
    prompted = any(l.startswith("$ ") for l in lines)
    steps: list[tuple[str, list[str] | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if prompted and not line.startswith("$ "):
            if steps:
                steps[-1][1].append(line)
            elif line.strip():
                raise ValueError(f"output before the first `$ ` command: {line!r}")
            continue
        cmd = line[2:] if prompted else line
        if not prompted and (not cmd.strip() or cmd.lstrip().startswith("#")):
            continue
        while cmd.rstrip().endswith("\\") and i < len(lines):
            cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
        steps.append((cmd, [] if prompted else None))
    return steps


def _run_shell(example) -> str | None:
    block: Block = example.parsed
    if block.language == "" and not any(l.startswith("$ ") for l in block.source.splitlines()):
        return ("an untagged block without `$ ` commands: show the command that prints it, or mark it "
                '<!-- skip: next "why" --> if it is not meant to run')
    for cmd, expected in _session(block.source):
        r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=_workdir(example),
                           env=_env(), timeout=TIMEOUT_S)
        got = (r.stdout + r.stderr).splitlines()
        if expected is None:
            if r.returncode != 0:
                return f"$ {cmd}\nexit {r.returncode}:\n{(r.stdout + r.stderr)[-3000:]}"
            continue
        want_rc = 2 if any(l.startswith("error:") for l in expected) else 0
        exp, out = _normalise(expected), _normalise(got)
        if r.returncode != want_rc or not _match(exp, out):
            return f"$ {cmd}\nexit {r.returncode} (docs imply {want_rc})\n{_diff(exp, out)}"
    return None


# ---- pytest items ----------------------------------------------------------------------------------

def _documents():
    docs = []
    for path in DOCS:
        doc = Document.parse(str(path), SkipParser(), _parse_blocks)
        docs.append((path, doc, list(doc)))
    return docs


_DOCS = _documents()
_DONE: dict[str, int] = {}


def _params():
    for path, doc, examples in _DOCS:
        rel = path.relative_to(ROOT).as_posix()
        for i, ex in enumerate(examples):
            if not isinstance(ex.parsed, Block):
                continue  # a skip directive: evaluated in order by _evaluate_upto
            marks = [pytest.mark.slow_example] if ex.parsed.slow else []
            yield pytest.param(rel, i, id=f"{rel}:{ex.line}", marks=marks)


def _evaluate_upto(rel: str, index: int):
    """Evaluate the document's earlier examples (skip directives, fast blocks) once, in order."""
    _, doc, examples = next(d for d in _DOCS if d[0].relative_to(ROOT).as_posix() == rel)
    for j in range(_DONE.get(rel, 0), index):
        ex = examples[j]
        if isinstance(ex.parsed, Block) and ex.parsed.slow:
            continue
        try:
            ex.evaluate()
        except Exception:  # noqa: BLE001 - its own item reports it; later examples may still run
            pass
    _DONE[rel] = index + 1
    return examples[index]


_GEMMA_MODEL = re.compile(r'(--src |eval-lm |from_pretrained\(")gemma3\b|src="gemma3"')


@pytest.mark.parametrize(("doc", "index"), list(_params()))
def test_example(doc, index, request):
    for alias in CORE_ALIASES:
        need_fixture(alias)
    example = _evaluate_upto(doc, index)
    if _GEMMA_MODEL.search(example.parsed.source):
        request.getfixturevalue("gemma3_dir")  # Gemma-3-270M comes with `fetch --all`: skipped cleanly without it
    try:
        example.evaluate()
    except unittest.SkipTest as e:  # a `<!-- skip: ... "why" -->` directive: the reason, where it is (pytest -rs prints it)
        pytest.skip(f"{doc}:{example.line}: {e}")


def test_every_document_has_examples():
    """The harness sees the documents and their blocks (a parser change cannot silently drop them)."""
    counts = {p.name: sum(isinstance(e.parsed, Block) for e in ex) for p, _, ex in _DOCS}
    assert counts["README.md"] >= 10 and counts["training.md"] >= 5, counts


_TABLE_RULE = re.compile(r"\|[-| :]+\|$")
_FIGURE = re.compile(r"\d\.\d")
#: What names where a figure comes from: a benchmark or script, a tokkit command, a test, a committed record.
_SOURCE = re.compile(r"benchmarks/\w+\.py|`tokkit [a-z]|\$ tokkit |^tokkit |python benchmarks|tests/test_\w+\.py|"
                     r"scripts/\w+\.py|docs/[\w-]+\.json|`[a-z][\w-]* --[a-z]", re.M)


def test_every_table_of_figures_names_the_command_that_made_it():
    """A markdown table of measured figures has, within 25 lines before it or 12 after, the command, benchmark,
    test or committed record it comes from (a figure is checked by a test, or says how to reproduce it)."""
    missing = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1].strip()):
                j = i + 2
                while j < len(lines) and lines[j].startswith("|"):
                    j += 1
                if _FIGURE.search("\n".join(lines[i + 2:j])) and not _SOURCE.search("\n".join(lines[max(0, i - 25):j + 12])):
                    missing.append(f"{path.relative_to(ROOT)}:{i + 1}: {lines[i][:70]}")
                i = j
            else:
                i += 1
    assert not missing, "tables of figures without a command, benchmark or record nearby:\n" + "\n".join(missing)
