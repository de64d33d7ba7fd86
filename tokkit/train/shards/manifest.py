"""``manifest.json``: what a folder of token shards holds, written last by ``tokkit encode``.

It records the tokenizer (name, backend, vocabulary size, sha256 of its file or, for an encoding
without a file, of its vocabulary), the format and dtype, the ids added to every document
(BOS/EOS) and how special-token strings inside the text were treated, the corpus counts
(documents, tokens, UTF-8 bytes of text, documents skipped), the sources, and every shard with its
counts, the input pieces it was made from and the size and sha256 of each of its files. It holds no
time, host or worker count: the same corpus and settings give the same bytes on any engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokkit.errors import FormatError, MissingFileError

__all__ = ["Manifest", "MANIFEST", "VERSION", "STATE_DIR"]

MANIFEST = "manifest.json"
VERSION = 1
#: Hidden folder of a run's plan and its shards' done-markers (removed once manifest.json is written).
STATE_DIR = ".tokkit-encode"


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of a token-shard folder (``data`` is the JSON object itself; ``run``: facts
    of the run that returned it — engine, workers, shards found done — which the file leaves out)."""

    folder: Path
    data: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def format(self) -> str:
        return self.data["format"]

    @property
    def dtype(self) -> str:
        return self.data["dtype"]

    @property
    def documents(self) -> int:
        return self.data["counts"]["documents"]

    @property
    def tokens(self) -> int:
        return self.data["counts"]["tokens"]

    @property
    def bytes(self) -> int:
        """UTF-8 bytes of the documents' text."""
        return self.data["counts"]["bytes"]

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self.data["shards"]

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.data["tokenizer"]

    @property
    def special_tokens(self) -> dict[str, Any]:
        return self.data["special_tokens"]

    def files(self) -> list[Path]:
        """Every shard file, shard by shard, in the format's order."""
        return [self.folder / f["name"] for s in self.shards for f in s["files"]]

    def to_bytes(self) -> bytes:
        return (json.dumps(self.data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def read(cls, folder: str | Path) -> "Manifest":
        """Read ``folder/manifest.json``.

        Raises:
            MissingFileError: no manifest (not a token-shard folder, or an encode that has not finished).
            FormatError: a manifest tokkit cannot read.
        """
        p = Path(folder) / MANIFEST
        if not p.is_file():
            hint = (" (an interrupted `tokkit encode`: finish it with --resume)" if (Path(folder) / STATE_DIR).is_dir()
                    else "")
            raise MissingFileError(f"{folder} has no {MANIFEST}{hint}; expected a folder written by `tokkit encode`")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"{p} is not valid JSON ({e}); write the folder again with `tokkit encode`") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or "shards" not in data:
            raise FormatError(f"{p} is not a tokkit token-shard manifest of version {VERSION}; "
                              "write the folder again with this tokkit's `tokkit encode`")
        return cls(Path(folder), data)
