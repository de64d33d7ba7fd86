"""``tokkit encode``: exact ids per document, the four formats read back by their own readers, the same bytes
from 1 worker, N workers and Ray, SIGKILL + --resume byte-identical, bounded memory, and bad input."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import cached_tokenizer
from tokkit.train.corpus import parse_sources, source_documents
from tokkit.train.encode_corpus import encode_corpus
from tokkit.train.shards import get_format, token_dtype
from tokkit.train.shards.reader import TokenShards
from tokkit_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
LEGAL = DATA / "legal" / "train.jsonl"  # 47 real licence texts (SPDX, CC0)
MULTI = DATA / "multilingual"  # ja, zh, ru, fa, emoji, code
SOURCES = [str(LEGAL), str(MULTI), str(DATA / "moby_dick_excerpt.txt")]


@pytest.fixture(scope="module")
def quoting(tmp_path_factory) -> Path:
    """Real documents plus one that quotes a control token and one empty row (jsonl)."""
    p = tmp_path_factory.mktemp("quoting") / "q.jsonl"
    rows = [{"text": "The model emits <|end_of_text|> and <|endoftext|> at the end: " + (DATA / "multilingual" / "ru.txt").read_text()},
            {"text": ""}, {"text": (DATA / "heldout" / "gnome_help_de_net.txt").read_text()[:2000]}]
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def _docs(sources) -> list[str]:
    return [d for s in parse_sources(sources) for d in source_documents(s) if d]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _encode(out, sources=SOURCES, **kw):
    return encode_corpus(sources, out=out, progress=False, **{"tokenizer": "llama3", "workers": 1, **kw})


@pytest.mark.parametrize("alias, fmt", [("llama3", "numpy"), ("mistral", "megatron"), ("gpt2", "datatrove"),
                                        ("qwen2", "parquet")])
def test_every_document_is_encode_of_its_text(tmp_path, quoting, alias, fmt):
    tok = cached_tokenizer(alias)
    sources = [*SOURCES, str(quoting)]
    m = _encode(tmp_path / "o", sources, tokenizer=alias, format=fmt, shard_bytes=60_000, workers=2)
    eos = [tok.vocab.role_id("eos")]
    want = [tok.encode(d, disallowed_special=()) + eos for d in _docs(sources)]
    shards = TokenShards(tmp_path / "o")
    assert [shards[i].tolist() for i in range(len(shards))] == want
    assert len(m.shards) > 3 and m.documents == len(want) == 56 and m.tokens == sum(map(len, want))
    assert m.data["counts"]["skipped_empty"] == 1 and m.special_tokens["eos"]["id"] == eos[0]
    assert m.bytes == sum(len(d.encode()) for d in _docs(sources))
    # the quoted control tokens stayed text
    assert tok.vocab.role_id("eos") not in shards[len(shards) - 2].tolist()[:-1]


def test_special_tokens_per_document_as_asked(tmp_path, quoting):
    tok = cached_tokenizer("llama3")
    docs = _docs([str(quoting)])
    # --bos --no-eos is what the reference library adds (Llama 3 prepends <|begin_of_text|>)
    _encode(tmp_path / "bos", [str(quoting)], bos=True, eos=False)
    got = TokenShards(tmp_path / "bos")
    assert [got[i].tolist() for i in range(len(got))] == [tok.encode(d, add_special_tokens=True, disallowed_special=())
                                                          for d in docs]
    _encode(tmp_path / "eot", [str(quoting)], eos_token="<|eot_id|>", allow_special=True)
    got = TokenShards(tmp_path / "eot")
    eot = tok.encode("<|eot_id|>", allowed_special="all")
    assert [got[i].tolist() for i in range(len(got))] == [tok.encode(d, allowed_special="all") + eot for d in docs]
    assert 128001 in got[0].tolist()  # with --allow-special the quoted <|end_of_text|> is the control token
    m = json.loads((tmp_path / "eot" / "manifest.json").read_text())
    assert m["special_tokens"] == {"bos": None, "eos": {"id": eot[0], "text": "<|eot_id|>"}, "strings_in_text": "special"}


def test_dtype_is_the_narrowest_that_holds_every_id(tmp_path):
    numpy, megatron = get_format("numpy"), get_format("megatron")
    assert token_dtype(65_536, numpy).name == "uint16" and token_dtype(65_537, numpy).name == "uint32"
    assert token_dtype(65_537, megatron).name == "int32"  # Megatron has no uint32 code
    assert token_dtype(2**32, numpy).name == "uint32"
    from tokkit.errors import VocabMismatchError

    with pytest.raises(VocabMismatchError, match="at most 4,294,967,296 ids"):
        token_dtype(2**32 + 1, numpy)
    with pytest.raises(VocabMismatchError, match="int32"):
        token_dtype(2**31 + 1, megatron)
    assert _encode(tmp_path / "g", [str(LEGAL)], tokenizer="gpt2").dtype == "uint16"
    raw = (tmp_path / "g" / "part-00000.npy").read_bytes()
    assert len(raw) == 2 * TokenShards(tmp_path / "g").tokens


def test_same_bytes_from_1_worker_n_workers_and_ray(tmp_path):
    one = _encode(tmp_path / "one", shard_bytes=40_000)
    assert len(one.shards) >= 8
    _encode(tmp_path / "two", shard_bytes=40_000, workers=2)
    ref = _tree(tmp_path / "one")
    assert _tree(tmp_path / "two") == ref and "manifest.json" in ref and not (tmp_path / "one" / ".tokkit-encode").exists()
    pytest.importorskip("ray.data", reason="Ray not installed (pip install 'tokkit[ray]')")
    _encode(tmp_path / "ray", shard_bytes=40_000, workers=2, engine="ray")
    assert _tree(tmp_path / "ray") == ref


def test_numpy_layout_is_dolmas(tmp_path):
    """Raw ids (np.memmap reads them, as nanoGPT/OLMo do) + csv.gz rows start,end,id,src,loc pointing at each source."""
    m = _encode(tmp_path / "o", [str(LEGAL)], shard_bytes=100_000)
    tok = cached_tokenizer("llama3")
    for shard in m.shards:
        npy, meta = (tmp_path / "o" / f["name"] for f in shard["files"])
        ids = np.memmap(npy, dtype=np.uint32, mode="r")
        with gzip.open(meta, "rt", newline="") as f:
            rows = list(csv.reader(f))
        assert len(rows) == shard["documents"] and int(rows[-1][1]) == len(ids) == shard["tokens"]
        for start, end, _, src, loc in rows:
            with open(src, "rb") as f:  # loc: the byte offset of the document's jsonl line
                f.seek(int(loc))
                text = json.loads(f.readline())["text"]
            assert ids[int(start):int(end)].tolist() == tok.encode(text) + [128001]


def test_megatron_shards_are_what_megatrons_own_builder_writes(tmp_path):
    pytest.importorskip("megatron.core.datasets.indexed_dataset", reason="megatron-core not installed")
    from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder

    for alias, dtype in (("gpt2", np.uint16), ("llama3", np.int32)):
        m = _encode(tmp_path / alias, tokenizer=alias, format="megatron", shard_bytes=100_000)
        shards = TokenShards(tmp_path / alias)
        first = 0
        for shard in m.shards:
            prefix = str(tmp_path / alias / shard["files"][0]["name"][:-4])
            ds = IndexedDataset(prefix)  # Megatron's reader
            assert [ds[i].tolist() for i in range(len(ds))] == [shards[first + i].tolist() for i in range(len(ds))]
            builder = IndexedDatasetBuilder(str(tmp_path / "ref.bin"), dtype=dtype)  # Megatron's writer
            for i in range(len(ds)):
                builder.add_document(shards[first + i].astype(np.int64), [len(shards[first + i])])
            builder.finalize(str(tmp_path / "ref.idx"))
            assert (tmp_path / "ref.bin").read_bytes() == Path(prefix + ".bin").read_bytes()
            assert (tmp_path / "ref.idx").read_bytes() == Path(prefix + ".idx").read_bytes()
            first += len(ds)


def test_datatrove_and_parquet_shards_open_in_their_readers(tmp_path):
    _encode(tmp_path / "pq", format="parquet", shard_bytes=100_000)
    import datasets

    shards = TokenShards(tmp_path / "pq")
    want = [shards[i].tolist() for i in range(len(shards))]
    ds = datasets.load_dataset(str(tmp_path / "pq"), split="train")
    assert ds.features["input_ids"].feature.dtype == "uint32" and ds["input_ids"] == want
    pytest.importorskip("datatrove.utils.dataset", reason="datatrove not installed")
    from datatrove.utils.dataset import DatatroveFolderDataset

    m = _encode(tmp_path / "dt", format="datatrove", shard_bytes=100_000)
    shards = TokenShards(tmp_path / "dt")
    flat = np.concatenate([shards[i] for i in range(len(shards))])
    assert [shards[i].tolist() for i in range(len(shards))] == want
    seq = 63
    ds = DatatroveFolderDataset(str(tmp_path / "dt"), seq_len=seq, token_size=4, shuffle=False)
    # datatrove windows each file on its own (seq_len + 1 ids, the remainder of a file dropped)
    starts = np.cumsum([0] + [s["tokens"] for s in m.shards])
    expect = [flat[a + k * (seq + 1): a + (k + 1) * (seq + 1)].tolist()
              for a, s in zip(starts, m.shards) for k in range(s["tokens"] // (seq + 1))]
    assert len(ds) == len(expect) and [ds[i]["input_ids"].tolist() for i in range(len(ds))] == expect
    meta = (tmp_path / "dt" / "part-00000.ds.metadata").read_text().splitlines()
    assert meta[0] == "llama3|4" and int(meta[1]) == m.shards[0]["tokens"]


def test_token_shards_windows_cross_shards(tmp_path):
    _encode(tmp_path / "o", shard_bytes=40_000)
    shards = TokenShards(tmp_path / "o")
    flat = np.concatenate([shards[i] for i in range(len(shards))])
    assert len(flat) == shards.tokens and shards.num_windows(1000) == len(flat) // 1000
    for k in range(shards.num_windows(1000)):  # every window, several of them across a shard boundary
        assert np.array_equal(shards.window(k, 1000), flat[k * 1000:(k + 1) * 1000])
    assert np.array_equal(shards[-1], shards[len(shards) - 1])
    with pytest.raises(IndexError):
        shards.window(shards.num_windows(1000), 1000)


def test_dataset_source(tmp_path):
    """``hf:FOLDER`` reads a local ``datasets`` folder (streamed, one worker) with the same ids."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "train.jsonl").write_bytes(LEGAL.read_bytes())
    m = _encode(tmp_path / "o", [f"hf:{tmp_path / 'ds'}"], tokenizer="gpt2")
    tok = cached_tokenizer("gpt2")
    shards = TokenShards(tmp_path / "o")
    assert [shards[i].tolist() for i in range(len(shards))] == [tok.encode(d) + [50256] for d in _docs([str(LEGAL)])]
    assert m.data["sources"] == [{"path": f"hf:{tmp_path / 'ds'}", "rate": 1.0}]


