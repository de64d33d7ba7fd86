"""Build the legal (licence text) corpora used by tokkit's training tests, docs and measurements.

Two real sources, both fetched by name and pinned version from the package registries
(see ../shared/fixtures/README.md §C):

* committed sample ``data/legal/{train,heldout}.jsonl``: licence texts from npm
  ``spdx-license-list@6.12.0`` (CC0-1.0), one licence per line ``{"id", "text"}``;
* large corpus (not committed): the 2,310 licence texts of PyPI ``licensedcode-data==32.1.0``
  (YAML header stripped), written to ``$OUT/licensedcode_{train,heldout}.jsonl``.

The split is by licence (document): a licence is held out when crc32(id) % 10 == 0.

Usage:
    npm pack spdx-license-list@6.12.0 && tar xzf spdx-license-list-6.12.0.tgz      # -> package/licenses/*.json
    pip download --no-deps licensedcode-data==32.1.0 -d . && unzip -q licensedcode_data-32.1.0-py3-none-any.whl 'licensedcode/data/licenses/*'
    python data/build_legal.py --spdx package/licenses --licensedcode licensedcode/data/licenses --out /tmp/legal
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

TRAIN_BYTES = 300_000
HELDOUT_BYTES = 60_000


def held_out(key: str) -> bool:
    return zlib.crc32(key.encode()) % 10 == 0


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def spdx_sample(folder: Path, out: Path) -> None:
    rows = []
    for p in sorted(folder.glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        if d.get("licenseText", "").strip():
            rows.append({"id": p.stem, "text": d["licenseText"]})
    # deterministic order by hash, so the sample is spread over the alphabet
    rows.sort(key=lambda r: zlib.crc32(("order:" + r["id"]).encode()))
    train, test, nt, nh = [], [], 0, 0
    for r in rows:
        n = len(r["text"].encode("utf-8"))
        if held_out(r["id"]):
            if nh + n <= HELDOUT_BYTES:
                test.append(r)
                nh += n
        elif nt + n <= TRAIN_BYTES:
            train.append(r)
            nt += n
    write(out / "train.jsonl", train)
    write(out / "heldout.jsonl", test)
    print(f"spdx sample: {len(train)} train ({nt} bytes), {len(test)} held-out ({nh} bytes)")


def licensedcode(folder: Path, out: Path) -> None:
    train, test = [], []
    for p in sorted(folder.glob("*.LICENSE")):
        raw = p.read_text(encoding="utf-8")
        text = raw.split("\n---\n", 1)[1] if raw.startswith("---\n") and "\n---\n" in raw else raw
        text = text.lstrip("\n")
        if text.strip():
            (test if held_out(p.stem) else train).append({"id": p.stem, "text": text})
    write(out / "licensedcode_train.jsonl", train)
    write(out / "licensedcode_heldout.jsonl", test)
    sizes = [sum(len(r["text"].encode()) for r in x) for x in (train, test)]
    print(f"licensedcode: {len(train)} train ({sizes[0]} bytes), {len(test)} held-out ({sizes[1]} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spdx", type=Path, help="package/licenses of spdx-license-list@6.12.0")
    ap.add_argument("--licensedcode", type=Path, help="licensedcode/data/licenses of licensedcode-data==32.1.0")
    ap.add_argument("--out", type=Path, default=Path("/tmp/legal"), help="where the large corpus goes")
    ap.add_argument("--sample-out", type=Path, default=Path(__file__).parent / "legal")
    a = ap.parse_args()
    if a.spdx:
        spdx_sample(a.spdx, a.sample_out)
    if a.licensedcode:
        licensedcode(a.licensedcode, a.out)


if __name__ == "__main__":
    main()
