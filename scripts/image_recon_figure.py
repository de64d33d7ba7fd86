"""Reconstruction grid for docs/image.md: held-out originals, then each checkpoint's decode at several k.

    python scripts/image_recon_figure.py --images /tmp/imgdata/icons/heldout --n 10 \
        --model nested_dual=ckpt_dual --model none=ckpt_none --ks 1,4,8,16,31,32 -o docs/image-recon.png

Images are the first ``n`` files of the folder in sorted order, after a seeded shuffle (``--seed``).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, help="LABEL=CHECKPOINT, repeatable")
    ap.add_argument("--ks", default="1,4,8,32")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tokkit.image import ImageTokenizer, load_images
    from tokkit.image.data import image_files

    files = image_files(args.images)
    random.Random(args.seed).shuffle(files)
    files = sorted(files[: args.n])
    ks = [int(k) for k in args.ks.split(",")]
    rows = []
    for spec in args.model:
        label, path = spec.split("=", 1)
        tok = ImageTokenizer.load(path)
        x = load_images(files, size=tok.config.image_size)
        ids = tok.tokenize(x)
        rows.append(("held-out original", x))
        for k in ks:
            rows.append((f"{label} k={k}", tok.detokenize([t[:k] for t in ids])))
    seen, uniq = set(), []
    for label, imgs in rows:  # the originals row once
        if label not in seen:
            seen.add(label)
            uniq.append((label, imgs))
    fig, axes = plt.subplots(len(uniq), len(files), figsize=(len(files) * 0.9, len(uniq) * 0.95))
    for r, (label, imgs) in enumerate(uniq):
        for c in range(len(files)):
            ax = axes[r][c]
            ax.imshow(imgs[c].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(uniq)} rows x {len(files)} images")


if __name__ == "__main__":
    main()
