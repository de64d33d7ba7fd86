"""One source of defaults for tokkit: where the cache lives, and library-wide constants.

User-written configs (YAML recipes, CLI flags) are pydantic models defined beside the code that
uses them; this module holds only what every package shares. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["SEED_MAX", "tokkit_home", "hub_offline", "peak_rss_mb", "validation_message", "flag_name", "read_yaml", "available_memory", "check_memory", "default_threads", "max_threads", "check_threads", "HELLO_WORLD"]

#: Largest seed any command takes (torch, numpy and Python's random all accept 0..2^63-1).
SEED_MAX = 2**63 - 1

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


def flag_name(field: str) -> str:
    """The CLI flag of a config field: ``vocab_size`` -> ``--vocab-size`` (every command follows this rule)."""
    return "--" + field.replace("_", "-")


def validation_message(err: Exception, *, label: str, flags: "Mapping[str, str] | None" = None,
                       known: "Iterable[str]" = ()) -> str:
    """One line for a pydantic ``ValidationError``: which value, what was found, what is allowed.

    A field the user gave as a CLI flag is named by that flag (``flags``: field -> flag); other fields
    by ``label: field``. A model validator that concerns one field starts its message with the field
    name and a colon (``"vocab_size: ..."``) so it is named the same way. pydantic's URLs are left out.
    """
    flags = dict(flags or {})
    parts = []
    for e in err.errors():  # type: ignore[attr-defined]
        loc = [str(x) for x in e.get("loc", ())]
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        value = e.get("input")
        if not loc:
            head, sep, rest = msg.partition(": ")
            if sep and head.isidentifier():
                loc, msg = [head], rest
                value = value.get(head) if isinstance(value, Mapping) else value
        field = loc[0] if loc else ""
        if field in flags and len(loc) == 1:
            shown = f"{flags[field]} {value!r}" if e.get("type") != "missing" else flags[field]
        else:
            shown = (f"{label}: {'.'.join(loc)}" + (f" = {value!r}" if not isinstance(value, dict)
                                                     and e.get("type") != "missing" else "")) if loc else label
        parts.append(f"{shown}: {msg}")
    line = "; ".join(parts)
    if known and any(e.get("type") == "extra_forbidden" for e in err.errors()):  # type: ignore[attr-defined]
        line += f". Known keys: {', '.join(known)}"
    return line


#: Largest YAML file read (recipes are a few hundred bytes), and most nodes its aliases may expand to.
YAML_MAX_BYTES = 1 << 20
YAML_MAX_NODES = 10_000


def _expanded_nodes(node: Any, memo: dict[int, int], stack: set[int]) -> int:
    """Nodes the document holds once every alias is expanded (shared nodes counted at each use)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:  # a recursive alias: infinite once expanded
        return YAML_MAX_NODES + 1
    stack.add(key)
    n = 1
    value = node.value
    if isinstance(value, list):
        for item in value:
            for sub in (item if isinstance(item, tuple) else (item,)):
                n += _expanded_nodes(sub, memo, stack)
                if n > YAML_MAX_NODES:
                    break
    stack.discard(key)
    memo[key] = n
    return n


def _plain_yaml_defect(root: Any, label: str) -> str | None:
    """What the plain-YAML rules refuse in the composed document ``root`` (a ``yaml.Node``), as one message, else None.

    Checked on the nodes, before anything is constructed: first a tag that is no plain YAML type
    (``!!python/object/apply:os.system``: the safe loader would refuse it as a bare "could not determine a
    constructor"); then a scalar that its explicit tag cannot read (``!!int abc``), and a key written twice in one
    mapping, at any depth. Keys are compared as read, so ``1`` and ``1.0`` are one key, as they are in the dict
    YAML builds (which keeps the last silently). ``<<`` merge keys are not keys: a key that overrides a merged one
    is fine. Each node is visited once, so aliases (a recursive one too) cost nothing more.
    """
    import yaml

    known = set(yaml.SafeLoader.yaml_constructors)
    merge = "tag:yaml.org,2002:merge"
    nodes, stack, seen, merge_keys = [], [root], set(), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        if isinstance(node, yaml.MappingNode):
            merge_keys.update(id(k) for k, _ in node.value if k.tag == merge)
            stack += [n for kv in reversed(node.value) for n in reversed(kv)]
        elif isinstance(node, yaml.SequenceNode):
            stack += reversed(node.value)

    def at(n: Any) -> str:
        return f"line {n.start_mark.line + 1}, column {n.start_mark.column + 1}"

    for n in nodes:  # file order
        if n.tag not in known and id(n) not in merge_keys:
            tag = n.tag.replace("tag:yaml.org,2002:", "!!")
            if "python/" in n.tag:
                return (f"{label}: the tag {tag} at {at(n)} constructs a Python object; tags that construct Python "
                        "objects are not allowed (plain YAML only: mappings, lists, strings, numbers, booleans): "
                        "remove the tag and write the value")
            return (f"{label}: the tag {tag} at {at(n)} is not a plain YAML type (plain YAML only: mappings, lists, "
                    "strings, numbers, booleans): remove the tag")
    scalars = yaml.SafeLoader("")  # builds single scalars: every tag is known to be plain by now
    try:
        read: dict[int, Any] = {}
        for n in nodes:
            if isinstance(n, yaml.ScalarNode) and id(n) not in merge_keys:
                try:
                    read[id(n)] = scalars.construct_object(n)
                except (ValueError, TypeError, OverflowError, yaml.YAMLError) as e:
                    tag = n.tag.replace("tag:yaml.org,2002:", "!!")
                    return (f"{label}: the value {n.value!r:.40} at {at(n)} is not a valid {tag} "
                            f"({getattr(e, 'problem', None) or e}): fix the value or remove the tag")
        twice: list[tuple[int, int, str]] = []
        for n in nodes:
            if not isinstance(n, yaml.MappingNode):
                continue
            first: dict[Any, Any] = {}
            for i, (k, _) in enumerate(n.value):
                if id(k) not in read:  # a merge key, or a mapping/list as key (the loader refuses that itself)
                    continue
                try:
                    j, prev = first.setdefault(read[id(k)], (i, k))
                except TypeError:  # unhashable as read: the loader names it
                    continue
                if j != i:  # (an alias used as a key twice is one node written twice: compared by place)
                    line, prev_line = k.start_mark.line + 1, prev.start_mark.line + 1
                    same = (f"key {k.value!r:.40} appears twice in one mapping" if k.value == prev.value else
                            f"keys {prev.value!r:.40} and {k.value!r:.40} are one key once read")
                    twice.append((line, k.start_mark.column, f"{label}: {same} (line {prev_line} and line {line}); "
                                  "YAML would keep only the last: remove one of them"))
    finally:
        scalars.dispose()
    return min(twice)[2] if twice else None


