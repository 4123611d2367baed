"""Where a job computes and at what precision: the device a setting names, and the precision
switches that hold while a job runs."""

from __future__ import annotations

import contextlib

import torch

from ..errors import SwagError


def pick_device(name: str) -> torch.device:
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "gpu":
        if not (cuda or mps):
            raise SwagError("no GPU is usable by PyTorch here (no CUDA or MPS device); use device cpu")
        return torch.device("cuda" if cuda else "mps")
    if name == "cuda" and not cuda:
        raise SwagError(f"CUDA is not available to PyTorch {torch.__version__} here (no NVIDIA driver, "
                        "or a CPU-only build of torch); use device cpu or auto")
    if name == "mps" and not mps:
        raise SwagError("Apple's MPS device is not available here; use device cpu or auto")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where oneDNN runs bf16
    convolutions about twice as fast as fp32 ones; elsewhere it emulates them, slower than fp32.
    torch's own checks, which are private: a torch without them counts as no."""
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check is not None and check() for check in checks)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether a job at `precision` on `device` runs its network under bf16 autocast: `bf16`
    asked for, or `auto` on a CPU with native bf16. On CUDA `auto` keeps fp32 storage with TF32
    (`Precision`): bf16 there is not measured on the quality benchmark yet, so it stays a choice."""
    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cpu" and cpu_has_bf16()


def allows_tf32(precision: str, device: torch.device) -> bool:
    """Whether fp32 matmuls and convolutions may run in TF32 (`Precision`)."""
    return precision in ("auto", "bf16") and device.type == "cuda"


def network_precision(precision: str, device: torch.device) -> str:
    """What the network computes in at `precision` on `device`, for people: bf16, TF32 or fp32."""
    if uses_bf16(precision, device):
        return "bf16"
    return "TF32" if allows_tf32(precision, device) else "fp32"


def check_precision(precision: str, device: torch.device) -> None:
    """A one-line error for a precision the device cannot run usefully."""
    if precision != "bf16" or device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        return
    where = "this CPU has no bf16 instructions (AVX512-BF16 or AMX)" if device.type == "cpu" \
        else f"this job would run on {device.type}"
    raise SwagError(f"precision bf16 needs a CUDA GPU or a CPU with bf16 instructions ({where}); "
                    "use precision auto or fp32")


class Precision:
    """`auto`: on CUDA, matmuls and convolutions may use TF32 (fp32 storage, ~3x faster on
    Ampere and newer); on a CPU with native bf16 (`cpu_has_bf16`), the network runs under bf16
    autocast, as `bf16` does. `fp32` forbids both. `bf16` runs the network under bf16 autocast
    (CUDA, or a CPU with native bf16: `check_precision`), TF32 for the rest on CUDA. Under
    autocast the statistics, the smoothing, the sorted projections and the nearest-patch search
    stay in fp32 (losses.py): only the network's convolutions run in bf16. On a CPU with
    AVX512-BF16 that made a `balanced` job's network pass and its backward about twice as fast
    at the same quality on the benchmark (docs/performance.md). MPS computes in fp32. On CUDA,
    cuDNN picks the fastest convolution for each image size."""

    def __init__(self, precision: str, device: torch.device):
        self.allow = allows_tf32(precision, device)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if uses_bf16(precision, device) \
            else contextlib.nullcontext()
        self.benchmark = device.type == "cuda"

    def __enter__(self):
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                      torch.backends.cudnn.benchmark)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.allow
        torch.backends.cudnn.benchmark = self.benchmark or self.saved[2]
        self.autocast.__enter__()

    def __exit__(self, *exc):
        self.autocast.__exit__(*exc)
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = self.saved
