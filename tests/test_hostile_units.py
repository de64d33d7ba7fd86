"""Unit checks behind the hostile-input matrix (issue 26): the bounds, the finiteness scan, the YAML reader,
a byte-order mark, the held-out check on a tokenizer that shares few tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokkit.config import YAML_MAX_NODES, check_threads, max_threads, read_yaml
from tokkit.errors import FormatError, NonFiniteError, ResourceError

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "data" / "legal" / "train.jsonl"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_the_finiteness_scan_finds_nan_and_inf_in_every_float_dtype(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from tokkit.formats.weights import check_finite_safetensors

    t = getattr(torch, dtype)
    good = {"a": torch.randn(64, 8).to(t), "ids": torch.arange(5)}
    save_file(good, tmp_path / "ok.safetensors")
    check_finite_safetensors(tmp_path / "ok.safetensors")
    for bad in (float("nan"), float("inf"), float("-inf")):
        w = dict(good, b=torch.ones(10, 10).to(t))
        w["b"][3, 4] = bad
        save_file(w, tmp_path / "bad.safetensors")
        with pytest.raises(NonFiniteError, match=r"tensor b holds 1 NaN or infinite value\(s\) of 100"):
            check_finite_safetensors(tmp_path / "bad.safetensors")
    big = torch.full((10,), 3.0e38 if dtype in ("float32", "bfloat16", "float64") else 6.0e4).to(t)  # large, finite
    save_file({"x": big}, tmp_path / "big.safetensors")
    check_finite_safetensors(tmp_path / "big.safetensors")


def test_yaml_reader_refuses_bombs_devices_and_non_finite_values(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {vocab_size: 500}\nother: *b\nlist: [1, 2, 3]\n")
    assert read_yaml(ok) == {"base": {"vocab_size": 500}, "other": {"vocab_size": 500}, "list": [1, 2, 3]}
    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [" + ", ".join(["x"] * 10) + "]"] + [
        f"{n}: &{n} [" + ", ".join([f"*{p}"] * 10) + "]" for p, n in zip("abcd", "bcde")]
    bomb.write_text("\n".join(lines) + "\n")  # 10^5 values once expanded, 300 bytes on disk
    with pytest.raises(FormatError, match=f"more than {YAML_MAX_NODES:,} values"):
        read_yaml(bomb)
    with pytest.raises(FormatError, match="not a regular file"):
        read_yaml(Path("/dev/zero"))
    nan = tmp_path / "nan.yaml"
    nan.write_text("train:\n  lr: [0.1, .inf]\n")
    with pytest.raises(FormatError, match=r"train\.lr\.1 = inf is not a finite number"):
        read_yaml(nan)


def test_list_files_are_regular_files_and_capped(tmp_path, monkeypatch):
    """--domain-tokens / --terms read through one reader: a device or FIFO is refused by its kind (never read:
    /dev/zero never ends, a FIFO blocks), a file over the cap by its size, before anything is decoded."""
    import os

    import tokkit.text as text
    from tokkit.errors import MissingFileError
    from tokkit.text import read_list_file

    assert text.LIST_FILE_MAX_BYTES == 64 << 20
    ok = tmp_path / "terms.txt"
    ok.write_text("Plaintiff\n# comment\n\ndefendant\n")
    assert read_list_file(ok, what="--terms file") == ["Plaintiff", "# comment", "", "defendant"]
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for bad in (Path("/dev/zero"), fifo):
        with pytest.raises(FormatError, match=f"--terms file {bad} is not a regular file .*one term per line"):
            read_list_file(bad, what="--terms file", entry="term")
    with pytest.raises(FormatError, match="is a folder; pass a UTF-8 text file with one token per line"):
        read_list_file(tmp_path, what="--domain-tokens file", entry="token")
    with pytest.raises(MissingFileError, match="does not exist"):
        read_list_file(tmp_path / "nope.txt", what="--terms file")
    monkeypatch.setattr(text, "LIST_FILE_MAX_BYTES", 20)
    (tmp_path / "twenty.txt").write_bytes(b"x" * 19 + b"\n")
    assert read_list_file(tmp_path / "twenty.txt", what="--terms file") == ["x" * 19]  # at the cap: read
    (tmp_path / "more.txt").write_bytes(b"x" * 21)
    with pytest.raises(FormatError, match="more.txt is larger than 20 bytes"):
        read_list_file(tmp_path / "more.txt", what="--terms file")


def test_the_utf8_error_offers_skipping_only_to_a_reader_that_can_skip(tmp_path):
    """The corpus reader's error names --skip-bad-utf8 only for a caller that has it (a recipe's bool: train-bpe,
    count, encode); the default reader (compare, extend, export-tiktoken --verify) names the conversion only."""
    from tokkit.text import NotUtf8Error
    from tokkit.train.corpus import Corpus, parse_sources, source_documents

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9\n".encode("latin-1"))
    (src,) = parse_sources([bad])
    with pytest.raises(NotUtf8Error, match="iconv") as e:
        list(Corpus([src]).train_docs())
    assert "--skip-bad-utf8" not in str(e.value)
    with pytest.raises(NotUtf8Error, match="iconv") as e:
        list(source_documents(src))
    assert "--skip-bad-utf8" not in str(e.value)
    with pytest.raises(NotUtf8Error, match="or pass --skip-bad-utf8"):
        list(source_documents(src, skip_bad_utf8=False))
    skipped: list[int] = []
    assert list(source_documents(src, skip_bad_utf8=True, bad=skipped)) == [] and skipped == [1]


def test_thread_counts_are_bounded(monkeypatch):
    from tokkit.config import default_threads

    hi = max_threads()
    assert check_threads(hi) == hi and check_threads("1") == 1
    for bad in (0, hi + 1, 99999, "many"):
        with pytest.raises(ResourceError, match="--threads"):
            check_threads(bad)
    monkeypatch.setenv("TOKKIT_THREADS", "99999")
    with pytest.raises(ResourceError, match="TOKKIT_THREADS 99999 is out of range"):
        default_threads()


def test_ids_are_bounded_before_allocation():
    from tokkit.formats.bounds import check_id, id_bound
    from tokkit.formats.tiktoken_file import vocab_from_ranks

    assert id_bound(100) == 1224
    check_id(1223, entries=100, what="x", label="f")
    with pytest.raises(FormatError, match="1,224"):
        check_id(1224, entries=100, what="x", label="f")
    with pytest.raises(FormatError, match="300,000,000"):  # would have been a 300M-entry table
        vocab_from_ranks({b"a": 0, b"b": 300_000_000})
    v = vocab_from_ranks({b"a": 0, b"b": 5})  # gaps are fine
    assert len(v) == 6 and v.unused_ids == frozenset({1, 2, 3, 4})


def test_a_byte_order_mark_is_accepted(tmp_path):
    from click.testing import CliRunner

    from tokkit import load_tokenizer
    from tokkit_cli.main import cli

    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(tmp_path / "t"), "--quiet"])
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "t" / "tokenizer.json").read_bytes()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + raw)
    plain, bom = load_tokenizer(tmp_path / "t" / "tokenizer.json"), load_tokenizer(tmp_path / "bom.json")
    assert bom.vocab.tokens == plain.vocab.tokens
    assert bom.encode("The parties agree.") == plain.encode("The parties agree.")


def test_every_message_names_a_real_defect_not_the_keys_present(tmp_path):
    """The old message listed the keys the file has; a file with every key and one bad merge now names the merge."""
    from tokkit import load_tokenizer
    from tokkit.formats.hf_json_check import check_tokenizer_json

    from click.testing import CliRunner

    from tokkit_cli.main import cli

    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(tmp_path / "t"), "--quiet"])
    data = json.loads((tmp_path / "t" / "tokenizer.json").read_text())
    check_tokenizer_json(data, "t", merges=True)  # a good file passes every check
    data["model"]["merges"][7] = [data["model"]["merges"][7][0], "nosuch"]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"model\.merges\[7\] .* names 'nosuch', which is not a token"):
        load_tokenizer(tmp_path / "m.json")


def test_heldout_check_leaves_anchors_on_a_tokenizer_that_shares_few_tokens(tmp_path):
    """``--heldout 500`` onto the model's own 300-token vocabulary held out every shared token (IndexError)."""
    pytest.importorskip("transformers")
    from click.testing import CliRunner
    from conftest import tiny_llama

    from tokkit import load_tokenizer
    from tokkit.transplant.pipeline import heldout_size
    from tokkit_cli.main import cli

    assert heldout_size(500, 287) == 143 and heldout_size(500, 5000) == 500
    r = CliRunner().invoke(cli, ["train-bpe", str(LEGAL), "--vocab-size", "300", "-o", str(tmp_path / "t"), "--quiet"])
    assert r.exit_code == 0
    lm = tiny_llama(tmp_path / "lm", load_tokenizer(tmp_path / "t"))
    r = CliRunner().invoke(cli, ["transplant", "--src", str(lm), "--dst", str(tmp_path / "t"), "-o", str(tmp_path / "o"),
                                 "--heldout", "500", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "o" / "transplant_report.json").read_text())
    assert 0 < report["heldout_anchor_check"]["tokens"] <= 150


def test_device_names_are_checked_with_the_fix():
    """``--device cuda`` on a CPU-only torch, ``cuda:N`` past the last GPU, ``mps`` off macOS and unknown
    names were torch assertions deep inside the first ``.to()`` (a traceback in every model command)."""
    import torch

    from tokkit.errors import OptionError
    from tokkit.optim import pick_device

    assert pick_device("cpu") == torch.device("cpu") and pick_device(None).type in ("cpu", "cuda")
    with pytest.raises(OptionError, match="expected auto, cpu, cuda or cuda:N"):
        pick_device("gpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(OptionError, match="--device"):
        pick_device(f"cuda:{n}" if n else "cuda")
    if not (torch.backends.mps.is_available()):
        with pytest.raises(OptionError, match="MPS"):
            pick_device("mps")
    with pytest.raises(OptionError, match="--threads-device"):
        pick_device("tpu", option="--threads-device")