def test_parquet_input_is_cut_at_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = _docs([str(LEGAL)])
    pq.write_table(pa.table({"text": docs}), tmp_path / "c.parquet", row_group_size=5)
    m = _encode(tmp_path / "o", [str(tmp_path / "c.parquet")], shard_bytes=40_000)
    assert len(m.shards) > 3 and m.shards[1]["pieces"][0]["start"] > 0
    tok = cached_tokenizer("llama3")
    shards = TokenShards(tmp_path / "o")
    assert [shards[i].tolist() for i in range(len(shards))] == [tok.encode(d) + [128001] for d in docs]


def test_worker_memory_does_not_grow_with_the_corpus(tmp_path):
    """Python's allocations while encoding 4x the text stay those of 1x (one document + the writer's buffers)."""
    import tracemalloc

    from tokkit.train.count import plan_shards
    from tokkit.train.encode_shard import EncodeSpec, _tokenizer, encode_shard

    _tokenizer("gpt2").encode("warm up")
    peaks = []
    for copies in (1, 4):
        out = tmp_path / f"x{copies}"
        out.mkdir()
        spec = EncodeSpec("gpt2", "gpt2", "numpy", "uint16", None, 50256, False, "text", False, 0, str(out))
        shard = plan_shards(parse_sources([str(LEGAL)] * copies), shard_bytes=1 << 30)[0]
        tracemalloc.start()
        res = encode_shard(0, 1, shard, spec)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert res.documents == 47 * copies
    assert peaks[1] < 1.3 * peaks[0], peaks


