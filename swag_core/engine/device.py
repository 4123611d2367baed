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


class Precision:
    """`auto` lets CUDA matmuls and convolutions use TF32 (fp32 storage, ~3x faster on Ampere and
    newer); `fp32` forbids it; `bf16` (CUDA only) runs the network under bf16 autocast, TF32
    for the rest, with the Gram matrices and the smoothing in fp32 (losses.py). CPU and MPS
    compute in fp32. On CUDA, cuDNN picks the fastest convolution for each image size."""

    def __init__(self, precision: str, device: torch.device):
        cuda = device.type == "cuda"
        self.allow = precision in ("auto", "bf16") and cuda
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" and cuda \
            else contextlib.nullcontext()
        self.benchmark = cuda

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
