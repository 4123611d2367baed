"""The feature extractor a job asks for, loaded once and kept warm between jobs."""

from __future__ import annotations

import os

import torch

from ..options import Options
from .cache import RecentCache
from .networks import Architecture, FeatureExtractor
from .weights import load_model

# Feature extractors kept warm, keyed by everything that changes the network (`network_key`).
MODELS = RecentCache(capacity=2)


def network_for(opts: Options, device: torch.device) -> tuple[Architecture, FeatureExtractor]:
    """The feature extractor that `opts` asks for, on `device`, from `MODELS` or loaded."""
    return MODELS.get(network_key(opts, device), lambda: _load_extractor(opts, device))


def network_key(opts: Options, device: torch.device) -> tuple:
    return (opts.arch, opts.weights, _weights_stamp(opts.weights), opts.seed, opts.pooling, opts.content_layer,
            str(device))


def content_layer_of(opts: Options, arch: Architecture) -> str:
    return opts.content_layer or arch.content_layer


def _load_extractor(opts: Options, device: torch.device) -> tuple[Architecture, FeatureExtractor]:
    arch, model = load_model(opts.arch, opts.weights, opts.seed)
    layers = tuple(dict.fromkeys(arch.style_layers + (content_layer_of(opts, arch),)))
    extractor = FeatureExtractor(arch, model, layers, opts.pooling).to(device)
    if device.type == "cuda":
        # cuDNN's NHWC convolutions are faster on tensor cores; the image is converted to match
        # (`network_input`).
        extractor = extractor.to(memory_format=torch.channels_last)
    return arch, extractor


def network_input(x: torch.Tensor) -> torch.Tensor:
    """`x` in the memory layout of the extractor on its device (`_load_extractor`). Applied inside
    the loss closure: torch's L-BFGS flattens gradients with view(-1), so the optimised parameter
    itself must stay contiguous."""
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


def _weights_stamp(weights: str):
    """A weights file that changed on disk must be read again."""
    try:
        st = os.stat(weights)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None
