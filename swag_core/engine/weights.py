"""Where a network's weights come from: `random`, `imagenet` or a state_dict file.

Nothing here downloads at run time. `imagenet` reads torchvision's weights from the local torch
cache only; `download_imagenet` is the one explicit step that fetches them (the installer's
`--download-weights`, or `swag download-weights`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from ..choices import IMAGENET, RANDOM
from ..errors import SwagError
from .networks import Architecture, architecture


def _imagenet_enum(arch: Architecture):
    if arch.imagenet is None:
        raise SwagError(f"{arch.name} has no pre-trained weights; use --weights random or a state_dict file")
    return getattr(tvm, arch.imagenet).DEFAULT


def imagenet_cache_path(arch: Architecture) -> Path:
    """The file torchvision's loader would read for this network's ImageNet weights."""
    url = _imagenet_enum(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_available(arch: Architecture) -> bool:
    return arch.imagenet is not None and imagenet_cache_path(arch).is_file()


def download_imagenet(name: str) -> Path:
    """Fetch one network's ImageNet weights into the torch cache (needs the internet)."""
    arch = architecture(name)
    _imagenet_enum(arch).get_state_dict(progress=True, check_hash=True)
    return imagenet_cache_path(arch)


def _open_regular(path: Path):
    """The file at `path`, opened for reading, if it is a regular file. Opened without blocking
    and checked on the open file: a FIFO or a device would otherwise hang the engine's only worker."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SwagError(f"weights file {path} is not a regular file; give a file saved with torch.save")
    return os.fdopen(fd, "rb")


def _read_state_dict(path: Path, what: str) -> dict:
    """A state_dict, read with weights_only=True: a weights file holds tensors, and unpickling
    anything else could run code that the file carries."""
    try:
        with _open_regular(path) as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SwagError(f"weights file {path} does not exist") from None
    except SwagError:
        raise
    except Exception as exc:  # a truncated or foreign file: say so, do not crash
        raise SwagError(f"cannot read {what} {path}: {exc.__class__.__name__}; give a file saved "
                        f"with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # checkpoints that wrap the state_dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SwagError(f"{path} is not a state_dict (a mapping of names to tensors)")
    return state


def load_model(name: str, weights: str = RANDOM, seed: int = 0) -> tuple[Architecture, nn.Module]:
    """The whole model of network `name`, with its weights, frozen and in eval mode.

    `random` weights come from torchvision's own initialisation under `seed`, so one seed always
    gives the same network; the global RNG is left as it was."""
    arch = architecture(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = arch.build()
    if weights == IMAGENET:
        path = imagenet_cache_path(arch)
        if not path.is_file():
            raise SwagError(f"the ImageNet weights of {name} are not in the torch cache ({path}); fetch "
                            f"them once with `swag download-weights {name}` on a machine with internet")
        _load(model, _read_state_dict(path, "cached weights"), path, arch)
    elif weights != RANDOM:
        path = Path(weights).expanduser()
        _load(model, _read_state_dict(path, "weights file"), path, arch)
    return arch, model.eval().requires_grad_(False)


def _load(model: nn.Module, state: dict, path: Path, arch: Architecture) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        raise SwagError(f"{path} does not fit {arch.name} ({first[:200]}); give weights saved from "
                        f"the same torchvision model") from None
