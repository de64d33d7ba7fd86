"""Images per second: tokkit image tokenize / detokenize at batch 1 and 64 on CPU, beside Pillow JPEG/WebP.

    python benchmarks/image_speed.py --model CKPT --images DIR [--threads 2] [--repeats 3]

Without --model a randomly initialised model of the `small` recipe is timed (speed does not depend
on the weights). Prints one line per operation and the ratio to Pillow's JPEG (q=50) encode/decode
of the same images; the codecs are the peer, not a quality claim.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import torch


def _rate(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_images / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "image" / "icons")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from PIL import Image

    from tokkit.image import ImageTokenizer, Tokenizer1D, load_images, load_recipe
    from tokkit.image.data import image_files

    if args.model is None:
        torch.manual_seed(0)
        tok = ImageTokenizer(Tokenizer1D(load_recipe("small").model), model_id="0" * 16)
    else:
        tok = ImageTokenizer.load(args.model)
    S = tok.config.image_size
    files = image_files(args.images)
    x = load_images((files * (64 // len(files) + 1))[:64], size=S)
    ids = tok.tokenize(x)
    arrs = [(im.permute(1, 2, 0) * 255).round().byte().numpy() for im in x]
    print(f"model: {S}px, N={tok.config.max_tokens}, K={tok.config.codebook_size}, "
          f"{sum(p.numel() for p in tok.model.parameters()) / 1e6:.2f} M params; torch threads {args.threads}")

    def codec(fmt: str, **kw):
        blobs = []
        for a in arrs:
            b = io.BytesIO()
            Image.fromarray(a).save(b, format=fmt, **kw)
            blobs.append(b.getvalue())
        return blobs

    jpeg_blobs = codec("JPEG", quality=50)
    jpeg_enc = _rate(lambda: codec("JPEG", quality=50), 64, args.repeats)
    jpeg_dec = _rate(lambda: [Image.open(io.BytesIO(b)).load() for b in jpeg_blobs], 64, args.repeats)
    webp_enc = _rate(lambda: codec("WEBP", quality=50, method=6), 64, args.repeats)
    print(f"{'pillow jpeg q50 encode':34s} {jpeg_enc:10.1f} img/s")
    print(f"{'pillow jpeg q50 decode':34s} {jpeg_dec:10.1f} img/s")
    print(f"{'pillow webp q50 m6 encode':34s} {webp_enc:10.1f} img/s")
    for batch in (1, 64):
        xb, lb = x[:batch], ids[:batch]
        n = 64
        tok_rate = _rate(lambda: [tok.tokenize(x[i:i + batch]) for i in range(0, n, batch)], n, args.repeats)
        full = _rate(lambda: [tok.detokenize(ids[i:i + batch]) for i in range(0, n, batch)], n, args.repeats)
        k4 = _rate(lambda: [tok.detokenize([t[:4] for t in ids[i:i + batch]]) for i in range(0, n, batch)], n, args.repeats)
        del xb, lb
        print(f"{'tokenize batch ' + str(batch):34s} {tok_rate:10.1f} img/s  ({tok_rate / jpeg_enc:.3f}x jpeg encode)")
        print(f"{'detokenize k=N batch ' + str(batch):34s} {full:10.1f} img/s  ({full / jpeg_dec:.3f}x jpeg decode)")
        print(f"{'detokenize k=4 batch ' + str(batch):34s} {k4:10.1f} img/s  ({k4 / jpeg_dec:.3f}x jpeg decode)")


if __name__ == "__main__":
    main()
