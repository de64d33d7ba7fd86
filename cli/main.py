"""Entry point of the ``tokkit`` command: the group, shared options and the error mapping.

Each command lives in its own module and imports torch-heavy code inside its function body, so
``tokkit --help`` never loads torch. Bad input (any :class:`tokkit.errors.TokkitError`) becomes
one line on stderr and exit code 2; exit code 1 is left for unexpected failures.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click

from tokkit.errors import TokkitError

__all__ = ["cli", "main", "UserError", "threads_option", "apply_threads"]


class UserError(click.ClickException):
    """A TokkitError shown as one line (``error: ...``) with exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TokkitError as e:
            raise UserError(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug; also the libraries' warnings and bars).")
@click.version_option(package_name="tokkit")
def cli(verbose: int) -> None:
    """tokkit: train, inspect, compare and transplant tokenizers; byte-level LMs; 1D image tokens."""
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
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def threads_option(f):
    """``--threads N`` for the commands that run a model (one definition, one default)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="torch CPU threads [default: $TOKKIT_THREADS, else the free cores: cores minus the "
                             "1-minute load average, at least 1 - torch's all-cores default oversubscribes a shared machine].")(f)


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: :func:`tokkit.config.default_threads`); returns it."""
    import torch

    from tokkit.config import default_threads

    n = threads or default_threads()
    torch.set_num_threads(n)
    logging.getLogger("tokkit").info("torch CPU threads: %d", n)
    return n


def _register() -> None:
    # One line per command module; each module adds its commands to `cli`.
    from tokkit_cli import bytes as _bytes, count, export_cmd, extend, heal, hypernet, image, train, transplant, vocab_cmd  # noqa: F401


_register()


def main() -> None:
    cli(prog_name="tokkit")


if __name__ == "__main__":
    # `python -m tokkit_cli.main`: commands registered on the imported module, not on this __main__ copy
    from tokkit_cli.main import main as _main

    _main()
