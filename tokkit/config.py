"""One source of defaults for tokkit: where the cache lives, and library-wide constants.

User-written configs (YAML recipes, CLI flags) are pydantic models defined beside the code that
uses them; this module holds only what every package shares. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["tokkit_home", "hub_offline", "peak_rss_mb", "default_threads", "HELLO_WORLD"]

#: The probe text `tokkit vocab` encodes.
HELLO_WORLD = "Hello world"


def tokkit_home() -> Path:
    """The fixture/model cache: ``$TOKKIT_HOME``, else ``$XDG_CACHE_HOME/tokkit``, else ``~/.cache/tokkit``."""
    env = os.environ.get("TOKKIT_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tokkit"


def hub_offline() -> bool:
    """True when the HF hub must not be contacted (``HF_HUB_OFFLINE`` or ``TOKKIT_OFFLINE`` set)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TOKKIT_OFFLINE"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss`` is KB on Linux, bytes on macOS)."""
    import platform
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 1024


def default_threads() -> int:
    """CPU threads for the model commands: ``$TOKKIT_THREADS``, else the cores this process may use
    minus the load others already put on them (1-minute load average), at least 1.

    torch's own default (every core) oversubscribes a shared machine: ``eval-lm`` ran 2-3x slower at
    2 threads than at 1 on a loaded 2-core machine (issue 17).
    """
    env = os.environ.get("TOKKIT_THREADS")
    if env:
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))
