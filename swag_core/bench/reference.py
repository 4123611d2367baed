"""A plain implementation of the engine's objective, written the way tutorials write style
transfer: the baseline that `swag bench` measures the engine against.

Same network, same weights, same loss (engine/losses.py: the normalised style terms (means and
covariances, Gram matrices or the sliced distance), nearest-patch, pixel-patch and content terms over SWAG-smoothed
activations, the layer weights, the smoothness terms), same optimiser (Adam with an average
of iterates), but: fp32 with TF32 off, the SWAG softmax as one row of C*H*W elements (`torch.softmax(f.reshape(1, -1))`,
as the public SWAG code writes it), the style statistics as plain products, default memory
format, no autocast, no caching of anything between jobs, the nearest patches searched in one
product.
tests/test_bench.py checks that it computes the engine's loss, so the comparison is fair.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ..engine import scales
from ..engine.losses import (PATCH_BANK, PIXEL_MIN_LONG_SIDE, PIXEL_MIN_SIDE, PIXEL_OCTAVES, PIXEL_PATCH,
                             SLICED_DIRECTIONS, SLICED_SAMPLE, STYLE_MIN_POSITIONS)
from ..engine.networks import FeatureExtractor
from ..engine.weights import load_model
from ..options import Options


@contextlib.contextmanager
def fp32():
    """TF32 off for the reference's run, as it was before afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def smooth(f: torch.Tensor, mode: str, temperature) -> torch.Tensor:
    if mode == "softmax":
        return torch.softmax(f.reshape(1, -1) / temperature, dim=1).reshape_as(f) * f.numel()
    if mode == "channel":
        return torch.softmax(f / temperature, dim=1) * f.shape[1]
    return f


def gram(f: torch.Tensor) -> torch.Tensor:
    c = f.reshape(f.shape[1], -1)
    return c @ c.t() / c.shape[1]


def mean_covariance(f: torch.Tensor) -> torch.Tensor:
    c = f.reshape(f.shape[1], -1)
    mean = c.mean(1, keepdim=True)
    centred = c - mean
    return torch.cat([centred @ centred.t() / c.shape[1], mean], 1)


def sliced_distance(f: torch.Tensor, sample: torch.Tensor, directions: torch.Generator) -> torch.Tensor:
    """Sliced Wasserstein: sorted projections on random directions, against the style's sample
    (C, K), on a random subset of at most SLICED_SAMPLE of f's positions, drawn as the engine does."""
    return sliced_points_distance(f.reshape(f.shape[1], -1), sample, directions)


def sliced_points_distance(c: torch.Tensor, sample: torch.Tensor, directions: torch.Generator) -> torch.Tensor:
    if c.shape[1] > SLICED_SAMPLE:
        c = c[:, torch.randperm(c.shape[1], generator=directions)[:SLICED_SAMPLE].to(c.device)]
    d = F.normalize(torch.randn(min(c.shape[0], SLICED_DIRECTIONS), c.shape[0], generator=directions).to(c.device),
                    dim=1)
    mine, theirs = (d @ c).sort(1).values, (d @ sample).sort(1).values
    if theirs.shape[1] != mine.shape[1]:
        theirs = F.interpolate(theirs[None], size=mine.shape[1], mode="linear", align_corners=True)[0]
    return (mine - theirs).pow(2).mean(1).sum()


