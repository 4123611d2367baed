"""`swag bench`: the engine against a plain reference implementation (reference.py), in
one process, on the same images, network and weights.

Per network (VGG-19, ResNet-50), without and with SWAG smoothing, per size (a square layer):
- ms per evaluation: one loss evaluation with its backward pass to the image, median of
  `--evals` after one warm-up, the engine's and the reference's evaluations taking turns;
- s end to end: the `balanced` preset on a size x size layer (the engine's `stylize`; the
  reference runs the same schedule of sizes and iterations);
- peak memory of an evaluation: on CUDA torch.cuda.max_memory_allocated above what was
  allocated before; on the CPU the growth of the process's resident memory (/proc/self/statm,
  sampled every 2 ms) above its level before, after glibc has returned its free memory to the
  OS (malloc_trim): what the evaluation takes from the OS, Linux only.

`--check` (for a GPU session): the engine's result on CUDA against the same job on the CPU, the
engine's loss against the reference's on CUDA, no NaN, and a 6000x4000 layer through the tiled
path with its peak GPU memory.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import threading
import time
from pathlib import Path

SIZES = {"cuda": (512, 1024, 2048), "cpu": (128, 256)}
NETWORKS = ("vgg19", "resnet50")


def add_command(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time the engine against a plain reference implementation",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cuda or cpu")
    p.add_argument("--sizes", type=int, nargs="+", help="layer sides in px (default 512 1024 2048 on CUDA, "
                                                        "128 256 on the CPU)")
    p.add_argument("--arch", nargs="+", default=list(NETWORKS), help="networks (default vgg19 resnet50)")
    p.add_argument("--evals", type=int, help="timed evaluations per figure (default 10 on CUDA, 5 on the CPU)")
    p.add_argument("--iterations", type=int, help="iterations of the end-to-end job (default the balanced "
                                                  "preset's)")
    p.add_argument("--no-end-to-end", action="store_true", help="only the per-evaluation figures")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default torch's own choice); on a "
                                               "machine shared with other jobs, 1 gives steadier figures")
    p.add_argument("--check", action="store_true", help="GPU correctness check instead of the benchmark")
    p.add_argument("--out", type=Path, help="also write the markdown table to this file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from ..engine.device import pick_device
    from ..errors import SwagError

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device("cuda" if args.check else args.device)
    if args.check:
        if device.type != "cuda":
            raise SwagError("bench --check compares CUDA with the CPU: it needs a CUDA GPU")
        from .check import check

        return check(device)
    sizes = args.sizes or SIZES["cuda" if device.type == "cuda" else "cpu"]
    evals = args.evals or (10 if device.type == "cuda" else 5)
    text = _header(device, torch) + "\n" + _table(device, args.arch, sizes, evals, args.iterations,
                                                  not args.no_end_to_end)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _header(device, torch) -> str:
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else
            f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)")
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") and device.type == "cpu" else ""
    return (f"Device: {name}{load}; torch {torch.__version__}, Python {platform.python_version()}; "
            f"{datetime.date.today().isoformat()}.")


def _table(device, archs, sizes, evals, iterations, end_to_end) -> str:
    from ..options import Options

    iters = iterations or Options.build("balanced").iterations
    e2e = f"s balanced ({iters} it.)"
    rows = [f"| network | SWAG | px | ms/eval engine | ms/eval reference | speed-up | {e2e} engine | "
            f"{e2e} reference | speed-up | peak MB engine | peak MB reference | engine/reference |",
            "|" + " --- |" * 12]
    for arch in archs:
        for smoothing in ("none", "softmax"):
            for size in sizes:
                f = measure(device, arch, smoothing, size, evals, iters if end_to_end else None)
                e2e_cells = (f"{f['e2e']:.1f} | {f['e2e_ref']:.1f} | {f['e2e_ref'] / f['e2e']:.2f}x"
                             if end_to_end else "- | - | -")
                rows.append(f"| {arch} | {'yes' if smoothing == 'softmax' else 'no'} | {size} | "
                            f"{f['ms']:.1f} | {f['ms_ref']:.1f} | {f['ms_ref'] / f['ms']:.2f}x | {e2e_cells} | "
                            f"{f['mb']:.0f} | {f['mb_ref']:.0f} | {_ratio(f['mb'], f['mb_ref'])} |")
                print(rows[-1], flush=True)
    return "\n".join(rows)


def _ratio(mb: float, mb_ref: float) -> str:
    return f"{mb / mb_ref:.2f}" if mb_ref >= 1 else "-"


def measure(device, arch: str, smoothing: str, size: int, evals: int, iterations: int | None) -> dict:
    from ..engine import scales
    from ..engine.networks import architecture
    from ..engine.pipeline import stylize
    from ..imaging import images as im
    from ..options import Options
    from . import reference as ref
    from .inputs import images

    opts = Options.build("balanced", arch=arch, smoothing=smoothing, device=device.type)
    content_image, style_image = images(size)
    content, style = im.to_tensor(content_image), im.style_tensor(style_image)
    engine, reference = _engine_evaluation(opts, device, content, style), _reference_evaluation(opts, device,
                                                                                               content, style)
    out = {}
    out["ms"], out["ms_ref"] = _time_alternately(engine, reference, content, device, evals)
    out["mb"], out["mb_ref"] = _peak_mb(engine, content, device), _peak_mb(reference, content, device)
    del engine, reference
    _release(device)

    if iterations:
        settings = dict(preset="balanced", arch=arch, smoothing=smoothing, device=device.type, iterations=iterations)
        out["e2e"] = _seconds(lambda: stylize(content_image, style_image, **settings), device)
        job = Options.build(**settings)
        schedule = scales.schedule(job, size, size, architecture(arch).min_size)
        with ref.fp32():
            out["e2e_ref"] = _seconds(lambda: ref.run(content, style, job, schedule, device), device)
    return out


def _engine_evaluation(opts, device, content, style):
    """One evaluation of the engine's loss with its backward pass, as stylize() sets it up for
    its last scale, at the full size."""
    from ..engine.device import Precision
    from ..engine.extractors import network_for, network_input
    from ..engine.pipeline import loss_for

    loss = loss_for(opts, *network_for(opts, device))
    with Precision(opts.precision, device):
        loss.set_targets(content.to(device), [(style.to(device), 1.0)])

    def evaluate(x):
        with Precision(opts.precision, device):
            loss(network_input(x))[0].backward()

    return evaluate


def _reference_evaluation(opts, device, content, style):
    """The same evaluation done the plain way (reference.py)."""
    from . import reference as ref

    reference = ref.ReferenceLoss(opts, device)
    with ref.fp32():
        reference.set_targets(content.to(device), style.to(device))

    def evaluate(x):
        with ref.fp32():
            reference(x).backward()

    return evaluate


def _release(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()


def _time_alternately(engine, reference, image, device, evals: int) -> tuple[float, float]:
    """Median ms of an evaluation of each, the two taking turns: on a machine whose speed drifts
    (other jobs, clocks), both sides see the same conditions."""
    x = image.to(device, copy=True).requires_grad_(True)
    times = {engine: [], reference: []}
    for evaluate in times:  # warm-up: cuDNN's algorithm search, allocator growth
        evaluate(x)
    for _ in range(evals):
        for evaluate, seconds in times.items():
            x.grad = None
            _sync(device)
            start = time.perf_counter()
            evaluate(x)
            _sync(device)
            seconds.append(time.perf_counter() - start)
    return statistics.median(times[engine]) * 1000, statistics.median(times[reference]) * 1000


def _peak_mb(evaluate, image, device) -> float:
    """Peak memory of one evaluation above the level before it, in MB."""
    x = image.to(device, copy=True).requires_grad_(True)
    evaluate(x)  # allocator growth happens outside the measured evaluation
    x.grad = None
    _sync(device)
    with _PeakMemory(device) as peak:
        evaluate(x)
        _sync(device)
    return peak.mb


def _seconds(job, device) -> float:
    start = time.perf_counter()
    job()
    _sync(device)
    return time.perf_counter() - start


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _PeakMemory:
    """Peak memory above the level at entry: CUDA's allocator statistics, or on the CPU the
    resident set size sampled by a thread (Linux /proc; elsewhere nan)."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        import torch

        from ..engine import host_memory

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        host_memory.trim()
        self.base = _rss()
        self.peak, self.stop = self.base, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        import torch

        if self.device.type == "cuda":
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
            return
        self.stop.set()
        self.thread.join()
        self.mb = (max(self.peak, _rss()) - self.base) / 2**20


def _rss() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return float("nan")
