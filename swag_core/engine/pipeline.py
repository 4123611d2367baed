"""`stylize`: Gatys-style optimisation of an image against SWAG losses, coarse to fine.

Data flow: content and style images -> RGB tensors (imaging/images.py) -> a feature extractor
for the chosen network and weights (networks.py, weights.py, kept warm in extractors.py) -> per
scale (scales.py), the targets (losses.py) and an optimiser over the image's pixels
(optimisers.py) -> the result at the content's size, with its alpha and mode restored.

Departures from Gatys et al. / the public SWAG code:
- coarse to fine (as crowsonkb/style-transfer-pytorch): the optimisation runs over a pyramid of
  sizes from `min_scale` (128 px, as crowsonkb) up to the working size in steps of sqrt(2)
  (scales.py). crowsonkb starts each scale from the previous result upsampled; here the
  photo's detail that the previous scale was too small to hold is added to it
  (`_with_photo_detail`), so that each scale restyles the photo's finer detail rather than
  painting over a blurred start: at `balanced` it kept more of the subject on every pair of the
  quality benchmark for the same texture, and it let the pyramid start at 128 px, where
  started from the blur alone random VGG's content layer lost faces and buildings
  (docs/quality.md, second and eighth rounds). A job started from noise gets no photo detail,
  and neither does the `full_resolution` pass, which is there to repaint the detail. Where
  crowsonkb keeps one content weight, here a scale of a job started from the photo keeps the
  share of it that its pixels are of the working size's (scales.content_share);
- the content loss at relu3_1 for VGG, not Gatys et al.'s relu4_2: with random weights relu4_2
  does not reconstruct the photo (networks.py);
- Adam rather than L-BFGS, on the pixels' logits (a bounded parameterisation, where crowsonkb
  clamps; optimisers.py says why), and the result of each scale is an exponential average of
  its iterates (bias-corrected), as crowsonkb/style-transfer-pytorch, but spanning a fifth of
  the scale's iterations rather than crowsonkb's fixed 0.99 (optimisers.average_decay): Adam's
  per-pixel steps leave a pixel-level jitter that the average removes. L-BFGS stays available
  (`optimizer="lbfgs"`); its result is the image with the lowest loss seen, and it restarts
  from it when the loss jumps (optimisers.py says why);
- the network always sees a valid image: Adam's pixels are a sigmoid of its parameters, and
  L-BFGS's are clamped to [0, 1] after every step;
- when the working size is below the content's size, the result is upsampled and the content's
  own fine detail (what the working size could not hold) is added back, its lightness alone,
  rather than returning a blurred upscale; `full_resolution` paints that detail instead, with
  one more scale at the content's own size (scales.py);
- the photo's large light and dark areas are laid under the result at the end
  (`layout_weight`, tones.py): the random network's content term keeps the photo's outlines,
  not its masses;
- each scale is painted with a margin of MARGIN px of the image's border pixels repeated, and
  cropped back: without it the pixel term left a light line along some results' border;
- memory is bounded whatever the layer's size: the full-size image stays on the CPU, and a scale
  whose pixel count exceeds `tile_size`^2 is optimised in overlapping tiles of at most
  tile_size x tile_size, one on the device at a time (tiles.py blends them without seams). Every
  tile is optimised towards the same targets of the scale (`StyleTargets`: the style Grams from
  the whole style image, the temperature units and the normalisers from the whole content image,
  shrunk to the tile budget), and towards its own content activations. Each tile starts from the
  blend of the tiles already done where it overlaps them, faded into its own start over their
  windows (`tiles.Canvas.start`), and adds only the detail finer than the scale it starts from
  (`_Job.tiled` says why). The style image, too, is never enlarged past the
  tile budget, so above it the style's texture keeps its grain in pixels rather than growing
  with the image;
- the targets of a scale are cached across jobs (`TARGETS`): a job repeated with the same content,
  style and loss settings (another strength, seed or number of iterations) skips their passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import SwagError
from ..imaging import images
from ..options import Options
from . import host_memory, scales, tiles, tones
from .cache import RecentCache
from .device import Precision, check_precision, pick_device
from .extractors import content_layer_of, network_for, network_key
from .losses import (EPS, PIXEL_PATCH, LossSettings, StyleContentLoss, StyleTargets, Weights, chroma_variation,
                     total_variation)
from .networks import Architecture, FeatureExtractor
from .optimisers import optimise


@dataclass(frozen=True)
class Progress:
    stage: str  # what is happening, for people: "scale 2 of 2: iteration 40 of 120"
    fraction: float  # of the whole job, 0..1, never going back
    loss: float | None = None


ProgressCallback = Callable[[Progress], None]


# `StyleTargets` of recent scales, keyed by the bytes of the content and style images and every
# setting they depend on (`_Job`). At 512 px an entry of the default (VGG-19, the style's sampled
# positions) is about 40 MB; one of ResNet-50 with means and covariances 70 MB, mostly layer4's.
TARGETS = RecentCache(capacity=4)


def _digest(tensor: torch.Tensor) -> str:
    return hashlib.blake2b(tensor.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def _prepare_styles(style, style_weights: Sequence[float] | None) -> list[tuple[Image.Image, float]]:
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise SwagError("give at least one style image")
    weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
    if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise SwagError("style weights must be one non-negative number per style image, not all zero")
    return [(images.open_image(s, "style"), w) for s, w in zip(styles, weights)]


def stylize(content, style, *, style_weights: Sequence[float] | None = None, preset: str | None = None,
            progress: ProgressCallback | None = None, cancel=None, init_image=None, **settings) -> Image.Image:
    """Stylise `content` with `style` and return a PIL image of the content's size and mode.

    content, style: a path, bytes or a PIL image; style may be a list of them, blended with
    `style_weights` (their Gram targets are averaged with those weights). `settings` are the
    fields of `Options` (arch, weights, smoothing, size, iterations, preserve_colors, strength,
    seed, device...) over the preset's values. `progress` receives `Progress` updates; setting
    `cancel` (a threading.Event) stops the job within one iteration with `Cancelled`.
    `init_image` (a path, bytes or PIL image), when given, is the first scale's starting image,
    resized to it, instead of the content (or noise): the GIMP filter starts each animation frame
    from the frame plus half of what stylising changed in the previous frame."""
    opts = Options.build(preset, **settings)
    report = _Reporter(progress)
    content_image = images.open_image(content, "content")
    styles = _prepare_styles(style, style_weights)
    init = images.to_tensor(images.open_image(init_image, "init image")) if init_image is not None else None
    device = pick_device(opts.device)

    check_precision(opts.precision, device)
    report("loading network", 0.0)
    arch, extractor = network_for(opts, device)
    if opts.tile_size and opts.tile_size < arch.min_size:
        raise SwagError(f"tile_size {opts.tile_size} is too small for {opts.arch}: use 0 (no tiles) or at "
                        f"least {arch.min_size}")
    parts = images.decompose(content_image)
    original = parts.rgb  # on the CPU: the device only sees a working size or a tile at a time
    height, width = original.shape[-2:]
    schedule = scales.schedule(opts, height, width, arch.min_size)
    working = scales.working_size(opts, height, width)
    style_tensors = [(images.style_tensor(im), w) for im, w in styles]
    for t, _ in style_tensors:
        if min(t.shape[-2:]) < 16:
            raise SwagError(f"the style image is too small ({t.shape[-1]}x{t.shape[-2]}); use one of at least 64 px")

    loss_fn = loss_for(opts, arch, extractor)
    job = _Job(opts, device, loss_fn, cancel, arch.min_size,
               key=network_key(opts, device) + (loss_fn.settings, opts.precision, _digest(original),
                                                 tuple((_digest(t), wt) for t, wt in style_tensors)))
    generator = torch.Generator().manual_seed(opts.seed)
    budget = opts.tile_size ** 2
    costs = [h * w * n for (h, w), n in schedule]
    full_pass = scales.has_full_resolution_pass(opts, height, width)
    done_cost, x = 0, None
    # On the CPU, the steps' large activations are reused rather than mapped anew (host_memory.py).
    reuse = host_memory.reused_freed_memory() if device.type == "cpu" else contextlib.nullcontext()
    with Precision(opts.precision, device), reuse:
        for k, ((h, w), iterations) in enumerate(schedule, start=1):
            stage = f"scale {k} of {len(schedule)}"
            report(f"{stage}: preparing style", _fraction(done_cost, costs))
            content_k = _resize(original, (h, w))
            style_side = max(16, round(max(h, w) * opts.style_scale))
            styles_k = [(_resize(t, scales.within(scales.fit(*t.shape[-2:], style_side), budget, arch.min_size)).to(device), wt)
                        for t, wt in style_tensors]
            if x is None and init is not None:
                x = _resize(init, (h, w))
            elif x is None:
                x = content_k.clone() if opts.init == "content" else torch.rand(content_k.shape, generator=generator)
            # The start's own resolution, before it is brought to this scale, in the margin's frame.
            coarse = tuple(side + 2 * MARGIN for side in x.shape[-2:])
            with_detail = opts.init == "content" and not (full_pass and k == len(schedule))
            x = _with_photo_detail(x, content_k) if with_detail else _resize(x, (h, w))
            x, content_k = _with_margin(x), _with_margin(content_k)
            on_progress = lambda done, n, loss, text: report(  # noqa: E731
                f"{stage}{text}: iteration {n} of {iterations}",
                _fraction(done_cost + costs[k - 1] * done, costs), loss)
            # A job started from noise gets no photo detail at its finer scales to bring the
            # subject back, so its coarse scales keep the whole content weight.
            share = scales.content_share((h, w), working) if opts.init == "content" else 1.0
            if budget and h * w > budget:
                x = job.tiled(x, coarse, content_k, styles_k, share, iterations, on_progress)
            else:
                x = job.whole(x, content_k, styles_k, share, iterations, on_progress)
            x = _without_margin(x)
            done_cost += costs[k - 1]

    result = _finish(x, original, opts)
    report("done", 1.0)
    return images.recompose(result, parts)


class _Job:
    """Runs the scales of one job: whole, or tile by tile."""

    def __init__(self, opts: Options, device: torch.device, loss_fn: StyleContentLoss, cancel, min_size: int,
                 key: tuple):
        self.opts, self.device, self.loss_fn, self.cancel, self.min_size, self.key = \
            opts, device, loss_fn, cancel, min_size, key

    def _targets(self, view: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> StyleTargets:
        key = self.key + (tuple(view.shape), tuple(tuple(t.shape) for t, _ in styles))
        return TARGETS.get(key, lambda: self.loss_fn.style_targets_for(view.to(self.device), styles))

    def whole(self, x, content, styles, content_share, iterations, on_progress) -> torch.Tensor:
        content = content.to(self.device)
        self.loss_fn.set_content(content, self._targets(content, styles), content_share)
        x = optimise(x.to(self.device), self.loss_fn, self.opts.optimizer, iterations, self.cancel,
                      lambda i, loss: on_progress(i / iterations, i, loss, ""))
        return x.cpu()

    def tiled(self, x, coarse, content, styles, content_share, iterations, on_progress) -> torch.Tensor:
        """x, content: (1, 3, H, W) on the CPU, H * W above the tile budget; `coarse`: the size
        that x was brought up from (the previous scale's), whose detail every tile agrees on."""
        size = self.opts.tile_size
        height, width = content.shape[-2:]
        view = _resize(content, scales.within((height, width), size * size, self.min_size))
        targets = self._targets(view, styles)
        # The normaliser of the smoothness term is the content's own total variation at this
        # scale, not the shrunken view's, whose neighbouring pixels differ more.
        targets = dataclasses.replace(targets, tv_norm=total_variation(content).clamp_min(EPS).to(self.device),
                                      chroma_norm=chroma_variation(content).clamp_min(1e-6).to(self.device))
        overlap = size // 4
        boxes = tiles.grid(height, width, size, overlap)
        canvas = tiles.Canvas(x, overlap)
        for n, box in enumerate(boxes):
            region = tiles.region(box)
            self.loss_fn.set_content(content[region].contiguous().to(self.device), targets, content_share)
            text = f", tile {n + 1} of {len(boxes)}"
            # Each tile starts from the tiles already done where it overlaps them, faded into its own start.
            result = optimise(canvas.start(box, x[region]).to(self.device), self.loss_fn, self.opts.optimizer,
                               iterations, self.cancel,
                               lambda i, loss: on_progress((n + i / iterations) / len(boxes), i, loss, text))
            canvas.add(box, result.cpu())
        # Each tile matches the global style on its own, and neighbouring tiles drifted apart in
        # colour (their borders showed). The tiles may only add what the coarser start could not
        # hold: the blend's detail finer than `coarse`, over the start's coarser content (the
        # start's finer detail, the photo's, is what the tiles repaint).
        # A first scale that is itself tiled has no coarser start to agree on.
        painted = canvas.result()
        if coarse == (height, width):
            return painted
        return (_low_pass(x, coarse) + painted - _low_pass(painted, coarse)).clamp(0, 1)


def loss_for(opts: Options, arch: Architecture, extractor: FeatureExtractor) -> StyleContentLoss:
    """The loss that `opts` asks for, over `extractor`'s layers (targets not set yet)."""
    smoothed = set(extractor.layers) if opts.smoothed_layers == "all" else _deep_layers(arch, extractor)
    settings = LossSettings(opts.smoothing, opts.temperature, opts.temperature_unit, frozenset(smoothed),
                            opts.style_stats, opts.layer_weights, opts.loss_scaling,
                            Weights(content=opts.content_weight, style=opts.style_weight, tv=opts.tv_weight,
                                    chroma=opts.chroma_weight, patch=opts.patch_weight,
                                    pixel=opts.pixel_weight),
                            opts.style_octaves)
    return StyleContentLoss(extractor, arch.style_layers, content_layer_of(opts, arch), settings, arch.min_size)


def _deep_layers(arch: Architecture, extractor: FeatureExtractor) -> set[str]:
    start = extractor.depth_of(arch.style_layers[-2])
    return {name for name in extractor.layers if extractor.depth_of(name) >= start}


# Each scale is painted with this many pixels more on every side, the border pixels repeated,
# and cropped back. The pixel term's patches (losses.pixel_patches) hold a border pixel in fewer
# of them than an inner one (a corner pixel in 1 of 7 x 7), so the term moved it least, and a
# light line a pixel or two wide ran along the border of some results. With the margin the
# image's border pixels lie in 16 of the 49, and the line went on six of the quality benchmark's
# eight pairs at about the same texture and structure (docs/quality.md, twenty-eighth and
# twenty-ninth rounds). The tile budget counts a scale's pixels without it, so that a scale
# of exactly the budget is not cut into four tiles for its margin.
MARGIN = PIXEL_PATCH // 2


def _with_margin(image: torch.Tensor) -> torch.Tensor:
    return F.pad(image, (MARGIN,) * 4, mode="replicate")


def _without_margin(image: torch.Tensor) -> torch.Tensor:
    return image[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


def _low_pass(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """What of `image` a `size` image holds, at `image`'s size."""
    return _resize(_resize(image, size), tuple(image.shape[-2:]))


def _with_photo_detail(x: torch.Tensor, photo: torch.Tensor, lightness_only: bool = False) -> torch.Tensor:
    """`x` brought to `photo`'s size, with the photo's own detail that `x`'s size could not hold
    (its luma alone, added to R, G and B alike, with `lightness_only`)."""
    size = tuple(photo.shape[-2:])
    if tuple(x.shape[-2:]) == size:
        return x
    detail = photo - _low_pass(photo, tuple(x.shape[-2:]))
    if lightness_only:
        detail = images.luminance(detail)
    return (_resize(x, size) + detail).clamp(0, 1)


def _fraction(done: float, costs: list[int]) -> float:
    # 2% for loading and style preparation, the rest in proportion to pixels x iterations.
    return 0.02 + 0.97 * done / sum(costs)


def _finish(x: torch.Tensor, original: torch.Tensor, opts: Options) -> torch.Tensor:
    """The working-size result -> the content's size, with the photo's light and dark areas,
    colour preservation and strength (on the CPU, like `original`)."""
    # At the working size: the masses are the same at any size, and cheaper to find there.
    x = tones.with_photo_layout(x, _resize(original, tuple(x.shape[-2:])), opts.layout_weight)
    # The photo's detail as lightness alone: nothing repaints it after this, and its colour
    # detail over the recoloured result stayed as colour grain. On the quality benchmark's
    # eight pairs brought up from 256 px to 512 px, grain 0.457 -> 0.246 (from 128 px: 0.738
    # -> 0.344), texture and structure unchanged (docs/quality.md, thirty-eighth round).
    x = _with_photo_detail(x, original, lightness_only=True)
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


