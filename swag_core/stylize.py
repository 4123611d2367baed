"""`stylize`: Gatys-style optimisation of an image against SWAG losses, coarse to fine.

Data flow: content and style images -> RGB tensors (images.py) -> a feature extractor for the
chosen network and weights (networks.py, weights.py, kept warm in `MODELS`) -> per scale, the
targets (losses.py) and an optimiser over the image's pixels -> the result at the content's
size, with its alpha and mode restored.

Departures from Gatys et al. / the public SWAG code:
- coarse to fine: the optimisation runs at `scales` sizes, each doubling the side, each
  initialised from the previous result upsampled; most iterations go to the small sizes, where
  they are cheap and where the large structures of the style settle;
- pixels are kept in [0, 1] after every optimiser step (the network sees a valid image);
- when the working size is below the content's size, the result is upsampled and the content's
  own fine detail (what the working size could not hold) is added back, rather than returning a
  blurred upscale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from . import images
from .errors import Cancelled, SwagError
from .losses import StyleContentLoss, Weights
from .networks import Architecture, FeatureExtractor
from .options import Options
from .weights import load_model


@dataclass(frozen=True)
class Progress:
    stage: str  # what is happening, for people: "scale 2 of 2: iteration 40 of 120"
    fraction: float  # of the whole job, 0..1, never going back
    loss: float | None = None


ProgressCallback = Callable[[Progress], None]


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


class ModelCache:
    """Feature extractors kept warm between jobs (the service runs many jobs in one process).
    Keyed by everything that changes the network; holds the `capacity` most recently used."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._entries: dict[tuple, tuple[Architecture, FeatureExtractor]] = {}

    def get(self, opts: Options, device: torch.device) -> tuple[Architecture, FeatureExtractor]:
        key = (opts.arch, opts.weights, _weights_stamp(opts.weights), opts.seed, str(device))
        if key in self._entries:
            self._entries[key] = self._entries.pop(key)  # most recent last
            return self._entries[key]
        arch, model = load_model(opts.arch, opts.weights, opts.seed)
        layers = tuple(dict.fromkeys(arch.style_layers + (arch.content_layer,)))
        entry = (arch, FeatureExtractor(arch, model, layers).to(device))
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            self._entries.pop(next(iter(self._entries)))
        return entry

    def clear(self) -> None:
        self._entries.clear()


def _weights_stamp(weights: str):
    """A weights file that changed on disk must be read again."""
    import os

    try:
        st = os.stat(weights)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None


MODELS = ModelCache()


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def _fit(height: int, width: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _schedule(opts: Options, height: int, width: int, min_size: int) -> list[tuple[tuple[int, int], int]]:
    """[(size, iterations)] from coarse to fine. The working size never exceeds the content's.
    Coarser scales get more of the iterations: scale k of n gets a share of n - k + 1."""
    long_side = min(opts.size, max(height, width))
    sizes = []
    for k in range(opts.scales - 1, -1, -1):
        size = _fit(height, width, max(1, round(long_side / 2**k)))
        if min(size) >= min_size and size not in sizes:
            sizes.append(size)
    if not sizes:
        h, w = _fit(height, width, long_side)
        raise SwagError(f"the image is too small for {opts.arch}: {w}x{h} at the working size, and the "
                        f"network needs at least {min_size} px on each side; use a larger size or image")
    shares = [len(sizes) - k for k in range(len(sizes))]
    counts = [max(1, math.floor(opts.iterations * s / sum(shares))) for s in shares]
    counts[-1] += opts.iterations - sum(counts)
    return [(s, c) for s, c in zip(sizes, counts) if c > 0]


def _prepare_styles(style, style_weights: Sequence[float] | None) -> list[tuple[Image.Image, float]]:
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise SwagError("give at least one style image")
    weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
    if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise SwagError("style weights must be one non-negative number per style image, not all zero")
    return [(images.open_image(s, "style"), w) for s, w in zip(styles, weights)]


def stylize(content, style, *, style_weights: Sequence[float] | None = None, preset: str | None = None,
            progress: ProgressCallback | None = None, cancel=None, **settings) -> Image.Image:
    """Stylise `content` with `style` and return a PIL image of the content's size and mode.

    content, style: a path, bytes or a PIL image; style may be a list of them, blended with
    `style_weights` (their Gram targets are averaged with those weights). `settings` are the
    fields of `Options` (arch, weights, smoothing, size, iterations, preserve_colors, strength,
    seed, device...) over the preset's values. `progress` receives `Progress` updates; setting
    `cancel` (a threading.Event) stops the job within one iteration with `Cancelled`."""
    opts = Options.build(preset, **settings)
    report = _Reporter(progress)
    content_image = images.open_image(content, "content")
    styles = _prepare_styles(style, style_weights)
    device = pick_device(opts.device)

    report("loading network", 0.0)
    arch, extractor = MODELS.get(opts, device)
    parts = images.decompose(content_image)
    original = parts.rgb.to(device)
    height, width = original.shape[-2:]
    schedule = _schedule(opts, height, width, arch.min_size)
    style_tensors = [(images.to_tensor(im).to(device), w) for im, w in styles]
    for t, _ in style_tensors:
        if min(t.shape[-2:]) < 16:
            raise SwagError(f"the style image is too small ({t.shape[-1]}x{t.shape[-2]}); use one of at least 64 px")

    smoothed = set(extractor.layers) if opts.smoothed_layers == "all" else _deep_layers(arch, extractor)
    loss_fn = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, opts.smoothing,
                               opts.temperature, smoothed,
                               Weights(opts.content_weight, opts.style_weight, opts.tv_weight))
    generator = torch.Generator().manual_seed(opts.seed)
    costs = [h * w * n for (h, w), n in schedule]
    done_cost, x = 0, None
    with _precision(opts.precision, device):
        for k, ((h, w), iterations) in enumerate(schedule, start=1):
            report(f"scale {k} of {len(schedule)}: preparing style", _fraction(done_cost, costs))
            content_k = _resize(original, (h, w))
            style_side = max(16, round(max(h, w) * opts.style_scale))
            loss_fn.set_targets(content_k, [(_resize(t, _fit(*t.shape[-2:], style_side)), wt)
                                            for t, wt in style_tensors])
            if x is None:
                x = content_k.clone() if opts.init == "content" else \
                    torch.rand(content_k.shape, generator=generator).to(device)
            else:
                x = _resize(x, (h, w))
            stage = f"scale {k} of {len(schedule)}"
            x = _optimise(x, loss_fn, opts.optimizer, iterations, cancel,
                          lambda i, loss: report(f"{stage}: iteration {i} of {iterations}",
                                                 _fraction(done_cost + costs[k - 1] * i / iterations, costs), loss))
            done_cost += costs[k - 1]

    result = _finish(x.detach(), original, opts)
    report("done", 1.0)
    return images.recompose(result, parts)


