"""Check tokkit's TiTok / One-D-Piece port against the official code, layer for layer, on real images.

The official code is *not* part of tokkit: pass a checkout of bytedance/1d-tokenizer (or turingmotors/One-D-Piece)
with ``--official``; it needs ``einops`` and ``omegaconf`` (and ``accelerate``, a tokkit dependency). For each
preset the script builds the official model from the official code with seeded random weights (its own
initialisation, then every tensor perturbed by 0.02·N(0, 1) so that biases and norms are not trivially 0/1),
writes its state dict with the official ``config.json`` into a folder, loads that folder through tokkit's
checkpoint loader (:func:`tokkit.image.checkpoint.load_titok`: names/shapes checked, config parsed) and compares,
in fp32 on the CPU:

* encoder tokens (VQ ids): exact; the pre-quantisation encoder output: max abs difference;
* decoder: proxy-code logits (two-stage models), pixels, and pixels from prefixes (One-D-Piece): max abs difference.

``--record-names FILE`` instead writes the official state-dict names and shapes of every preset (built on the meta
device) — the data ``tests/test_image_published.py`` checks tokkit's port against. Examples::

    python scripts/image_parity.py --official ~/1d-tokenizer --preset titok-s-128 --images data/image/originals/*.png
    python scripts/image_parity.py --official ~/One-D-Piece --preset one-d-piece-s-256 --images a.png b.png
    python scripts/image_parity.py --official ~/1d-tokenizer --record-names names_titok.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from tokkit.image.data import load_images
from tokkit.image.checkpoint import load_titok
from tokkit.image.published import PRESETS, compact_names, names_digest, official_config

COMPACT = ("titok-s-128", "titok-bl-64-vq", "titok-bl-64-vae", "one-d-piece-s-256")


def import_official(repo: Path, family: str):
    """The official model class, imported from ``repo`` with its training-loss modules stubbed out."""
    sys.path.insert(0, str(repo))
    stub = types.ModuleType("modeling.modules.losses")  # losses pull perceptual nets and diffusion code
    for name in ("ReconstructionLoss_Stage1", "ReconstructionLoss_Stage2", "ReconstructionLoss_Single_Stage",
                 "MLMLoss", "ARLoss"):
        setattr(stub, name, None)
    sys.modules["modeling.modules.losses"] = stub
    if family == "one_d_piece":
        from modeling.one_d_piece import OneDPiece  # type: ignore[import-not-found]

        return OneDPiece
    from modeling.titok import TiTok  # type: ignore[import-not-found]

    return TiTok


def record_names(cls_for, out: Path) -> None:
    from omegaconf import OmegaConf

    data = {}
    for name, preset in PRESETS.items():
        cls = cls_for(preset.config.family)
        if cls is None:
            continue
        with torch.device("meta"):
            model = cls(OmegaConf.create(official_config(preset.config)))
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        entry = {"hub_id": preset.hub_id, "tensors": len(shapes), "sha256": names_digest(shapes),
                 "layers": {p: len({k.split('.')[2] for k in shapes if k.startswith(p + ".transformer.")})
                            for p in ("encoder", "decoder")}}
        if name in COMPACT:
            entry["names"] = compact_names(shapes)
        data[name] = entry
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}: {len(data)} presets")


def save_streamed(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write a safetensors file tensor by tensor (``save_file`` holds a second copy of a 2.6 GB model in memory)."""
    header, offset = {}, 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for v in state.values():
            f.write(v.detach().float().contiguous().numpy().tobytes())


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


@torch.no_grad()
def parity(cls, preset_name: str, images: torch.Tensor, seed: int, ks: list[int]) -> dict:
    from omegaconf import OmegaConf

    preset = PRESETS[preset_name]
    cfg = preset.config
    conf = official_config(cfg)
    torch.manual_seed(seed)
    t0 = time.time()
    official = cls(OmegaConf.create(conf))
    g = torch.Generator().manual_seed(seed + 1)
    for t in official.state_dict().values():
        t.add_(0.02 * torch.randn(t.shape, generator=g))
    official.eval()
    row: dict = {"preset": preset_name, "params_M": round(sum(p.numel() for p in official.parameters()) / 1e6, 1),
                 "images": images.shape[0]}
    ref: dict = {}
    if cfg.quantizer == "vq":
        z_q, rd = official.encode(images)
        ref["ids"] = rd["min_encoding_indices"].reshape(images.shape[0], -1)
        ref["z"] = official.encoder(pixel_values=images, latent_tokens=official.latent_tokens)  # (B, C, 1, N)
        if cfg.legacy:
            ref["logits"] = official.decoder(z_q)
        ref["pixels"] = official.decode(z_q)
        for k in ks:
            ref[f"pixels_k{k}"] = official.decode_tokens(ref["ids"], length=k)
    else:
        post = official.encode(images)[1]
        ref["z"] = post.mean
        ref["pixels"] = official.decode(post.mean)
    with tempfile.TemporaryDirectory() as tmp:
        save_streamed(official.state_dict(), Path(tmp, "model.safetensors"))
        Path(tmp, "config.json").write_text(json.dumps(conf))
        del official
        port, _ = load_titok(tmp)
    z = port.encode_latents(images)  # (B, N, C')
    if cfg.quantizer == "vq":
        codes, ids, _ = port.encode(images)
        row["tokens_equal"] = bool(torch.equal(ids, ref["ids"]))
        row["tokens"] = int(ids.numel())
        row["encoder_out_max_abs"] = max_diff(z, ref["z"].flatten(2).transpose(1, 2))
        if cfg.legacy:
            row["logits_max_abs"] = max_diff(port.decode_logits(codes), ref["logits"])
            row["logits_abs_max"] = float(ref["logits"].abs().max())
        row["pixels_max_abs"] = max_diff(port.decode_codes(codes), ref["pixels"])
        for k in ks:
            row[f"pixels_k{k}_max_abs"] = max_diff(port.decode_ids(ids[:, :k]), ref[f"pixels_k{k}"])
    else:
        mean, _, _ = port.encode(images)
        row["latent_mean_max_abs"] = max_diff(mean, ref["z"].flatten(2).transpose(1, 2))
        row["pixels_max_abs"] = max_diff(port.decode_codes(mean), ref["pixels"])
    row["pixels_abs_max"] = float(ref["pixels"].abs().max())
    row["seconds"] = round(time.time() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", type=Path, required=True, help="checkout of bytedance/1d-tokenizer or One-D-Piece")
    ap.add_argument("--preset", action="append", default=[], choices=list(PRESETS))
    ap.add_argument("--images", nargs="*", type=Path, default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, action="append", default=[], help="prefix lengths to decode (One-D-Piece)")
    ap.add_argument("--json", type=Path, default=None, help="append the result rows (JSON lines) here")
    ap.add_argument("--record-names", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    is_odp = (args.official / "modeling" / "one_d_piece.py").is_file()
    cls = import_official(args.official, "one_d_piece" if is_odp else "titok")
    if args.record_names:
        record_names(lambda fam: cls if (fam == "one_d_piece") == is_odp else None, args.record_names)
        return
    for name in args.preset:
        cfg = PRESETS[name].config
        if (cfg.family == "one_d_piece") != is_odp:
            raise SystemExit(f"{name} needs the {'One-D-Piece' if cfg.family == 'one_d_piece' else '1d-tokenizer'} code")
        x = load_images(args.images, size=cfg.image_size)
        row = parity(cls, name, x, args.seed, args.k if cfg.family == "one_d_piece" else [])
        row["torch"] = torch.__version__
        print(json.dumps(row))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
