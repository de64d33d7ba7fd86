"""What a `tokkit heal` step holds in memory: weights, gradients, AdamW moments, saved activations, peak RSS.

Runs `tokkit heal` in this process with two probes: the bytes autograd saves for the backward during
the student's step (unique storages, parameters excluded; ``torch.autograd.graph.saved_tensors_hooks``)
and the peak resident size (``VmHWM``). The weight, gradient and moment sizes are counted from the
models. Linux only (``/proc``). Example (docs/heal.md, "Memory")::

    python benchmarks/heal_memory.py /tmp/sm-mi data/heldout/gnome_help_de_net.txt -- \\
        --loss alm --train all --lr 1e-3 --steps 4 --heldout 0 --threads 1 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def _hwm_gib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a transplanted/extended model folder")
    ap.add_argument("source", help="training text")
    ap.add_argument("heal_args", nargs=argparse.REMAINDER, help="-- then tokkit heal options")
    a = ap.parse_args()
    import torch

    import tokkit.transplant.heal.trainer as tr
    from tokkit_cli.main import cli

    sizes: dict[str, float] = {}
    real_train = tr.train_rows

    def train_rows(cfg, student, *args, teacher=None, **kw):
        params = student.trainable()
        n_student = sum(p.numel() for p in {id(p): p for p in student.parameters()}.values())
        n_train = sum(p.numel() for p in params.values())
        sizes.update({"student weights": 4 * n_student, "teacher weights": 4 * sum(p.numel() for p in teacher.parameters())
                      if teacher is not None else 0, "gradients": 4 * n_train, "AdamW moments": 8 * n_train})
        return real_train(cfg, student, *args, teacher=teacher, **kw)

    tr.train_rows = train_rows
    real_step = tr._step_loss

    def step_loss(*args, **kw):
        seen, total = set(), [0]

        def pack(t):
            st = t.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                if not (t.requires_grad and t.is_leaf):
                    total[0] += st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = real_step(*args, **kw)
        print(f"step: student batch {tuple(args[2].input.shape)}, activations kept for the backward "
              f"{total[0] / 2**30:.2f} GiB; peak RSS so far {_hwm_gib():.2f} GiB", file=sys.stderr, flush=True)
        return out

    tr._step_loss = step_loss
    extra = [x for x in a.heal_args if x != "--"]
    with tempfile.TemporaryDirectory() as d:
        try:
            cli.main(["heal", a.model, a.source, "-o", str(Path(d) / "healed"), *extra], standalone_mode=False)
        finally:
            for k, v in sizes.items():
                print(f"{k:<16} {v / 2**30:6.2f} GiB")
            print(f"{'peak RSS':<16} {_hwm_gib():6.2f} GiB")


if __name__ == "__main__":
    main()