def nearest_patch_distance(f: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Mean over f's positions of the squared distance to the bank's column (C, K) of highest
    cosine similarity."""
    c = f.reshape(f.shape[1], -1)
    with torch.no_grad():
        nearest = (F.normalize(c, dim=0).t() @ F.normalize(bank, dim=0)).argmax(1)
    return (c - bank[:, nearest]).pow(2).sum(0).mean()


def sample_positions(f: torch.Tensor, count: int) -> torch.Tensor:
    """The style's positions (C, N), or a random `count` of them, drawn as the engine does."""
    return sample_columns(f.reshape(f.shape[1], -1), count)


def sample_columns(c: torch.Tensor, count: int) -> torch.Tensor:
    if c.shape[1] <= count:
        return c
    return c[:, torch.randperm(c.shape[1], generator=torch.Generator().manual_seed(0))[:count].to(c.device)]


def pixel_patches(x: torch.Tensor) -> torch.Tensor:
    """Every PIXEL_PATCH x PIXEL_PATCH patch of x as a column (3 * P * P, positions)."""
    return F.unfold(x, PIXEL_PATCH)[0]


def halved(x: torch.Tensor, k: int, min_side: int) -> torch.Tensor:
    """x halved k times, its short side kept at least min_side."""
    h, w = x.shape[-2:]
    f = max(0.5 ** k, min_side / min(h, w))
    return F.interpolate(x, size=(round(h * f), round(w * f)), mode="bilinear", antialias=True) if f < 1 else x


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean() + (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()


def chroma_variation(x: torch.Tensor) -> torch.Tensor:
    y = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return total_variation(torch.cat([x[:, 0:1] - y, x[:, 2:3] - y], 1))


class ReferenceLoss:
    def __init__(self, opts: Options, device: torch.device):
        self.arch, model = load_model(opts.arch, opts.weights, opts.seed)
        layers = self.arch.style_layers + (self.arch.content_layer,)
        self.net = FeatureExtractor(self.arch, model, dict.fromkeys(layers), opts.pooling).to(device)
        self.opts = opts
        self.statistic = gram if opts.style_stats == "gram" else mean_covariance
        self.sliced = opts.style_stats == "sliced"
        n = len(self.arch.style_layers)
        raw = [4.0 ** (n - 1 - i) for i in range(n)] if opts.layer_weights == "shallow" else [1.0] * n
        octaves = [2.0 ** (opts.style_octaves - 1 - k) for k in range(opts.style_octaves)]
        self.layer_weights = [w / sum(raw) * o / sum(octaves) for o in octaves for w in raw]
        self.content_share = 1.0  # the scale's share of the content weight, as the engine's

    def _features(self, x: torch.Tensor) -> dict:
        """The activations of x, and of x halved k times under the key (layer, k) for each further
        style octave (never below the network's smallest input)."""
        feats = self.net(x)
        for k in range(1, self.opts.style_octaves):
            feats.update({(n, k): v for n, v in self.net(halved(x, k, self.arch.min_size)).items()})
        return feats

    def _pixel_distances(self, x: torch.Tensor) -> list:
        """Per pixel octave, the sliced distance of x's pixel patches to the style's."""
        return [sliced_points_distance(pixel_patches(halved(x, k, PIXEL_MIN_SIDE)), target, self.directions)
                for k, target in enumerate(self.pixel_targets)]

    def _style_keys(self) -> list:
        return [n if k == 0 else (n, k) for k in range(self.opts.style_octaves) for n in self.arch.style_layers]

    def _patch_keys(self) -> list:
        middle = self.arch.style_layers[len(self.arch.style_layers) // 2]
        octaves = range(min(1, self.opts.style_octaves - 1), self.opts.style_octaves) if self.opts.patch_weight else ()
        return [middle if k == 0 else (middle, k) for k in octaves]

    def _style_distance(self, f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.sliced:
            return sliced_distance(f, target, self.directions)
        return (self.statistic(f) - target).pow(2).sum()

    def _smoothed(self, feats: dict) -> dict:
        # As the engine: activations in units of their spread at the content image (which
        # decides how means weigh against covariances), and every loss layer smoothed.
        return {n: smooth(f / self.scales[n], self.opts.smoothing, self.opts.temperature) for n, f in feats.items()}

    @torch.no_grad()
    def set_targets(self, content: torch.Tensor, style: torch.Tensor) -> None:
        raw = self._features(content)
        self.scales = {n: f.std() for n, f in raw.items()}
        feats = self._smoothed(raw)
        style_feats = self._smoothed(self._features(style))
        # As the engine: only the layers with enough positions over the content.
        layers = [n for n in self._style_keys() if feats[n].shape[-2] * feats[n].shape[-1] >= STYLE_MIN_POSITIONS]
        if self.sliced:
            self.targets = {n: sample_positions(style_feats[n], SLICED_SAMPLE) for n in layers}
        else:
            self.targets = {n: self.statistic(style_feats[n]) for n in layers}
        self.directions = torch.Generator().manual_seed(0)
        self.norms = {n: self._style_distance(feats[n], self.targets[n]) for n in layers}
        self.banks = {n: sample_positions(style_feats[n], PATCH_BANK) for n in self._patch_keys()}
        self.patch_norms = {n: nearest_patch_distance(feats[n], self.banks[n]) for n in self._patch_keys()}
        octaves = [k for k in range(PIXEL_OCTAVES)
                   if k == 0 or max(halved(content, k, PIXEL_MIN_SIDE).shape[-2:]) >= PIXEL_MIN_LONG_SIDE]
        self.pixel_targets = [sample_columns(pixel_patches(halved(style, k, PIXEL_MIN_SIDE)), SLICED_SAMPLE)
                              for k in octaves] if self.opts.pixel_weight else []
        self.pixel_norms = self._pixel_distances(content)
        self.directions = torch.Generator().manual_seed(0)  # the optimisation's draws, as the engine's
        self.content = feats[self.arch.content_layer]
        self.content_norm = (self.content - self.content.mean()).pow(2).sum()
        self.tv_norm = total_variation(content)
        self.chroma_norm = chroma_variation(content).clamp_min(1e-6)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._smoothed(self._features(x))
        style = sum(w * self._style_distance(feats[n], self.targets[n]) / self.norms[n]
                    for w, n in zip(self.layer_weights, self._style_keys()) if n in self.targets)
        content = (feats[self.arch.content_layer] - self.content).pow(2).sum() / self.content_norm
        keys = self._patch_keys()
        patch = sum(nearest_patch_distance(feats[n], self.banks[n]) / self.patch_norms[n]
                    for n in keys) / max(1, len(keys))
        pixel = sum(d / n for d, n in zip(self._pixel_distances(x), self.pixel_norms)) / max(1, len(self.pixel_norms))
        o = self.opts
        return (o.content_weight * self.content_share * content + o.style_weight * style + o.patch_weight * patch
                + o.pixel_weight * pixel
                + o.tv_weight * total_variation(x) / self.tv_norm
                + o.chroma_weight * chroma_variation(x) / self.chroma_norm)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def run(content: torch.Tensor, style: torch.Tensor, opts: Options, schedule, device: torch.device) -> torch.Tensor:
    """The job of `stylize` with the same schedule [(size, iterations)], done plainly: content
    (1, 3, H, W) and style on the CPU; returns the result at the content's size."""
    loss_fn = ReferenceLoss(opts, device)
    content, style = content.to(device), style.to(device)
    x = None
    working = scales.working_size(opts, *content.shape[-2:])
    for (h, w), iterations in schedule:
        c = resize(content, (h, w))
        loss_fn.content_share = scales.content_share((h, w), working)
        side = max(16, round(max(h, w) * opts.style_scale))
        sh, sw = style.shape[-2:]
        scale = side / max(sh, sw)
        loss_fn.set_targets(c, resize(style, (max(1, round(sh * scale)), max(1, round(sw * scale)))))
        # Each later scale starts with the photo's detail that the previous one could not hold.
        x = c.clone() if x is None else (resize(x, (h, w)) + c - resize(resize(c, x.shape[-2:]), (h, w))).clamp(0, 1)
        x.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.02, betas=(0.9, 0.99))
        average = torch.zeros_like(x).detach()
        for _ in range(iterations):
            opt.zero_grad()
            loss_fn(x).backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
                average = 0.99 * average + 0.01 * x
        x = (average / (1 - 0.99 ** iterations)).clamp(0, 1)
    return resize(x, tuple(content.shape[-2:])).cpu()