# ---------------------------------------------------------------- the CLI, kills and bad input

_KILLER = r"""
import os, signal, sys
import tokkit.atomic as A
n, seen = int(os.environ["KILL_AT"]), [0]
real = A._commit
def commit(tmp, final):
    seen[0] += 1
    if seen[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(tmp, final)
A._commit = commit
from tokkit_cli.main import cli
cli(sys.argv[1:], prog_name="tokkit")
"""


def _cli(args, cwd, kill_at=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tokkit_cli.main", *args] if kill_at is None else [sys.executable, "-c", _KILLER, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**env, "KILL_AT": str(kill_at or 0)})


# commits: the plan, then per shard its two files and its done-marker: 4 is the first marker (no shard done),
# 9 the middle of the third shard (two done)
@pytest.mark.parametrize("kill_at, done", [(4, 0), (9, 2)])
def test_sigkill_then_resume_is_byte_identical(tmp_path, kill_at, done):
    args = [str(LEGAL), str(MULTI), "--tokenizer", "gpt2", "--shard-size", "60000", "--workers", "1", "--quiet"]
    r = _cli(["encode", *args, "-o", "ref"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli(["encode", *args, "-o", "out"], tmp_path, kill_at=kill_at)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
    r = _cli(["encode", *args, "-o", "out"], tmp_path)  # neither --resume nor --force: refused, untouched
    assert r.returncode == 2 and r.stderr.startswith("error:") and "--resume" in r.stderr
    r = _cli(["encode", *args, "-o", "out", "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (f"resumed      {done} of 6 shard(s) were done already" in r.stdout) == (done > 0), r.stdout
    assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".") and p != ".tokkit-output"]


def test_resume_with_other_settings_is_refused(tmp_path):
    args = [str(LEGAL), "--tokenizer", "gpt2", "--shard-size", "60000", "--workers", "1", "--quiet"]
    r = _cli(["encode", *args, "-o", "out"], tmp_path, kill_at=5)
    assert r.returncode == -signal.SIGKILL
    before = _tree(tmp_path / "out")
    r = _cli(["encode", *args, "--format", "megatron", "-o", "out", "--resume"], tmp_path)
    assert r.returncode == 2 and "format" in r.stderr and "--force" in r.stderr
    assert _tree(tmp_path / "out") == before


def test_cli_summary_and_bad_input_leave_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    r = run(cli, ["encode", str(LEGAL), "--tokenizer", "gpt2", "-o", "out", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "encoded 47 documents, 0.30 MB of text -> 75,536 tokens (uint16) in 1 shard(s)" in r.output
    r = run(cli, ["encode", str(LEGAL), "--tokenizer", "gpt2", "-o", "out", "--resume", "--quiet"])
    assert r.exit_code == 0 and "nothing to do" in r.output
    before = _tree(tmp_path / "out")
    for other in (["--tokenizer", "cl100k"], ["--tokenizer", "gpt2", "--bos-token", "<|endoftext|>"]):
        # a finished encode of other settings is not "done": refused, untouched
        r = run(cli, ["encode", str(LEGAL), *other, "-o", "out", "--resume", "--quiet"])
        assert r.exit_code == 2 and "finished `tokkit encode` of other settings" in r.output, r.output
        assert _tree(tmp_path / "out") == before
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n')
    import tokkit.tokenizer

    cases = [
        (["--format", "tfrecord"], "tfrecord"),
        (["-o", "out"], "already exists"),
        (["--bos"], "no BOS token"),
        (["--eos-token", "end of text"], "is not one token"),
        (["--shard-size", "1k"], "--shard-size"),
    ]
    for extra, needle in cases:
        args = ["encode", str(LEGAL), "--tokenizer", "gpt2", "-o", "new", *extra]
        if "-o" in extra:
            args = ["encode", str(LEGAL), "--tokenizer", "gpt2", *extra]
        r = run(cli, args)
        assert r.exit_code == 2 and r.output.startswith("error:") and needle in r.output, (extra, r.output)
        assert not (tmp_path / "new").exists()
    r = run(cli, ["encode", "empty.jsonl", "--tokenizer", "gpt2", "-o", "new", "--quiet"])
    assert r.exit_code == 2 and "holds no text" in r.output and not (tmp_path / "new").exists()
    monkeypatch.setattr(tokkit.tokenizer.Tokenizer, "vocab_size", property(lambda self: 2**32 + 7))
    r = run(cli, ["encode", str(LEGAL), "--tokenizer", "gpt2", "-o", "new"])
    assert r.exit_code == 2 and "4,294,967,303 ids" in r.output and not (tmp_path / "new").exists()


def test_a_ray_task_sends_bad_input_back_whole(tmp_path):
    """Ray keeps only the text of a task's exception; the task returns the error itself, raised as such by the driver."""
    import pickle

    from tokkit.errors import TokkitError
    from tokkit.train.count import plan_shards
    from tokkit.train.encode_ray import _encode_row
    from tokkit.train.encode_shard import EncodeSpec

    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"good text\n" + "na\u00efve caf\u00e9\n".encode("latin-1"))
    spec = EncodeSpec("gpt2", "gpt2", "numpy", "uint16", None, 50256, False, "text", False, 0, str(tmp_path / "o"))
    row = _encode_row({"task": pickle.dumps((0, 1, plan_shards(parse_sources([str(bad)]))[0], spec))})
    err = pickle.loads(row["error"])
    assert isinstance(err, TokkitError) and "not UTF-8" in str(err) and row["result"] == ""
    assert not [p for p in (tmp_path / "o").rglob("*") if p.is_file()]  # the shard's temporaries are gone


def test_force_over_a_good_output_keeps_it_when_the_new_run_fails(tmp_path):
    """--force builds the new output beside the old one and swaps it in when complete: bad input (no text)
    leaves the previous output as it was (it was deleted first before), and a new run's parent folders go."""
    good = encode_corpus([str(LEGAL)], tokenizer="gpt2", out=tmp_path / "out", workers=1, progress=False)
    before = {p.name: p.read_bytes() for p in good.folder.iterdir() if p.is_file()}
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": ""}\n{"text": ""}\n')
    r = CliRunner().invoke(cli, ["encode", str(empty), "-t", "gpt2", "-o", str(tmp_path / "out"), "--force", "--quiet",
                                 "--workers", "1"])
    assert r.exit_code == 2 and "no text" in r.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl", "out"]  # no temporary left beside it
    r = CliRunner().invoke(cli, ["encode", str(empty), "-t", "gpt2", "-o", str(tmp_path / "new" / "deep" / "out"),
                                 "--quiet", "--workers", "1"])
    assert r.exit_code == 2 and not (tmp_path / "new").exists()
    again = encode_corpus([str(LEGAL)], tokenizer="gpt2", out=tmp_path / "out", workers=1, progress=False, force=True)
    assert again.folder == tmp_path / "out" and (tmp_path / "out" / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.jsonl", "out"]


def test_a_split_regex_that_backtracks_without_end_is_one_error_and_leaves_nothing(tmp_path):
    """A tokenizer.json whose pre_tokenizer regex backtracks catastrophically made tokenizers panic (a
    BaseException) mid-encode: now one FormatError in the library, exit 2 in the CLI, no output folder."""
    from tokkit import load_tokenizer
    from tokkit.errors import FormatError

    data = json.loads(cached_tokenizer("llama2").native.to_str())
    data["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
    path = tmp_path / "redos.json"
    path.write_text(json.dumps(data))
    text = "a" * 40 + "!"
    tok = load_tokenizer(str(path))
    for call in (tok.encode, tok.encode_ordinary, lambda t: tok.encode_batch([t]), tok.encode_with_offsets):
        with pytest.raises(FormatError, match="split regex"):
            call(text)
    src = tmp_path / "redos.txt"
    src.write_text(text + "\n")
    r = subprocess.run([sys.executable, "-m", "tokkit_cli.main", "encode", str(src), "-t", str(path), "-o", str(tmp_path / "enc"),
                        "--no-eos", "--workers", "1", "--quiet"], capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
    assert r.returncode == 2 and "split regex" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "enc").exists()
