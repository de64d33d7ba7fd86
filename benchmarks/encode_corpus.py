"""``tokkit encode`` against the usual ways to turn a corpus into token files, side by side in one run.

Same corpus (split into ``--files`` jsonl files of about equal size, in order, so that every tool can
spread files over its workers), same tokenizer, same cores (each side runs in a fresh subprocess pinned
to the first N cores with ``sched_setaffinity``; threads of HF ``tokenizers``/rayon see N cores too),
EOS appended to every document, ids checked equal to tokkit's. Sides:

* ``tokkit``: ``tokkit.encode_corpus(..., format="numpy", workers=N)``;
* ``datasets.map``: ``load_dataset("json")`` + ``Dataset.map(batched=True, num_proc=N)`` with HF
  ``tokenizers`` (``encode_batch_fast``) + a ``np.memmap`` writer, as nanoGPT's ``prepare.py`` does;
* ``datatrove``: ``JsonlReader`` -> ``DocumentTokenizer`` (no shuffling) on a ``LocalPipelineExecutor``
  with N tasks and N workers (when ``datatrove`` is installed);
* ``dolma``: ``dolma tokens --processes N`` (when ``--dolma-bin`` names a ``dolma`` executable; dolma 1.2.1
  needs numpy<2 and tokenizers<=0.19.1, so it lives in a venv of its own, see below).

For sentencepiece models (mistral) the HF peers run tokkit's exact HF conversion of the model
(``Tokenizer.to_hf()``), which is what ``transformers`` would load. Time = the subprocess's wall time
from before the tokenizer is loaded to the last file written (imports excluded); MB/s = UTF-8 text
bytes / time; peak memory = the largest resident set of the main process and of any of its workers.
Prints one table per tokenizer with the ratio tokkit MB/s / side MB/s, and the 1 -> N scaling.

Corpus used in README.md (66.45 MB of text, 49,536 documents, 42 languages): see data/build_encode_corpus.py.
    python data/build_encode_corpus.py --src ~/.cache/tokkit-encode-bench/src --out ~/.cache/tokkit-encode-bench/corpus
    python3 -m venv ~/.cache/tokkit-encode-bench/dolma-venv && ~/.cache/tokkit-encode-bench/dolma-venv/bin/pip install dolma==1.2.1
    python benchmarks/encode_corpus.py ~/.cache/tokkit-encode-bench/corpus/*.jsonl --workers 1,2 \\
        --dolma-bin ~/.cache/tokkit-encode-bench/dolma-venv/bin/dolma
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIDES = ("tokkit", "datasets.map", "datatrove", "dolma")


# ---------------------------------------------------------------- the sides (each runs in its own process)

def _pin(n: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cpus[:n])
    os.environ["RAYON_NUM_THREADS"] = str(n)


def side_tokkit(a: dict) -> None:
    from tokkit.train.encode_corpus import encode_corpus

    encode_corpus(a["files"], tokenizer=a["tokenizer"], out=Path(a["out"]) / "tokkit", workers=a["workers"],
                  progress=False)


def side_datasets(a: dict) -> None:
    import datasets
    from tokenizers import Tokenizer

    datasets.disable_progress_bars()
    tok = Tokenizer.from_file(a["hf_json"])
    eos, dtype = a["eos"], np.dtype(a["dtype"])
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)

    def process(batch):
        ids = [e.ids + [eos] for e in encode(batch["text"], add_special_tokens=False)]
        return {"ids": ids, "len": [len(x) for x in ids]}

    ds = datasets.load_dataset("json", data_files=a["files"], split="train", cache_dir=str(Path(a["out"]) / "hf_cache"))
    ds = ds.map(process, batched=True, num_proc=a["workers"] if a["workers"] > 1 else None,
                remove_columns=ds.column_names)
    total = int(np.sum(ds["len"], dtype=np.int64))
    arr = np.memmap(Path(a["out"]) / "datasets.bin", dtype=dtype, mode="w+", shape=(total,))
    idx, shards = 0, 64  # nanoGPT's prepare.py: write in contiguous batches
    for i in range(shards):
        part = ds.shard(num_shards=shards, index=i, contiguous=True).with_format("numpy")
        if len(part) == 0:
            continue
        chunk = np.concatenate(part["ids"])
        arr[idx:idx + len(chunk)] = chunk
        idx += len(chunk)
    arr.flush()


def side_datatrove(a: dict) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    LocalPipelineExecutor(pipeline=[
        JsonlReader(a["folder"], glob_pattern="*.jsonl", text_key="text", id_key="id"),
        DocumentTokenizer(str(Path(a["out"]) / "datatrove"), tokenizer_name_or_path=a["hf_json"], eos_token=a["eos_text"],
                          shuffle_documents=False, save_filename="bench"),
    ], tasks=a["workers"], workers=a["workers"], logging_dir=str(Path(a["out"]) / "dt_logs")).run()


def side_dolma(a: dict) -> None:
    # dolma 1.2.1 pins tokenizers<=0.19.1, which reads merges only as "a b" strings (newer files write pairs)
    data = json.loads(Path(a["hf_json"]).read_text(encoding="utf-8"))
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"].get("merges", [])]
    compat = Path(a["out"]) / "tokenizer_0.19.json"
    compat.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cmd = [a["dolma_bin"], "tokens", "--documents", str(Path(a["folder"]) / "*.jsonl"), "--destination",
           str(Path(a["out"]) / "dolma"), "--tokenizer.name_or_path", str(compat), "--tokenizer.eos_token_id",
           str(a["eos"]), "--processes", str(a["workers"]), "--dtype", a["dtype"], "--seed", "0"]
    if a.get("pad") is not None:
        cmd += ["--tokenizer.pad_token_id", str(a["pad"])]
    subprocess.run(cmd, check=True, capture_output=True)


def _phase(side: str, args_file: str) -> None:
    a = json.loads(Path(args_file).read_text())
    _pin(a["workers"])
    me = resource.getrusage(resource.RUSAGE_SELF)
    a["cpu0"] = me.ru_utime + me.ru_stime  # the imports before this point are not the side's work
    t0 = time.perf_counter()
    {"tokkit": side_tokkit, "datasets.map": side_datasets, "datatrove": side_datatrove, "dolma": side_dolma}[side](a)
    secs = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime - a["cpu0"]
    print(json.dumps({"seconds": secs, "cpu": cpu, "peak_mb": me.ru_maxrss / 1024, "worker_peak_mb": kids.ru_maxrss / 1024}))


# ---------------------------------------------------------------- reading the outputs back as documents

def _digest(doc) -> bytes:
    return hashlib.blake2b(np.asarray(doc, dtype="<u4").tobytes(), digest_size=16).digest()


def compare(ref_docs, docs, tok) -> str:
    """``equal``, or how many of tokkit's documents the side encoded otherwise and why.

    HF ``tokenizers`` matches special-token strings inside the text as control tokens (``<s>`` in a
    licence becomes id 1); tokkit keeps them as the text they are unless ``--allow-special``. Documents
    that differ only for that reason are counted apart, the others reported as DIFFERENT."""
    from collections import Counter

    mine, theirs = Counter(map(_digest, ref_docs)), Counter(map(_digest, docs))
    missing = mine - theirs
    if not missing:
        return "equal" if not theirs - mine else f"DIFFERENT ({sum((theirs - mine).values())} extra documents)"
    specials = [s.text for s in tok.vocab.specials if s.text]
    quoting = other = 0
    for d in ref_docs:
        key = _digest(d)
        if missing.get(key, 0) > 0:
            missing[key] -= 1
            text = tok.decode(np.asarray(d[:-1]).tolist())  # the document without the EOS tokkit appended
            if any(sp in text for sp in specials):
                quoting += 1
            else:
                other += 1
    if other:
        return f"DIFFERENT ({other} documents)"
    return f"equal but {quoting} docs quoting {'/'.join(specials[:3])}: HF parses them as control tokens"


def read_tokkit(out: Path):
    from tokkit.train.shards.reader import TokenShards

    shards = TokenShards(out / "tokkit")
    return [shards[i] for i in range(len(shards))]


def read_datasets(out: Path, eos: int, dtype: str):
    ids = np.memmap(out / "datasets.bin", dtype=dtype, mode="r")
    ends = np.flatnonzero(ids == eos) + 1  # nanoGPT's layout has no index: EOS ends each document
    return np.split(ids, ends[:-1])


def read_datatrove(out: Path):
    docs = []
    for ds in sorted((out / "datatrove").glob("*.ds")):
        size = int(Path(f"{ds}.metadata").read_text().splitlines()[0].rsplit("|", 1)[1])
        ids = np.fromfile(ds, dtype="<u2" if size == 2 else "<u4")
        ends = np.fromfile(f"{ds}.index", dtype="<u8").astype(np.int64)
        docs += np.split(ids, ends[:-1])
    return docs


def read_dolma(out: Path, dtype: str):
    docs = []
    for npy in sorted((out / "dolma").glob("*.npy")):
        ids = np.memmap(npy, dtype=dtype, mode="r")
        with gzip.open(str(npy)[:-4] + ".csv.gz", "rt") as f:
            for row in f:
                start, end = map(int, row.split(",")[:2])
                docs.append(ids[start:end])
    return docs


# ---------------------------------------------------------------- the driver

def split_corpus(files: list[str], parts: int, folder: Path, max_mb: float | None) -> tuple[list[str], int, int]:
    """The documents of ``files`` in order (stripped of leading/trailing whitespace, as dolma reads them), cut
    into ``parts`` jsonl files of about equal size."""
    rows = []
    budget = max_mb * 1e6 if max_mb else float("inf")
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if budget <= 0:
                    break
                text = json.loads(line)["text"].strip()  # dolma strips every document: give all sides stripped text
                if text:
                    rows.append(json.dumps({"id": str(len(rows)), "text": text}, ensure_ascii=False) + "\n")
                    budget -= len(text.encode("utf-8"))
    total = sum(len(r) for r in rows)
    out, k, acc, cur = [], 0, 0, None
    for r in rows:
        if cur is None or (acc >= total * (k / parts) and k < parts):
            k += 1
            cur = open(folder / f"part-{k:03d}.jsonl", "w", encoding="utf-8")
            out.append(cur)
        cur.write(r)
        acc += len(r)
    for f in out:
        f.close()
    text = sum(len(json.loads(r)["text"].encode("utf-8")) for r in rows)
    return [f.name for f in out], text, len(rows)


def run_side(side: str, args: dict, tmp: Path) -> dict:
    p = tmp / "args.json"
    p.write_text(json.dumps(args))
    r = subprocess.run([sys.executable, __file__, "--phase", side, str(p)], capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"})
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--tokenizers", default="llama3,mistral")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (cores)")
    ap.add_argument("--files-per-run", dest="parts", type=int, default=16, help="jsonl files the corpus is split into")
    ap.add_argument("--max-mb", type=float, default=None, help="use only the first MB of text (a quick check)")
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--dolma-bin", default=None, help="a `dolma` executable (its own venv: numpy<2, tokenizers<=0.19.1)")
    a = ap.parse_args()
    from tokkit import load_tokenizer

    sides = [s for s in a.sides.split(",") if s != "dolma" or a.dolma_bin]
    if "datatrove" in sides:
        try:
            import datatrove  # noqa: F401
        except ImportError:
            print("datatrove is not installed: skipped (pip install datatrove)")
            sides.remove("datatrove")
    workers = [int(w) for w in a.workers.split(",")]
    files = sorted({f for pat in a.files for f in glob.glob(os.path.expanduser(pat))})
    with tempfile.TemporaryDirectory(prefix="encode_bench_") as tmp_s:
        tmp = Path(tmp_s)
        corpus = tmp / "corpus"
        corpus.mkdir()
        parts, text_bytes, n_docs = split_corpus(files, a.parts, corpus, a.max_mb)
        print(f"corpus: {n_docs:,} documents, {text_bytes / 1e6:.2f} MB of text in {len(parts)} jsonl files "
              f"(from {', '.join(Path(f).name for f in files)}); {os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.1f}")
        for alias in a.tokenizers.split(","):
            tok = load_tokenizer(alias)
            eos = tok.vocab.role_id("eos")
            hf_json = tmp / f"{alias}.json"
            tok.to_hf().save(str(hf_json))  # the exact HF tokenizers model of this tokenizer, for the HF peers
            dtype = "uint16" if tok.vocab_size <= 65536 else "uint32"
            print(f"\n{alias} ({tok.backend}, {tok.vocab_size:,} ids, {dtype}); EOS {eos} appended to every document")
            print(f"{'side':<14} {'workers':>7} {'seconds':>8} {'MB/s':>7} {'tokkit x':>9} {'CPU s':>7} {'MB/CPU-s':>9} "
                  f"{'tokkit x':>9} {'peak MB':>8} {'worker MB':>9}  ids")
            rates: dict[tuple[str, int], float] = {}
            cpu_rates: dict[tuple[str, int], float] = {}
            for w in workers:
                ref = None
                for side in sides:
                    out = tmp / f"out_{alias}_{side}_{w}"
                    out.mkdir()
                    args = {"files": [str(corpus / p) for p in parts], "folder": str(corpus), "tokenizer": alias,
                            "hf_json": str(hf_json), "eos": eos, "eos_text": tok.vocab.tokens[eos].decode(), "dtype": dtype,
                            "workers": w, "out": str(out), "dolma_bin": a.dolma_bin,
                            "pad": tok.vocab.role_id("pad") if tok.vocab.role_id("pad") is not None else eos}
                    res = run_side(side, args, tmp)
                    if "error" in res:
                        print(f"{side:<14} {w:>7} failed: {res['error']}")
                        shutil.rmtree(out, ignore_errors=True)
                        continue
                    if side == "tokkit":
                        ref = read_tokkit(out)
                        check = f"{sum(map(len, ref)):,} tokens"
                    else:
                        docs = {"datasets.map": lambda: read_datasets(out, eos, dtype), "datatrove": lambda: read_datatrove(out),
                                "dolma": lambda: read_dolma(out, dtype)}[side]()
                        check = compare(ref, docs, tok) if ref is not None else "(no tokkit run to compare)"
                    rate = text_bytes / 1e6 / res["seconds"]
                    per_cpu = text_bytes / 1e6 / res["cpu"]
                    rates[(side, w)], cpu_rates[(side, w)] = rate, per_cpu
                    ratio = rates[("tokkit", w)] / rate if ("tokkit", w) in rates else float("nan")
                    cpu_ratio = cpu_rates[("tokkit", w)] / per_cpu if ("tokkit", w) in cpu_rates else float("nan")
                    print(f"{side:<14} {w:>7} {res['seconds']:>8.1f} {rate:>7.2f} {ratio:>9.2f} {res['cpu']:>7.1f} "
                          f"{per_cpu:>9.2f} {cpu_ratio:>9.2f} {res['peak_mb']:>8.0f} {res['worker_peak_mb']:>9.0f}  {check}")
                    shutil.rmtree(out, ignore_errors=True)
            if len(workers) > 1:
                lo, hi = workers[0], workers[-1]
                print("scaling " + ", ".join(f"{s} {rates[(s, hi)] / rates[(s, lo)]:.2f}x" for s in sides
                                             if (s, lo) in rates and (s, hi) in rates) + f" ({lo} -> {hi} workers)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--phase":
        _phase(sys.argv[2], sys.argv[3])
    else:
        main()
