"""``tokkit encode``: a corpus -> training-ready token shards (numpy, Megatron, datatrove, parquet); thin over tokkit.train.encode_corpus."""

from __future__ import annotations

import re
import resource
from pathlib import Path

import click
from tokkit_cli.main import cli

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30}


class ByteSize(click.ParamType):
    """``64MB``, ``1GiB``, ``500k`` or a plain number of bytes."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m[2].lower() not in _UNITS or float(m[1]) * _UNITS[m[2].lower()] < 4096:
            self.fail(f"expected a size of at least 4096 bytes such as 64MB, 1GiB or 500k, found {value!r}", param, ctx)
        return int(float(m[1]) * _UNITS[m[2].lower()])


@cli.command("encode")
@click.argument("sources", nargs=-1, required=True)
@click.option("--tokenizer", "-t", required=True, help="Tokenizer alias, file or folder (as everywhere: llama3, out/legal-4k ...).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder of shards + manifest.json.")
@click.option("--format", "fmt", type=click.Choice(["numpy", "megatron", "datatrove", "parquet"]), default=None,
              help="numpy: raw ids + dolma .csv.gz index (nanoGPT, OLMo); megatron: .bin + .idx; datatrove: .ds files; "
                   "parquet: input_ids rows for datasets.load_dataset  [default: numpy]")
@click.option("--bos/--no-bos", default=None, help="Prepend the tokenizer's BOS id to every document  [default: no]")
@click.option("--eos/--no-eos", default=None, help="Append the tokenizer's EOS id to every document  [default: yes]")
@click.option("--bos-token", default=None, help="Prepend this token (its exact text, e.g. '<|begin_of_text|>') instead.")
@click.option("--eos-token", default=None, help="Append this token (its exact text, e.g. '<|endoftext|>') instead.")
@click.option("--allow-special", is_flag=True, default=None,
              help="Encode special-token strings found in the text as special tokens  [default: as plain text]")
@click.option("--shard-size", type=ByteSize(), default=None,
              help="Input bytes per shard (documents are never split; the same shards for any --workers)  "
                   "[default: about 1/32 of the input, between 4MiB and 256MiB]")
@click.option("--workers", type=click.IntRange(1, 4096), default=None, help="Processes (local) or CPUs of a local Ray cluster  [default: all cores]")
@click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
              help="local: a process pool on this machine; ray: Ray Data tasks (local cluster, or --address)  [default: local]")
@click.option("--address", default=None, help="Ray cluster address (ray://HOST:10001 or 'auto'); default: start a local one.")
@click.option("--resume", is_flag=True, default=None, help="Finish an interrupted encode into OUT (byte-identical result).")
@click.option("--force", is_flag=True, default=None, help="Replace an existing OUT (the new shards are written beside it and swapped in when complete; it stays as it was if the run fails).")
@click.option("--text-column", default=None, help="jsonl/parquet/dataset text column  [default: text]")
@click.option("--skip-bad-utf8", is_flag=True, default=None, help="Skip non-UTF-8 documents (counted) instead of failing.")
@click.option("--seed", type=int, default=None, help="Seed of PATH@RATE sampling  [default: 0]")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def encode(sources, tokenizer, out, fmt, bos, eos, bos_token, eos_token, allow_special, shard_size, workers, engine,
           address, resume, force, text_column, skip_bad_utf8, seed, quiet):
    """Encode SOURCES (files, folders, globs, PATH@RATE, hf:NAME) into token shards a trainer reads as they are.

    Every document's ids are those of the tokenizer's encode (plus BOS/EOS as asked); the output is
    byte-identical for any --workers and for --engine ray, and --resume finishes a killed run with the
    same bytes. Read it back in Python with tokkit.TokenShards(OUT).

    Example: tokkit encode data/legal/train.jsonl --tokenizer gpt2 -o out/legal-tokens
    """
    from tokkit_cli.cost import Cost

    from tokkit.train.encode_corpus import encode_corpus

    cost = Cost()
    flags = {"format": fmt, "bos": bos, "eos": eos, "bos_token": bos_token, "eos_token": eos_token,
             "allow_special": allow_special, "shard_bytes": shard_size, "workers": workers, "engine": engine,
             "address": address, "resume": resume, "force": force, "text_column": text_column,
             "skip_bad_utf8": skip_bad_utf8, "seed": seed}
    m = encode_corpus(list(sources), tokenizer=tokenizer, out=out, progress=not quiet,
                      **{k: v for k, v in flags.items() if v is not None})
    c = m.data["counts"]
    added = [f"{k} {v['text']} ({v['id']})" for k, v in m.special_tokens.items() if isinstance(v, dict)]
    names = [f["name"] for f in m.shards[0]["files"]]
    size = sum(f["bytes"] for s in m.shards for f in s["files"])
    click.echo(f"encoded {c['documents']:,} documents, {c['bytes'] / 1e6:.2f} MB of text -> {c['tokens']:,} tokens "
               f"({m.dtype}) in {len(m.shards)} shard(s) -> {out}")
    click.echo(f"  format       {m.format}: {', '.join(names)}{' ...' if len(m.shards) > 1 else ''} + manifest.json "
               f"({size / 1e6:.2f} MB)")
    click.echo(f"  per document {', '.join(added) if added else 'no ids added'}; special-token strings in the text "
               f"encoded as {m.special_tokens['strings_in_text']}")
    skipped = [f"{c['skipped_empty']} empty"] * bool(c["skipped_empty"]) + [f"{c['skipped_bad_utf8']} not UTF-8"] * bool(c["skipped_bad_utf8"])
    if skipped:
        click.echo(f"  skipped      {', '.join(skipped)} document(s)")
    if m.run.get("shards_done_before"):
        click.echo(f"  resumed      {m.run['shards_done_before']} of {len(m.shards)} shard(s) were done already")
    secs = max(cost.elapsed(), 1e-9)
    if not m.run:
        cost.done(f"nothing to do: {out} is complete")
        return
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # local pool processes (Linux: KB)
    cost.done(f"{c['bytes'] / 1e6:.2f} MB, {c['tokens']:,} tokens ({c['bytes'] / 1e6 / secs:.2f} MB/s, "
              f"{c['documents'] / secs:,.0f} docs/s, {c['tokens'] / secs / 1e6:.2f}M tokens/s "
              + (f"with {m.run['workers']} {m.run['engine']} worker(s)" if m.run["workers"] else "on the Ray cluster")
              + (f"; largest worker peak memory {worker_mb:.0f} MB" if worker_mb else "") + ")")
