"""The one-line cost summary long commands end with: the work done, wall time, peak memory.

Written to stderr, so that ``--json -`` / ``--csv -`` output on stdout stays machine-readable; the
training commands print the same figures in their summary screen.
"""

from __future__ import annotations

import time

import click

from tokkit.config import peak_rss_mb

__all__ = ["Cost"]


class Cost:
    """Start the clock at construction; ``done("N bytes")`` prints ``cost: N bytes in 1.2 s; peak memory 80 MB``."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.t0

    def done(self, work: str) -> None:
        secs = time.perf_counter() - self.t0
        click.echo(f"cost: {work} in {secs:.1f} s; peak memory {peak_rss_mb():.0f} MB", err=True)