def read_yaml(path: Path, what: str = "recipe") -> Any:
    """``path`` parsed as YAML (safe loader): a syntax error, a non-UTF-8 file, a file that is not regular or
    over :data:`YAML_MAX_BYTES`, or aliases that expand past :data:`YAML_MAX_NODES` nodes (a "billion laughs"
    bomb) is a one-line :class:`~tokkit.errors.FormatError`; non-finite numbers (``.nan``, ``.inf``) are refused.

    Plain YAML only, each key once: a tag that would construct a Python object (or any tag the safe loader does
    not read), a value its tag cannot read, and a key written twice in one mapping (at any depth; YAML would keep
    the last silently) are refused with their line, before anything is constructed (:func:`_plain_yaml_defect`).
    Anchors, aliases and ``<<`` merge keys work as in YAML. Every recipe loader (train, image, prior) reads here."""
    import yaml

    from tokkit.errors import FormatError
    from tokkit.input_files import read_input_bytes

    raw = read_input_bytes(path, what=what, expected=f"a {what} is a small YAML file: pass the right file",
                           max_bytes=YAML_MAX_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{what} {path} is not UTF-8 text (byte offset {e.start}); save it as UTF-8 YAML") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_nodes(node, {}, set()) > YAML_MAX_NODES:
                raise FormatError(f"{what} {path} expands to more than {YAML_MAX_NODES:,} values through its anchors "
                                  "and aliases (&name / *name); a recipe needs few: write the values out")
            defect = _plain_yaml_defect(node, f"{what} {path}")
            if defect is not None:
                raise FormatError(defect)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
        bad = _non_finite(data)
        if bad is not None:
            raise FormatError(f"{what} {path}: {bad} is not a finite number; pass a finite value")
        return data
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FormatError(f"{what} {path} is not valid YAML{where}: {problem}; fix the syntax there") from None


def _non_finite(data: Any, where: str = "") -> str | None:
    """The key path of the first NaN/inf float inside parsed YAML, or None."""
    import math

    if isinstance(data, float) and not math.isfinite(data):
        return f"{where or 'the value'} = {data}"
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def available_memory() -> int | None:
    """Bytes of RAM free for a new allocation (``MemAvailable``; None where the OS does not say)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: float, *, what: str, fix: str) -> None:
    """Refuse work whose estimated peak (bytes) cannot fit in free RAM, before it starts, showing the estimate."""
    from tokkit.errors import ResourceError

    free = available_memory()
    if free is not None and estimate > free:
        raise ResourceError(f"{what} needs about {estimate / 2**30:,.1f} GiB of memory but {free / 2**30:,.1f} GiB is "
                            f"free; {fix}")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def max_threads() -> int:
    """The most CPU threads any option may ask for: 4 x the cores this process may use (more only thrashes,
    and native thread pools crash on absurd counts: ``--threads 99999`` segfaulted torch)."""
    return 4 * _cores()


def check_threads(n: object, *, name: str = "--threads") -> int:
    """``n`` as a thread count in 1..:func:`max_threads`, else a one-line :class:`~tokkit.errors.ResourceError`."""
    from tokkit.errors import ResourceError

    hi = max_threads()
    try:
        v = int(str(n).strip())
    except ValueError:
        raise ResourceError(f"{name} {n!r} is not a whole number; expected 1..{hi} (4 x the {_cores()} cores)") from None
    if not 1 <= v <= hi:
        raise ResourceError(f"{name} {v} is out of range: expected 1..{hi} (4 x the {_cores()} cores this process may use)")
    return v


def default_threads() -> int:
    """CPU threads for the model commands: ``$TOKKIT_THREADS`` (1..:func:`max_threads`), else the cores this
    process may use minus the load others already put on them (1-minute load average), at least 1.

    torch's own default (every core) oversubscribes a shared machine: ``eval-lm`` ran 2-3x slower at
    2 threads than at 1 on a loaded 2-core machine (issue 17).
    """
    env = os.environ.get("TOKKIT_THREADS")
    if env:
        return check_threads(env, name="TOKKIT_THREADS")
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))