def _deep_layers(arch: Architecture, extractor: FeatureExtractor) -> set[str]:
    start = extractor.depth_of(arch.style_layers[-2])
    return {name for name in extractor.layers if extractor.depth_of(name) >= start}


def _fraction(done: float, costs: list[int]) -> float:
    # 2% for loading and style preparation, the rest in proportion to pixels x iterations.
    return 0.02 + 0.97 * done / sum(costs)


def _optimise(x: torch.Tensor, loss_fn, optimizer: str, iterations: int, cancel, on_iteration) -> torch.Tensor:
    # torch's L-BFGS flattens gradients with view(-1): the parameter must stay contiguous.
    x = x.contiguous().requires_grad_(True)
    if optimizer == "lbfgs":
        # One evaluation per step(), so that `iterations` counts evaluations exactly and the
        # cancel check and progress run after each of them; the history persists across steps.
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=50)
    else:
        opt = torch.optim.Adam([x], lr=0.02)
    last = [None]

    def closure():
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_fn(x)
        if not torch.isfinite(loss):
            raise SwagError("the optimisation diverged (the loss is not finite); lower the style "
                            "weight or the temperature's inverse, or use smoothing none")
        loss.backward()
        last[0] = loss.detach()
        return loss

    for i in range(1, iterations + 1):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        on_iteration(i, float(last[0]))
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    return x.detach()


def _finish(x: torch.Tensor, original: torch.Tensor, opts: Options) -> torch.Tensor:
    """The working-size result -> the content's size, with colour preservation and strength."""
    size = tuple(original.shape[-2:])
    if tuple(x.shape[-2:]) != size:
        small = _resize(original, tuple(x.shape[-2:]))
        detail = original - _resize(small, size)  # what the working size could not hold
        x = (_resize(x, size) + detail).clamp(0, 1)
    if opts.preserve_colors:
        # Luminance-only transfer (Gatys et al. 2016, "Preserving colour"): the result's luma
        # with the content's chroma, in YCbCr.
        x = (original + (images.luminance(x) - images.luminance(original))).clamp(0, 1)
    if opts.strength < 1.0:
        x = opts.strength * x + (1 - opts.strength) * original
    return x


class _Reporter:
    """Forwards progress, keeping the fraction monotonic."""

    def __init__(self, callback: ProgressCallback | None):
        self.callback, self.last = callback, 0.0

    def __call__(self, stage: str, fraction: float, loss: float | None = None):
        self.last = max(self.last, min(1.0, fraction))
        if self.callback is not None:
            self.callback(Progress(stage, self.last, loss))


class _precision:
    """`auto` lets CUDA matmuls and convolutions use TF32 (fp32 storage, ~3x faster on Ampere and
    newer); `fp32` forbids it. CPU and MPS compute in fp32 either way."""

    def __init__(self, precision: str, device: torch.device):
        self.allow = precision == "auto" and device.type == "cuda"

    def __enter__(self):
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.allow

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved
