"""Entry point of the ``tokkit`` command: the group, shared options and the error mapping.

Each command lives in its own module and imports torch-heavy code inside its function body, so
``tokkit --help`` never loads torch. Bad input becomes one line on stderr (``error: ...``) and exit
code 2 -- here, in one place (:func:`user_error`): a :class:`tokkit.errors.TokkitError`, a bad flag
(click's usage errors), a config value pydantic refuses (named by its flag), an optional dependency
that is not installed (names the extra), an ``OSError`` on a named path. Exit code 1 is left for
unexpected failures. Before a command runs, its outputs are checked (:func:`preflight`): not one of
its inputs (by path and inode), a parent folder that can be written to, with ``--force`` something
``--force`` may replace; float options are finite, thread counts in range. SIGINT/SIGTERM end a command
with one line and exit 130/143 after its temporaries are removed (:func:`_signals`); a closed stdout
pipe is one line and exit 141.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

import click

from tokkit.errors import TokkitError

__all__ = ["cli", "main", "UserError", "user_error", "OUTPUT_PARAMS", "threads_option", "apply_threads", "interrupted",
           "max_minutes_option"]

#: Parameter names that are outputs in every command (one naming rule, checked before the work).
OUTPUT_PARAMS = ("out", "out_dir", "out_file", "json_out", "csv_out", "plot")
#: What each output parameter writes (``out``: from its click.Path(file_okay/dir_okay), else not known).
_OUTPUT_KINDS = {"out_dir": "dir", "out_file": "file", "json_out": "file", "csv_out": "file", "plot": "file"}

#: Optional modules -> the extra that installs them (pyproject.toml).
_EXTRAS = {"PIL": "image", "matplotlib": "image", "vector_quantize_pytorch": "image", "ray": "ray", "mergekit": "bench"}


class UserError(click.ClickException):
    """Bad input shown as one line (``error: ...``) with exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        std = sys.modules.get("tqdm.std")  # a progress bar cut short: end its line so the error starts one
        for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ())):
            bar.close()
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _flags(ctx: click.Context | None) -> dict[str, str]:
    """Param name -> its long flag, for the command being run."""
    out: dict[str, str] = {}
    while ctx is not None:
        for p in ctx.command.params:
            if isinstance(p, click.Option) and p.name:
                longs = [o for o in p.opts if o.startswith("--")]
                out.setdefault(p.name, (longs or p.opts)[0])
        ctx = ctx.parent
    return out


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def user_error(e: BaseException, ctx: click.Context | None = None) -> UserError | None:
    """The one-line error for ``e``, or None when ``e`` is not the user's doing (a bug: traceback, exit 1)."""
    if isinstance(e, UserError):
        return e
    if isinstance(e, TokkitError):
        return UserError(_one_line(str(e)))
    if isinstance(e, click.UsageError):
        msg = _one_line(e.format_message()).replace("'", "").rstrip(".")
        return UserError(msg[:1].lower() + msg[1:] + f"; see `{_path(e.ctx)} --help`")
    if isinstance(e, click.ClickException):
        return UserError(_one_line(e.format_message()))
    if type(e).__name__ == "ValidationError" and type(e).__module__.startswith("pydantic"):
        from tokkit.config import validation_message

        return UserError(validation_message(e, label="option", flags=_flags(ctx)))
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        extra = _EXTRAS.get(top)
        if extra is not None:
            return UserError(f"this command needs the optional package {top!r}, which is not installed; "
                             f"install it with: pip install 'tokkit[{extra}]'")
    if type(e).__name__ == "SafetensorError":  # the native reader: a damaged weights file somewhere in the inputs
        return UserError(f"a .safetensors weights file of the input is damaged or truncated ({_one_line(str(e))}); "
                         "fetch, convert or save it again")
    if isinstance(e, UnicodeDecodeError):
        return UserError(f"expected UTF-8 text, found byte 0x{e.object[e.start]:02x} at byte offset {e.start} "
                         "that is not UTF-8; convert the file to UTF-8")
    if isinstance(e, RuntimeError) and "can't start new thread" in str(e):  # the OS's thread/process limit
        return UserError("the system refused to start a thread (this machine's limit on threads/processes is "
                         "reached: other jobs, or `ulimit -u`); run again when fewer jobs run, or with --threads 1")
    if isinstance(e, OSError) and e.filename is not None:
        return UserError(f"cannot use {e.filename}: {e.strerror or e}; check the path and its permissions")
    return None


def _path(ctx: click.Context | None) -> str:
    """``tokkit image encode``: the command the usage error is about."""
    parts = ctx.command_path.split(" ", 1) if ctx is not None else []
    return "tokkit" + (" " + parts[1] if len(parts) > 1 else "")


def _values(v) -> list:
    if isinstance(v, (tuple, list)):
        return [x for item in v for x in _values(item)]
    return [v] if isinstance(v, (str, os.PathLike)) else []


def _output_kind(ctx: click.Context, name: str) -> str | None:
    if name in _OUTPUT_KINDS:
        return _OUTPUT_KINDS[name]
    for p in ctx.command.params:
        if p.name == name and isinstance(p.type, click.Path):
            if not p.type.file_okay:
                return "dir"
            if not p.type.dir_okay:
                return "file"
    return None


def _check_numbers(ctx: click.Context) -> None:
    """Float options are finite (click's FLOAT takes ``nan``/``inf``); ``--threads`` is in 1..4 x cores."""
    from tokkit.config import check_threads

    flags = _flags(ctx)
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if isinstance(p.type, (click.types.FloatParamType, click.FloatRange)) and v is not None:
            for x in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(x, float) and not math.isfinite(x):
                    raise UserError(f"{flags.get(p.name, p.name)} {x}: expected a finite number, found {x}; "
                                    "pass a finite value")
        if p.name == "threads" and v is not None:
            check_threads(v, name=flags.get(p.name, "--threads"))


def preflight(ctx: click.Context) -> None:
    """Before the work: every output is checked (not an input -- by path and inode --, parent folder writable,
    with ``--force`` replaceable, stale temporaries gone); float options finite; thread counts in range."""
    from tokkit.atomic import check_not_input, check_output

    _check_numbers(ctx)
    outs = [(name, v) for name in OUTPUT_PARAMS for v in _values(ctx.params.get(name)) if str(v) != "-"]
    if not outs:
        return
    inputs = _inputs(ctx)
    force = bool(ctx.params.get("force"))
    for name, o in outs:
        check_not_input(o, inputs)
        # existence is each command's to judge (--force, --resume); what --force may replace is checked here
        check_output(o, force=force, kind=_output_kind(ctx, name), exists_ok=not force)  # type: ignore[arg-type]


def _inputs(ctx: click.Context) -> list:
    return [v for name, val in ctx.params.items() if name not in OUTPUT_PARAMS for v in _values(val)
            if str(v) and os.path.lexists(v)]


def _mapped(ctx: click.Context, call):
    """Run ``call()``; an exception that ``user_error`` maps becomes the one-line error (others unchanged)."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - mapped or re-raised unchanged
        err = user_error(e, ctx)
        if err is None or err is e:
            raise
        raise err from None
    except BaseException as e:  # a native library's panic (pyo3's PanicException is no Exception): one line
        if type(e).__name__ != "PanicException":
            raise
        from tokkit.native_calls import encode_failure

        raise UserError(_one_line(str(encode_failure(e, "the input tokenizer")))) from None


class _Command(click.Command):
    def invoke(self, ctx: click.Context):
        from tokkit.atomic import tracking_inputs

        def run():
            with tracking_inputs(_inputs(ctx)):  # every writer also checks what the work reads
                preflight(ctx)
                return click.Command.invoke(self, ctx)

        return _mapped(ctx, run)


class Interrupted(UserError):
    """A signal ended the command: one line, exit 128 + the signal's number (130 SIGINT, 143 SIGTERM)."""


def interrupted(e: KeyboardInterrupt, done: str, *, cost=None) -> Interrupted:
    """The one-line ending for a command that streams results and is stopped by a signal: ``interrupted by
    SIGINT: <done>`` (exit 130; 143 for SIGTERM), progress bars closed first; ``cost()`` prints the cost line."""
    signum = getattr(e, "signum", signal.SIGINT)
    std = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ())):
        bar.close()
    if cost is not None:
        cost()
    err = Interrupted(f"interrupted by {signal.Signals(signum).name}: {done}")
    err.exit_code = 128 + int(signum)
    return err


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every ``with`` block (temporaries, parent folders) cleans up."""

    signum = signal.SIGTERM


def _on_term(signum, frame):  # noqa: ARG001 - signal API
    raise _Terminated()


@contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM raises like SIGINT does (only the main thread can install handlers; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _closed_stdout() -> None:
    """stdout's reader went away: point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups (bytes, image, hypernet) are _Group too

    def invoke(self, ctx: click.Context):
        if ctx.parent is not None:
            return _mapped(ctx, lambda: click.Group.invoke(self, ctx))
        try:
            with _signals():
                return _mapped(ctx, lambda: click.Group.invoke(self, ctx))
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", signal.SIGINT)
            err = Interrupted(f"interrupted by {signal.Signals(signum).name}: stopped; temporaries and unfinished "
                              "outputs removed (a run that keeps checkpoints keeps its last one for --resume)")
            err.exit_code = 128 + int(signum)
            raise err from None
        except BrokenPipeError:
            _closed_stdout()
            err = UserError("stdout was closed before the output was complete (its reader exited); "
                            "nothing else was affected")
            err.exit_code = 128 + int(signal.SIGPIPE)
            raise err from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug; also the libraries' warnings and bars).")
@click.version_option(package_name="tokkit")
def cli(verbose: int) -> None:
    """tokkit: train, inspect, compare and transplant tokenizers; byte-level LMs; 1D image tokens."""
    for stream in (sys.stdout, sys.stderr):  # a path with non-UTF-8 bytes is printed as those bytes
        if hasattr(stream, "reconfigure") and getattr(stream, "encoding", "").lower().replace("-", "") == "utf8":
            try:
                stream.reconfigure(errors="surrogateescape" if stream is sys.stdout else "backslashreplace")
            except (ValueError, OSError):
                pass
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not verbose:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """Keep the libraries' deprecation chatter and loading bars off ordinary commands (``-v`` shows them).

    Set before any command imports transformers / huggingface_hub, which read these at import;
    tokkit's own progress bars (tqdm) and its warnings (``logging``) are unaffected.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # No blanket filter on FutureWarning / DeprecationWarning: tokkit calls its libraries the current way
    # (e.g. the KV cache as `cache=` where transformers deprecates `past_key_values`), and
    # tests/test_newcomer.py checks that no warning reaches a user's stderr in the documented flows.


def threads_option(f):
    """``--threads N`` for the commands that run a model (one definition, one default)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="torch CPU threads, 1..4 x cores [default: $TOKKIT_THREADS, else the free cores: cores minus "
                             "the 1-minute load average, at least 1 - torch's all-cores default oversubscribes a shared "
                             "machine].")(f)


def max_minutes_option(f):
    """``--max-minutes M`` for the training commands (:class:`tokkit.optim.StepLoop`)."""
    return click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
                        help="Wall-clock budget: stop at a checkpoint once the next step would not fit in M minutes "
                             "from the start (loading included); --resume continues [default: no budget].")(f)


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: :func:`tokkit.config.default_threads`); returns it."""
    import torch

    from tokkit.config import check_threads, default_threads

    n = check_threads(threads, name="--threads") if threads else default_threads()
    torch.set_num_threads(n)
    logging.getLogger("tokkit").info("torch CPU threads: %d", n)
    return n


def _register() -> None:
    # One line per command module; each module adds its commands to `cli`.
    from tokkit_cli import bytes as _bytes, count, encode, export_cmd, extend, heal, hypernet, image, image_codec, image_prior, train, transplant, vocab_cmd  # noqa: F401


_register()


def main() -> None:
    try:
        cli(prog_name="tokkit")
    except SystemExit as e:
        if e.code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            _exit_now(int(e.code))
        raise


def _exit_now(code: int) -> None:
    """After a signal, end now: native work still running in other threads or child processes is abandoned
    (the temporaries are already gone), not waited for."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.terminate()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    # `python -m tokkit_cli.main`: commands registered on the imported module, not on this __main__ copy
    from tokkit_cli.main import main as _main

    _main()
