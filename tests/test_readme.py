"""Every fenced Python block in README.md runs, and each print() line prints what its comment says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need_fixture

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _expected(block: str) -> list[str]:
    """The trailing comment of each print(...) line: the README's promised output."""
    out = []
    for line in block.splitlines():
        if line.lstrip().startswith("print(") and "#" in line:
            out.append(line.split("#", 1)[1].strip())
    return out


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block(block, tmp_path):
    for alias in ("mistral", "llama3", "smollm2"):
        need_fixture(alias)
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    printed = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    assert printed == _expected(block), f"README promises {_expected(block)}, got {printed}"
