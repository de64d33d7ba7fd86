"""`import tokkit` and `tokkit --help` never load torch; packages import only downwards."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_tokkit_loads_no_torch():
    code = "import tokkit, sys; assert 'torch' not in sys.modules, 'torch loaded'; assert 'transformers' not in sys.modules"
    subprocess.check_call([sys.executable, "-c", code])


def test_lazy_names_of_the_facade_stay_torch_free():
    """tokkit/__init__.py names torch-free domain functions lazily (PEP 562): a bare import loads no domain package."""
    code = ("import tokkit, sys; assert not any(m.startswith('tokkit.train') for m in sys.modules), 'tokkit.train imported'; "
            "assert callable(tokkit.encode_corpus) and tokkit.TokenShards.__name__ == 'TokenShards'; "
            "assert 'torch' not in sys.modules, 'torch loaded'; assert set(tokkit._LAZY) <= set(tokkit.__all__)")
    subprocess.check_call([sys.executable, "-c", code])
    import tokkit

    assert all(m.startswith("tokkit.train.") for m in tokkit._LAZY.values())  # train is the torch-free domain package


def test_cli_help_loads_no_torch_and_lists_commands():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tokkit_cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'torch loaded by --help'\n"
        "print(r.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for command in ("vocab", "fetch", "export-tokenizer", "embeddings", "train-bpe", "count", "encode", "compare", "export-tiktoken", "lint-tokenizer", "bytes", "image", "transplant", "eval-lm", "hypernet", "heal", "extend"):
        assert f"  {command} " in out


DOMAIN = ("train", "transplant", "bytelevel", "image")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_dependency_rule():
    """cli -> tokkit.{train,transplant,bytelevel,image} -> tokkit.embedding -> tokkit core; no sideways imports."""
    bad = []
    for f in (ROOT / "tokkit").rglob("*.py"):
        rel = f.relative_to(ROOT / "tokkit").parts
        pkg = rel[0] if len(rel) > 1 else ""
        for mod in _imports(f):
            if mod.startswith("tokkit_cli"):
                bad.append(f"{f}: library imports the CLI ({mod})")
            parts = mod.split(".")
            if parts[0] != "tokkit" or len(parts) < 2:
                continue
            target = parts[1]
            if pkg in DOMAIN and target in DOMAIN and target != pkg:
                bad.append(f"{f}: sideways import {mod}")
            if pkg not in DOMAIN and pkg != "" and pkg != "embedding" and target in DOMAIN + ("embedding",):
                bad.append(f"{f}: core module imports upwards ({mod})")
            if pkg == "embedding" and target in DOMAIN:
                bad.append(f"{f}: embedding imports a domain package ({mod})")
            if pkg == "" and target in DOMAIN + ("embedding",):
                bad.append(f"{f}: core module imports upwards ({mod})")
            if pkg == "train" and target == "embedding":
                bad.append(f"{f}: train must stay torch-free ({mod})")
    assert not bad, "\n".join(bad)


def test_every_package_is_installed():
    """pyproject lists packages explicitly (cli/ installs as tokkit_cli): a new subpackage must be added there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tokkit").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
