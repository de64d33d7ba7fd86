"""``tokkit bytes score|next|complete|generate|ensemble``: exact byte-level probabilities from tokenized LMs.

Thin layer: parse, overlay flags on :class:`tokkit.bytelevel.options.BytesOptions`, call
:mod:`tokkit.bytelevel` (imported inside each command so ``tokkit --help`` never loads torch),
print a summary or JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import click

from tokkit.bytelevel.options import BytesOptions
from tokkit.errors import EmptyInputError
from tokkit_cli.cost import Cost
from tokkit_cli.main import apply_threads, cli, interrupted, threads_option

_EOS = 256


def _opts(**flags) -> BytesOptions:
    return BytesOptions.model_validate({k: v for k, v in flags.items() if v is not None})


_THREADS: list[int | None] = [None]


@lru_cache(maxsize=4)
def _load(model: str, target: str, beam: int | None, device: str):
    from tokkit.bytelevel import ByteLM

    apply_threads(_THREADS[0])
    return ByteLM.from_pretrained(model, target=target, beam=beam, device=device)  # type: ignore[arg-type]


def _raw(value: str | None, escapes: bool) -> bytes | None:
    """The exact bytes of a command-line TEXT/PREFIX: argv bytes that are not UTF-8 arrive as surrogates
    (PEP 383) and go back unchanged through ``os.fsencode``; with ``--escapes``, ``\\xNN``, ``\\n``,
    ``\\t`` and ``\\\\`` are decoded too (bytes a shell cannot type)."""
    if value is None:
        return None
    raw = os.fsencode(value)
    if escapes:
        import codecs

        try:
            raw = codecs.escape_decode(raw)[0]
        except ValueError as e:
            raise click.BadParameter(f"bad escape in {value!r} ({e}); write bytes as \\xNN", param_hint="--escapes") from None
    return raw


def _show(b: bytes) -> str:
    return b.decode("utf-8", errors="backslashreplace")


def _text(text: str | None, file: Path | None, escapes: bool = False) -> bytes:
    if file is not None:
        if str(file) == "-":
            body = sys.stdin.buffer.read()
        else:
            from tokkit.input_files import read_input_bytes

            body = read_input_bytes(file, what="--file", expected="pass a text file or '-' for stdin")
        where = str(file)
    elif text is None:
        raise click.UsageError("give TEXT or --file PATH")
    else:
        body, where = _raw(text, escapes), "TEXT"
    if not body:
        raise EmptyInputError(f"{where} is empty: expected some text to score; pass a non-empty text")
    return body


def _where(text: str | None, file: Path | None, suffix: str = "") -> str:
    return ("TEXT" if file is None else "stdin" if str(file) == "-" else str(file)) + suffix


def _refuse_probability_0(blm, sc, body: bytes, where: str, *, context: bytes = b"") -> None:
    """A byte of ``body`` that the model gives probability 0 (``score`` stops there with -inf) gets the error
    ``--context`` gets for it: the model's own check of the prefix up to that byte raises it, naming the bytes."""
    from tokkit.errors import ImpossiblePrefixError

    n = len(sc.byte_logprobs)
    if n > len(body) or sc.byte_logprobs[-1] != float("-inf"):
        return  # every byte scored (an end-of-text of probability 0 after --eos is a score, not bad input)
    try:
        blm.state(context + body[:n]).next_byte()
    except ImpossiblePrefixError as e:
        raise ImpossiblePrefixError(f"{where}, byte {n - 1} (0x{body[n - 1]:02x}): {e}") from None
    raise ImpossiblePrefixError(f"{where}, byte {n - 1} (0x{body[n - 1]:02x}): expected bytes the model can produce, "
                                "found one of probability 0; remove or replace those bytes")


def _byte_name(b: int) -> str:
    return "<end>" if b == _EOS else repr(bytes([b]))[2:-1]


def _shown(text: str) -> str:
    """``text`` on one line: control characters escaped as in Python (``\\n``), everything else as is."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _emit(as_json: bool, payload: dict, lines: list[str]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False) if as_json else "\n".join(lines))


def _set_threads(ctx: click.Context, _param, value: int | None) -> int | None:
    if value is not None:
        _THREADS[0] = value  # applied when the model is loaded (`--help` never imports torch)
    return value


model_opts = [
    click.option("--target", type=click.Choice(["canonical", "all"]), default=None, help="Probability target (default canonical)."),
    click.option("--beam", type=int, default=None, help="Exact sequences kept per byte with --target all."),
    click.option("--device", default=None, help="cpu, cuda or auto (default auto)."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    click.option("--escapes", is_flag=True, help="Decode \\xNN, \\n, \\t, \\\\ in the text arguments (bytes a shell cannot type)."),
    lambda f: _threads_here(f),
]


def _threads_here(f):
    """``--threads`` on each subcommand, where users put it (``tokkit bytes next MODEL X --threads 1``)."""
    f = threads_option(f)
    opt = f.__click_params__[-1]
    opt.expose_value, opt.callback = False, _set_threads
    return f


def _with(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


def _hidden(f):
    f.__click_params__[-1].hidden = True  # still accepted before the subcommand (earlier releases put it there)
    return f


@cli.group("bytes")
@_hidden
@threads_option
def bytes_group(threads) -> None:
    """Exact byte-level probabilities, generation and completion from any byte, ensembles across vocabularies."""
    _THREADS[0] = threads  # a subcommand's --threads overrides it; applied when a model is loaded


@bytes_group.command("score")
@click.argument("model")
@click.argument("text", required=False)
@click.option("--file", type=click.Path(path_type=Path), default=None, help="Read the text from a file ('-' = stdin).")
@click.option("--context", default="", help="Condition on this text first (may end mid-word).")
@click.option("--eos", is_flag=True, help="Score the text as complete (adds end-of-text).")
@_with(model_opts)
def score_cmd(model, text, file, context, eos, target, beam, device, as_json, escapes) -> None:
    """Log-probability and bits per byte of TEXT under MODEL (an HF folder or alias)."""
    cost = Cost()
    o = _opts(target=target, beam=beam, device=device)
    body = _text(text, file, escapes)
    blm = _load(model, o.target, o.beam, o.device)
    t0, c0 = time.perf_counter(), blm.lm.calls
    ctx = _raw(context, escapes)
    sc = blm.score(body, eos=eos, context=ctx, progress=not as_json)
    _refuse_probability_0(blm, sc, body, _where(text, file), context=ctx)
    secs, calls = time.perf_counter() - t0, blm.lm.calls - c0
    payload = {"logprob": sc.logprob, "bits_per_byte": sc.bits_per_byte, "bytes": len(sc.byte_logprobs),
               "sum_log_z": float(sc.log_z.sum()), "lm_calls": calls, "seconds": secs, "target": o.target}
    _emit(as_json, payload, [f"logprob {sc.logprob:.4f} nats over {len(sc.byte_logprobs)} bytes "
                             f"({sc.bits_per_byte:.4f} bits/byte); Σ log Z = {sc.log_z.sum():.3g}"])
    cost.done(f"{len(sc.byte_logprobs)} bytes, {calls} LM calls")


@bytes_group.command("next")
@click.argument("model")
@click.argument("prefix")
@click.option("--top", type=int, default=None, help="How many bytes to list (default 10).")
@_with(model_opts)
def next_cmd(model, prefix, top, target, beam, device, as_json, escapes) -> None:
    """Next-byte distribution after PREFIX (which may end mid-token)."""
    import numpy as np

    cost = Cost()
    o = _opts(target=target, beam=beam, device=device, top=top)
    raw = _raw(prefix, escapes)
    prefix = _show(raw)
    blm = _load(model, o.target, o.beam, o.device)
    nb = blm.next_byte(raw)
    order = np.argsort(-nb.logprobs)[: o.top]
    rows = [{"byte": int(b), "text": _byte_name(int(b)), "prob": float(np.exp(nb.logprobs[b]))} for b in order]
    _emit(as_json, {"prefix": prefix, "top": rows, "log_z": nb.log_z, "log_prefix": nb.log_prefix},
          [f"{r['text']!s:>8}  {r['prob']:.6f}" for r in rows] + [f"log Z = {nb.log_z:.3g} (0 = no mass outside canonical encodings)"])
    cost.done(f"{len(raw)} prefix bytes, {blm.lm.calls} LM calls")


@bytes_group.command("complete")
@click.argument("model")
@click.argument("prefix")
@click.option("--suffix", default=None, help="Fill in the middle: stop where the suffix's first byte is most likely.")
@click.option("--max-bytes", type=int, default=None, help="Bytes to generate at most (default 64).")
@click.option("--temperature", type=float, default=None, help="0 = greedy (default); else sample.")
@click.option("--seed", type=int, default=None, help="Sampling seed (default 0).")
@click.option("--baseline", is_flag=True, help="Also show naive token-level continuation and token healing.")
@_with(model_opts)
def complete_cmd(model, prefix, suffix, max_bytes, temperature, seed, baseline, target, beam, device, as_json,
                 escapes) -> None:
    """Complete PREFIX from any byte boundary, without tokenization bias.

    PREFIX may end mid-character: its bytes are passed on exactly (or write them as \\xNN with --escapes).
    """
    cost = Cost()
    o = _opts(target=target, beam=beam, device=device, max_bytes=max_bytes, temperature=temperature, seed=seed)
    raw = _raw(prefix, escapes)
    prefix = _show(raw)
    blm = _load(model, o.target, o.beam, o.device)
    t0, c0 = time.perf_counter(), blm.lm.calls
    done = blm.complete(raw, _raw(suffix, escapes), max_bytes=o.max_bytes, temperature=o.temperature, seed=o.seed)
    out = _show(done)  # complete returns bytes; shown with \\xNN for bytes that are not UTF-8
    payload = {"prefix": prefix, "completion": out, "lm_calls": blm.lm.calls - c0, "seconds": time.perf_counter() - t0}
    lines = [f"{_shown(prefix)}[{_shown(out)}]"]
    if baseline:
        from tokkit.bytelevel.heal import naive_continue, token_heal_continue

        payload["naive"] = naive_continue(blm, prefix)
        payload["token_healing"] = token_heal_continue(blm, prefix)
        lines += [f"naive token-level: {_shown(prefix)}[{_shown(payload['naive'])}]",
                  f"token healing:     {_shown(prefix)}[{_shown(payload['token_healing'])}]"]
    _emit(as_json, payload, lines)
    cost.done(f"{len(done)} bytes completed, {blm.lm.calls} LM calls")


@bytes_group.command("generate")
@click.argument("model")
@click.argument("prompt")
@click.option("--max-bytes", type=int, default=None, help="Bytes to generate (fewer if the text ends) [default: 64].")
@click.option("--temperature", type=float, default=None,
              help="0 = greedy (default); 1 = the model's own distribution (drawn a token at a time); else p^(1/T) per byte.")
@click.option("--seed", type=int, default=None, help="Sampling seed (default 0).")
@_with(model_opts)
def generate_cmd(model, prompt, max_bytes, temperature, seed, target, beam, device, as_json, escapes) -> None:
    """Generate bytes after PROMPT, printing each as it comes (PROMPT may end mid-word or mid-character).

    Unlike `complete`, which stops at the end of the word, this runs to --max-bytes or the end of the text.
    """
    import codecs

    cost = Cost()
    o = _opts(target=target, beam=beam, device=device, max_bytes=max_bytes, temperature=temperature, seed=seed)
    raw = _raw(prompt, escapes)
    blm = _load(model, o.target, o.beam, o.device)
    t0, c0 = time.perf_counter(), blm.lm.calls
    out = bytearray()
    text = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")  # whole characters as they complete
    if not as_json:
        click.echo(_show(raw), nl=False)
    try:
        for b in blm.stream(raw, max_bytes=o.max_bytes, temperature=o.temperature, seed=o.seed):
            out.append(b)
            if not as_json:
                click.echo(text.decode(bytes([b])), nl=False)
    except KeyboardInterrupt as e:  # the bytes printed so far stand; the shared one-line ending (exit 130 / 143)
        click.echo(text.decode(b"", final=True))
        raise interrupted(e, f"{len(out)} bytes generated before it") from None
    secs, calls = time.perf_counter() - t0, blm.lm.calls - c0
    if as_json:
        click.echo(json.dumps({"prompt": _show(raw), "generated": _show(bytes(out)), "bytes": len(out), "lm_calls": calls,
                               "seconds": secs, "temperature": o.temperature, "seed": o.seed}, ensure_ascii=False))
    else:
        click.echo(text.decode(b"", final=True))
    cost.done(f"{len(out)} bytes generated, {calls} LM calls")


@bytes_group.command("ensemble")
@click.argument("models", nargs=-1, required=True)
@click.option("--text", default=None, help="Score this text (bits per byte of each model and of the ensemble).")
@click.option("--file", type=click.Path(path_type=Path), default=None, help="Score the text in this file.")
@click.option("--complete", "prefix", default=None, help="Complete this prefix with the ensemble instead.")
@click.option("--weights", default=None, help="Comma-separated weights, one per model (default equal).")
@click.option("--mode", type=click.Choice(["mixture", "product", "bayes"]), default=None, help="Combination rule (default mixture).")
@_with(model_opts)
def ensemble_cmd(models, text, file, prefix, weights, mode, target, beam, device, as_json, escapes) -> None:
    """Combine MODELS with different tokenizers at byte level; score text or complete a prefix."""
    from tokkit.bytelevel import ByteEnsemble
    from tokkit.bytelevel.ensemble import member_weights
    from tokkit.errors import TokkitError

    cost = Cost()
    o = _opts(target=target, beam=beam, device=device, mode=mode)
    try:
        w = [float(x) for x in weights.split(",")] if weights else None
    except ValueError:
        raise TokkitError(f"--weights must be comma-separated numbers, found {weights!r}") from None
    w = member_weights(w, len(models), name="--weights")  # before any model is loaded
    body = _text(text, file, escapes) if prefix is None else b""
    members = [_load(m, o.target, o.beam, o.device) for m in models]
    ens = ByteEnsemble(members, weights=w, mode=o.mode)
    if prefix is not None:
        raw = _raw(prefix, escapes)
        out = _show(ens.complete(raw))
        _emit(as_json, {"prefix": _show(raw), "completion": out, "mode": o.mode}, [f"{_shown(_show(raw))}[{_shown(out)}]"])
        cost.done(f"{len(raw)} prefix bytes completed by {len(members)} models")
        return
    bpb = {}
    for m, blm in zip(models, members):
        sc = blm.score(body, progress=not as_json)
        _refuse_probability_0(blm, sc, body, _where(text, file, f" under {m}"))
        bpb[m] = sc.bits_per_byte
    bpb_ens = ens.score(body, progress=not as_json).bits_per_byte
    _emit(as_json, {"bits_per_byte": bpb, "ensemble": bpb_ens, "mode": o.mode, "bytes": len(body)},
          [f"{m}: {v:.4f} bits/byte" for m, v in bpb.items()] + [f"ensemble ({o.mode}): {bpb_ens:.4f} bits/byte"])
    cost.done(f"{len(body):,} bytes scored by {len(members)} models and the ensemble")
