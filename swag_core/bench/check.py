"""`swag bench --check`: is the engine right on a CUDA GPU? Prints each check and its figures;
exit status 1 when one fails.

- the same small job on CUDA (fp32, TF32 and bf16) and on the CPU gives the same image within a
  tolerance, with no NaN;
- on CUDA the engine's loss and the plain reference's agree (reference.py);
- a 6000x4000 layer at full resolution goes through the tiled path within 16 GB of GPU memory.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..engine.device import Precision
from ..engine.extractors import network_for
from ..engine.pipeline import loss_for, stylize
from ..imaging import images as im
from ..options import Options
from . import reference as ref
from .inputs import images

# Mean absolute difference per channel value (0..255) between the CUDA and the CPU result.
TOLERANCE = {"fp32": 2.0, "auto": 4.0, "bf16": 8.0}


def check(device: torch.device) -> int:
    print(f"GPU check on {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    failures = []

    def report(name: str, ok: bool, detail: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            failures.append(name)

    content, style = images(192)
    for arch in ("resnet50", "vgg19"):
        job = dict(arch=arch, size=192, iterations=20, min_scale=128, seed=0)
        on_cpu = np.asarray(stylize(content, style, device="cpu", precision="fp32", **job), dtype=float)
        for precision, tolerance in TOLERANCE.items():
            on_gpu = np.asarray(stylize(content, style, device="cuda", precision=precision, **job), dtype=float)
            diff = float(np.abs(on_gpu - on_cpu).mean())
            report(f"{arch} {precision}: CUDA result = CPU result", np.isfinite(on_gpu).all() and diff <= tolerance,
                   f"mean |difference| {diff:.2f} of 255 (tolerance {tolerance})")

        opts = Options.build(arch=arch, device="cuda")
        c, s = im.to_tensor(content).to(device), im.to_tensor(style).to(device)
        engine = loss_for(opts, *network_for(opts, device))
        reference = ref.ReferenceLoss(opts, device)
        x = torch.rand(c.shape, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad(), Precision("fp32", device):
            engine.set_targets(c, [(s, 1.0)])
            reference.set_targets(c, s)
            le, lr = float(engine(x)[0]), float(reference(x))
        report(f"{arch}: engine loss = reference loss on CUDA", np.isfinite(le) and abs(le - lr) <= 1e-3 * abs(lr),
               f"{le:.6f} vs {lr:.6f}")

    big, _ = images(512)
    big = big.resize((6000, 4000))
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = stylize(big, style, device="cuda", size=6000, min_scale=1500, iterations=30, tile_size=1024)
    seconds, peak = time.perf_counter() - start, torch.cuda.max_memory_allocated(device) / 2**30
    report("6000x4000 layer at full resolution, 1024 px tiles", result.size == (6000, 4000) and peak <= 16,
           f"{seconds:.1f} s, peak GPU memory {peak:.1f} GiB (limit 16)")
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed", flush=True)
    return 1 if failures else 0

