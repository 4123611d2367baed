"""The objective of Gatys et al. (the paper's Eq. 2) over smoothed activations.

    loss(x) = content_weight * share * L_content + style_weight * L_style + patch_weight * L_patch
              + pixel_weight * L_pixel + tv_weight * L_tv
              + chroma_weight * L_chroma

(`share` is 1 but at the pipeline's coarser scales: `set_content`.)

Eq. (1)  gram(F) = F F^T / M for F reshaped to C x M (M = H*W pixels).
Eq. (2)  L_content = ||F^l(x) - F^l(x_c)||^2,   L_style = sum_l w_l ||G^l(x) - G^l(x_s)||^2.

Departures from the paper, each a setting (`LossSettings`):
- Normalisation (`scaling="normalised"`, the default). The paper divides the style term by
  4 D^2 M^2 and leaves the content term raw, so the right weights change with the network, the
  image size and the smoothing by many orders of magnitude (the public code used a style weight
  of 1e17). Here each term is divided by a constant fixed per job, which makes it scale-free:
  - each style layer by its value at the content image, ||S^l(x_c) - S^l_target||^2: it
    measures the fraction of the way from the content's style to the target still to go;
  - the content term by the variance of the content's activations times their count;
  - total variation by the content image's own total variation.
  One set of weights then works for every network, with and without smoothing. A side effect
  worth knowing: the public code's smoothing mostly weighs its deep layers' style loss down
  (their smoothed values are ~1e-3 of the raw ones); normalising each layer removes that.
  `scaling="paper"` is the public code's loss instead: Gram / (C*M), mean squared differences,
  the literal softmax (values summing to 1), and the style weight multiplied by its 1e17.
- Layer weights (`layer_weights`): "shallow" weighs the style layers 256, 64, 16, 4, 1 from
  the shallowest on (as crowsonkb/style-transfer-pytorch), normalised to sum 1; "equal" is the
  paper's.
- Style statistics (`style_stats`): "sliced" (the default) compares the distributions of the
  activations themselves, not their moments: the sliced Wasserstein distance of Heitz et al.
  (2021). The positions of a layer (each a vector of C channels) are projected on random
  directions drawn afresh at every step, and each projection, sorted, is compared with the
  style's sorted projections (`sliced_distance`). A distribution holds what a mean and a
  covariance do not, such as how sparse a layer's responses are: a style's few strong marks on
  flat paper. On the quality benchmark it transferred more texture than the means and
  covariances with every seed of the network, at about the same structure, and by eye painted
  larger, cleaner areas of the style's colours (docs/quality.md, twelfth round); it costs about
  a third more time. Departures from Heitz et al.: to bound the sorts on the CPU, each step
  compares a random subset of at most `SLICED_SAMPLE` positions of the image with a fixed one
  of the style's (`SLICED_SAMPLE` in all, shared by blend weight, as the patches' bank), on at
  most `SLICED_DIRECTIONS` directions a step rather than C; and the directions' draws restart
  with each region optimised, so that a job repeats.
  "meancov" is the mean and the covariance of the activations (the Gram matrix of the centred
  features, and the means), the statistics of the W2 style loss of
  crowsonkb/style-transfer-pytorch, here under the same squared distance as the Gram matrices;
  "gram" is Eq. (1). Why the departure from Eq. (1): a ReLU's outputs are all positive, so its
  Gram matrix is mostly the outer product of the channels' means, and its distance mostly
  compares means; the covariance, where the texture's correlations are, weighs little. Kept
  apart, the covariance weighs as much as it differs: on the quality benchmark it transferred
  more texture at the same structure (docs/quality.md, fourth round). A side effect worth
  knowing: a covariance ignores a constant added to the activations, so SWAG's softmax, nearly
  a shift at the default temperature, changes the covariance only through its non-linear part,
  and the means by its shift; the sliced distance sees both.
- Style octaves (`style_octaves`, 3 by default): the style statistics are matched on the
  image itself and on the image halved once and twice (each octave a pass of the network; the
  octaves share the style weight, 4/7, 2/7 and 1/7 from the image's own size down). A
  network's filters see a fixed number of pixels, and random filters barely combine them into
  larger shapes: on the halved images the same filters see the style's
  strokes and figures twice and four times as large. The multi-scale Gram loss of Snelgrove
  (2017) for texture synthesis does the same; on the quality benchmark it transferred more
  texture at more structure (docs/quality.md, fifth round). The content term stays at the
  image's own size; with equal shares the coarsest octave washed a portrait's face out at the
  larger working sizes, hence the halving shares. One octave is the paper's loss.
- Layers with enough positions (`STYLE_MIN_POSITIONS`): at each scale of the pyramid, a style
  layer (of any octave) is matched only where it has at least 16 x 16 positions over the
  image. The paper matches every layer at every size; a distribution of the few positions of a
  deep layer on a small image is met by copying the style's composition (docs/quality.md,
  thirty-first round).
- Nearest style patches (`patch_weight`, L_patch), not in the paper: at the middle style
  layer (relu3_1 of VGG-19), on the halved octaves, each position's activations are pulled
  towards those of the style position most like them (cosine similarity): the MRF loss of Li
  and Wand (2016), on 1x1 patches of the smoothed activations (a position of relu3_1 sees
  24 px of the image, 48 and 96 px on the octaves). Why: means and covariances describe a
  Gaussian-like texture, and a random network's describe a style's fine grain rather than its
  shapes; matched exactly from noise they still drew blotches (docs/quality.md, fourth round).
  Nearest patches copy the style's local arrangements themselves: a pattern's facets, a
  print's flat colours (sixth round). The term is normalised like the others (its mean over
  positions, divided by its value at the content image), so it works with tiles. Each style
  contributes a random subset of its positions (`PATCH_BANK` in all, shared by blend weight),
  the same for every job.
- The style's pixel patches (`pixel_weight`, L_pixel), not in the paper: the distribution of
  the image's 7 x 7 patches of pixels (RGB) is matched to the style's by the sliced distance,
  on the image and on it halved once and twice (patches of 7 to 28 px; the halvings at least
  64 px long, `pixel_octaves`), the octaves weighed alike: the patch distribution matching
  of Elnekave and Weiss (GPDM, 2022), here beside the network's terms rather than alone,
  and on the image's octaves at once rather than one level after another. Its random
  directions are random 7 x 7 filters, so it is one more random-weight layer. Why: the
  network's terms leave a style's flat paper speckled and its crisp edges soft, which the
  distribution of its own pixels does not allow; on the quality benchmark it transferred more
  texture with more structure kept, and by eye cleaner paper and larger, cleaner areas of the
  style's colours (docs/quality.md, fourteenth round).
  Positions are sampled as for the sliced statistics (`pixel_patches`). GPDM's pyramid goes
  on to coarser levels; here those copied the style's composition (PIXEL_OCTAVES).
- The smoothing temperature is given in units of the layer's spread at the content image
  (`temperature_unit="spread"`), or as the paper's raw temperature (`"raw"`).
- A chroma smoothness term (`chroma_weight`, L_chroma): the total variation of the colour
  difference channels R - Y and B - Y alone. Random-weight networks constrain pixel-level
  colour poorly, and an optimiser that moves every pixel (Adam) leaves coloured grain there;
  paintings and photos carry their fine detail in luminance. Penalising the chroma's detail
  removes the grain without blurring the strokes, which a plain total variation would.
The Gram matrix is divided by M (the mean over pixels) so that targets computed at one image
size compare with another.

The targets come in two parts so that a large image can be optimised in tiles against one
global style: `StyleTargets` (the style statistics, the temperature units and the normalisers,
from the whole content image and the style images, computed once per scale and cacheable
across jobs) and the content target of the region being optimised (`set_content`: the whole
image or one tile).

Precision: statistics are always accumulated in fp32, with autocast switched off inside them,
and activations are smoothed in fp32; under bf16 autocast only the network runs in bf16.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..imaging.images import luminance
from .networks import FeatureExtractor
from .smoothing import smooth

EPS = 1e-12
# The public SWAG code's style weight (its resnet_swag.py), applied by `scaling="paper"`.
PAPER_STYLE_WEIGHT = 1e17


def gram(features: torch.Tensor) -> torch.Tensor:
    """Eq. (1) per sample, in fp32 whatever the activations' precision: (B, C, H, W) -> (B, C, C).
    Autocast is off inside: it would run the product in bf16, losing the sum over M pixels."""
    with torch.autocast(features.device.type, enabled=False):
        f = features.flatten(2).float()
        return f @ f.transpose(1, 2) / f.shape[2]


def mean_covariance(features: torch.Tensor) -> torch.Tensor:
    """The covariance of the channels with their means as one more column: (B, C, C + 1)."""
    with torch.autocast(features.device.type, enabled=False):
        f = features.flatten(2).float()
        mean = f.mean(2, keepdim=True)
        # The covariance's gradient through the mean it subtracts is zero (the centred values
        # sum to 0), so the mean is detached there: the backward pass then skips a reduction
        # over the full activation.
        centred = f - mean.detach()
        return torch.cat([centred @ centred.transpose(1, 2) / f.shape[2], mean], 2)


def _falling(ratio: float, count: int) -> tuple[float, ...]:
    """`count` weights summing to 1, each `ratio` times the next: (4/7, 2/7, 1/7) for 2, 3."""
    raw = [ratio ** (count - 1 - i) for i in range(count)]
    return tuple(w / sum(raw) for w in raw)


def octave_weights(count: int) -> tuple[float, ...]:
    """The style weight's share of each octave, the image's own first, each half the one before."""
    return _falling(2.0, count)


def layer_weights(kind: str, count: int) -> tuple[float, ...]:
    return _falling(4.0 if kind == "shallow" else 1.0, count)


def activation_scale(features: torch.Tensor) -> torch.Tensor:
    """The unit of the smoothing temperature at one layer: the spread (standard deviation) of an
    image's own activations there."""
    return features.float().std().clamp_min(EPS)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def chroma_variation(image: torch.Tensor) -> torch.Tensor:
    """The total variation of the colour difference channels R - Y and B - Y (Rec. 601 Y)."""
    y = luminance(image)
    return total_variation(torch.cat([image[:, 0:1] - y, image[:, 2:3] - y], 1))


@dataclass(frozen=True)
class Weights:
    content: float = 1.0
    style: float = 1.0
    tv: float = 0.0
    chroma: float = 0.0
    patch: float = 0.0
    pixel: float = 0.0


@dataclass(frozen=True)
class LossSettings:
    """Everything that decides the loss besides the network and the images."""

    smoothing: str = "softmax"
    temperature: float = 1.0
    temperature_unit: str = "spread"
    smoothed_layers: frozenset = frozenset()
    style_stats: str = "gram"
    layer_weights: str = "equal"
    scaling: str = "normalised"
    weights: Weights = Weights()
    style_octaves: int = 1  # the image and its halvings whose style statistics are matched


@dataclass(frozen=True)
class StyleTargets:
    """What one scale of a job optimises towards, whatever the region optimised: computed once
    from the whole content image (`view`) and the style images."""

    units: dict[str, torch.Tensor]  # each layer's temperature unit (activation_scale of the content)
    # The blended style statistics, or (sliced) the sample of positions (C, K), of the style
    # layers matched at this scale (those with STYLE_MIN_POSITIONS).
    stats: dict[str, torch.Tensor]
    norms: dict[str, torch.Tensor]  # each style layer's normaliser, ||S(content) - S(style)||^2
    content_spread: torch.Tensor  # mean squared deviation of the content layer's activations
    patches: dict[str, torch.Tensor]  # each patch layer's bank of style activations (C, K)
    patch_norms: dict[str, torch.Tensor]  # each patch layer's normaliser, L_patch of the content
    # Per pixel octave matched (`pixel_octaves`), a sample of the style's pixel patches (3*P*P, K).
    pixels: tuple[torch.Tensor, ...]
    pixel_norms: tuple[torch.Tensor, ...]  # per pixel octave, the normaliser: its distance at the content
    tv_norm: torch.Tensor  # the content's total variation
    chroma_norm: torch.Tensor  # the content's chroma variation


class StyleContentLoss(nn.Module):
    """Holds the targets of one job (job-wide `StyleTargets`, the content activations of the
    region optimised) and evaluates the loss of an image against them."""

    def __init__(self, extractor: FeatureExtractor, style_layers: tuple[str, ...], content_layer: str,
                 settings: LossSettings, min_size: int = 16):
        super().__init__()
        self.extractor = extractor
        self.content_layer = content_layer
        self.settings = settings
        self.min_size = min_size
        self.paper = settings.scaling == "paper"
        self.statistic = gram if settings.style_stats == "gram" else mean_covariance
        self.sliced = settings.style_stats == "sliced"
        weights = layer_weights(settings.layer_weights, len(style_layers))
        # The public code weighs each layer 1, not 1 / the number of layers.
        weights = tuple(w * len(weights) for w in weights) if self.paper else weights
        # Octave k's copy of a layer is named "layer@k". The octaves share the style weight,
        # each half the one before it (`octave_weights`).
        octaves = settings.style_octaves
        self.network_style_layers = style_layers
        self.style_layers = tuple(_at(name, k) for k in range(octaves) for name in style_layers)
        self.layer_weights = tuple(w * o for o in octave_weights(octaves) for w in weights)
        # The nearest-patch term's layers: the middle style layer on the halved octaves, where
        # the search costs a quarter and less of the image's own (on the image itself it gained
        # nothing and cost a quarter more per step); on the image itself when it is the only octave.
        middle = style_layers[len(style_layers) // 2]
        octaves_searched = range(min(1, octaves - 1), octaves) if settings.weights.patch else ()
        self.patch_layers = tuple(_at(middle, k) for k in octaves_searched)

    def _activations(self, image: torch.Tensor, needed: Collection[str] | None = None) -> dict[str, torch.Tensor]:
        """The network's activations of `image`, and those of its style layers on the image
        halved k times for each further octave ("relu1_1@1", ...): all of them, or only the
        names in `needed`. Each pass stops at the deepest layer it needs, and an octave that
        needs none is not run: at the coarse scales most deep layers are not matched
        (STYLE_MIN_POSITIONS), and running the network through them cost a sixth of a `fast`
        job's time for nothing."""
        out = self.extractor(image, None if needed is None else [n for n in self.extractor.layers if n in needed])
        for k in range(1, self.settings.style_octaves):
            names = [n for n in self.network_style_layers if needed is None or _at(n, k) in needed]
            if names:
                smaller = self.extractor(_octave(image, k, self.min_size), names)
                out.update({_at(name, k): smaller[name] for name in names})
        return out

    def _smoothed(self, raw: dict[str, torch.Tensor], units: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # In fp32: under bf16 autocast the network's activations arrive in bf16, whose 8-bit
        # mantissa would make exp(z - logsumexp(z)) lose most of its digits.
        # With normalised losses every layer is measured in units of its spread: random-weight
        # Inception-v3 reaches 1e10, whose squared Gram differences overflow fp32; the
        # normalised losses do not change.
        # A smoothed layer's values do not depend on that unit (the softmax of f / T, times
        # the element count), so only the layers left as they are are divided by it, which
        # saves a pass over each full-size activation, forward and backward.
        s = self.settings
        out = {}
        for name, f in raw.items():
            if s.smoothing != "none" and _layer_of(name) in s.smoothed_layers:
                temperature = s.temperature * (units[name] if s.temperature_unit == "spread" else 1.0)
                out[name] = smooth(f.float(), s.smoothing, temperature, scaled=not self.paper)
            else:
                out[name] = f.float() if self.paper else f.float() / units[name]
        return out

    def _stat(self, features: torch.Tensor) -> torch.Tensor:
        s = self.statistic(features)
        return s / features.shape[1] if self.paper else s  # the public code's Gram / (C*H*W)

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d = (a - b).pow(2)
        return d.mean() if self.paper else d.sum()

    def _style_part(self, features: torch.Tensor, share: float) -> torch.Tensor:
        """One style's part of a layer's target, `share` being its blend weight: its statistic
        weighed by the share, or (sliced) a sample of its positions in proportion to it."""
        if self.sliced:
            return _sample_positions(features, round(SLICED_SAMPLE * share))
        return self._stat(features) * share

    def _style_distance(self, features: torch.Tensor, target: torch.Tensor,
                        directions: torch.Generator) -> torch.Tensor:
        if self.sliced:
            return sliced_distance(features, target, directions)
        return self._distance(self._stat(features), target)

    @torch.no_grad()
    def style_targets_for(self, view: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> StyleTargets:
        """view: the whole content image (1, 3, H, W); styles: [(image (1, 3, h, w), blend weight), ...]."""
        raw = self._activations(view)
        # The temperature's unit: the spread of the content's own activations at each layer.
        units = {name: activation_scale(f) for name, f in raw.items()}
        feats = self._smoothed(raw, units)
        total = sum(w for _, w in styles)
        # The style layers matched at this scale: those with enough positions (STYLE_MIN_POSITIONS).
        parts = {name: [] for name in self.style_layers if self.paper or _positions(feats[name]) >= STYLE_MIN_POSITIONS}
        banks = {name: [] for name in self.patch_layers}
        for image, weight in styles:
            style_feats = self._smoothed(self._activations(image, parts.keys() | banks.keys()), units)
            for name in parts:
                parts[name].append(self._style_part(style_feats[name], weight / total))
            for name in self.patch_layers:
                banks[name].append(_sample_positions(style_feats[name], round(PATCH_BANK * weight / total)))
        # A blend is the weighted sum of the styles' statistics, or (sliced) the union of their samples.
        stats = {name: torch.cat(p, 1) if self.sliced else sum(p) for name, p in parts.items()}
        patches = {name: torch.cat(bank, 1) for name, bank in banks.items()}
        patch_norms = {name: patch_distance(feats[name], patches[name]).clamp_min(EPS) for name in self.patch_layers}
        # The normalisers draw their directions in the order the loss does at every step, so
        # that each term is exactly 1 at the content image.
        directions = _directions()
        if self.paper:
            norms = {name: torch.ones((), device=view.device) for name in stats}
        else:
            norms = {name: self._style_distance(feats[name], stats[name], directions).clamp_min(EPS)
                     for name in stats}
        pixels, pixel_norms = self._pixel_targets(view, styles, total, directions)
        c = feats[self.content_layer].float()
        return StyleTargets(units, stats, norms, (c - c.mean()).pow(2).mean(), patches, patch_norms,
                            pixels, pixel_norms,
                            total_variation(view).clamp_min(EPS), chroma_variation(view).clamp_min(1e-6))

    def _pixel_targets(self, view: torch.Tensor, styles: list[tuple[torch.Tensor, float]], total: float,
                       directions: torch.Generator):
        """Per pixel octave, a fixed sample of the styles' pixel patches (in proportion to
        their blend weights) and the normaliser, the content's distance to it."""
        if not self.settings.weights.pixel:
            return (), ()
        samples = tuple(
            torch.cat([pixel_patches(_pixel_octave(image, k), round(SLICED_SAMPLE * weight / total), _fixed())
                       for image, weight in styles], 1)
            for k in range(pixel_octaves(view)))
        norms = tuple(_pixel_distance(_pixel_octave(view, k), sample, directions).clamp_min(EPS)
                      for k, sample in enumerate(samples))
        return samples, norms

    @torch.no_grad()
    def set_content(self, content: torch.Tensor, targets: StyleTargets, content_share: float = 1.0) -> None:
        """Optimise the region `content` (the whole image or one tile of it) towards `targets`,
        the content term weighed `content_share` times the content weight (the pipeline's
        coarser scales keep less of it: scales.content_share)."""
        self.targets, self.content_share = targets, content_share
        self.directions = _directions()
        c = self._smoothed(self.extractor(content, [self.content_layer]), targets.units)[self.content_layer].float()
        self.content_target = c
        # The content's spread over the whole image, counted over this region's elements.
        self.content_norm = (torch.ones((), device=c.device) if self.paper
                             else (targets.content_spread * c.numel()).clamp_min(EPS))

    def set_targets(self, content: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> None:
        """The whole `content` image optimised towards the `styles`."""
        self.set_content(content, self.style_targets_for(content, styles))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        t = self.targets
        feats = self._smoothed(self._activations(image, t.stats.keys() | {self.content_layer, *self.patch_layers}),
                               t.units)
        style = sum(w * self._style_distance(feats[name], t.stats[name], self.directions) / t.norms[name]
                    for w, name in zip(self.layer_weights, self.style_layers) if name in t.stats)
        content = self._distance(feats[self.content_layer].float(), self.content_target) / self.content_norm
        w = self.settings.weights
        style_weight = w.style * PAPER_STYLE_WEIGHT if self.paper else w.style
        total = w.content * self.content_share * content + style_weight * style
        parts = {"content": float(content.detach()), "style": float(style.detach())}
        if self.patch_layers:
            patch = sum(patch_distance(feats[name], t.patches[name]) / t.patch_norms[name]
                        for name in self.patch_layers) / len(self.patch_layers)
            total = total + w.patch * patch
            parts["patch"] = float(patch.detach())
        if t.pixels:
            pixel = sum(_pixel_distance(_pixel_octave(image, k), sample, self.directions) / norm
                        for k, (sample, norm) in enumerate(zip(t.pixels, t.pixel_norms))) / len(t.pixels)
            total = total + w.pixel * pixel
            parts["pixel"] = float(pixel.detach())
        if w.tv:
            total = total + w.tv * total_variation(image) / t.tv_norm
        if w.chroma:
            total = total + w.chroma * chroma_variation(image) / t.chroma_norm
        return total, parts


# The most style positions a patch layer's bank holds: the search costs positions x bank x
# channels per step.
PATCH_BANK = 4096


def _sample_positions(features: torch.Tensor, count: int) -> torch.Tensor:
    """At most `count` of the positions of `features` (1, C, H, W), a random subset that is the
    same for every job: (C, K)."""
    f = features.float().flatten(2)[0]
    return f[:, _random_subset(f.shape[1], count, _fixed()).to(f.device)]


def patch_distance(features: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The mean squared distance of each position of `features` (1, C, H, W) to the column of
    `bank` (C, K) most like it by cosine similarity (the nearest-neighbour search itself is not
    differentiated). Searched `chunk` positions at a time to bound the similarity matrix."""
    f = features.float().flatten(2)[0]
    # In fp32 as the statistics: autocast would run the search's product in bf16.
    with torch.no_grad(), torch.autocast(f.device.type, enabled=False):
        unit_bank = bank / bank.norm(dim=0, keepdim=True).clamp_min(EPS)
        unit = f / f.norm(dim=0, keepdim=True).clamp_min(EPS)
        nearest = torch.cat([(part.T @ unit_bank).argmax(1) for part in unit.split(chunk, 1)])
    return (f - bank[:, nearest]).pow(2).sum(0).mean()


# The most positions the sliced distance sorts per layer, of the image and of the style: at
# 256 px the image's relu1_1 has 49152, whose sorts alone took longer than the network's pass on
# two CPU cores; sampled to this many the job took 1.5 times the means and covariances' time.
SLICED_SAMPLE = 4096
# The fewest positions (16 x 16) a style layer has over the whole image at a scale for its
# distribution to be matched there; the layers with fewer are left out of the style term at
# that scale, with their weight. A position of a deep layer sees a large part of the image, and
# a distribution of a few dozen of them (relu5_1 has 8 x 5 at the 128 px scale, 2 x 1 on its
# quarter) is met by the style's few large areas somewhere in the picture: The Starry Night's
# moon in the rocket's sky. With them left out, more of each photo's light and dark areas
# stayed where they are, at the same texture and structure, and a job took less time
# (docs/quality.md, thirty-first round). Not under `scaling="paper"`, the public code's loss.
STYLE_MIN_POSITIONS = 256


def _positions(features: torch.Tensor) -> int:
    return features.shape[-2] * features.shape[-1]


# The most random directions a step projects a layer's (or the pixel patches') positions on.
# Heitz et al. draw as many as the layer has channels (512 at relu4_1 and relu5_1, 147 for the
# pixel patches); the sorts of their projections were a quarter of a `balanced` job's time on
# the CPU. Drawn afresh at every step, 64 directions a step still cover every layer's channels
# many times over a scale's steps (Adam's momentum averages about ten of them), and on the
# quality benchmark's pairs they transferred as much texture at the same structure
# (docs/performance.md).
SLICED_DIRECTIONS = 64


def _directions() -> torch.Generator:
    """The random directions' source, restarted for each region so that a job repeats."""
    return torch.Generator().manual_seed(0)


def sliced_distance(features: torch.Tensor, sample: torch.Tensor, directions: torch.Generator) -> torch.Tensor:
    """The sliced Wasserstein distance (squared) between the positions of `features` (1, C, H, W)
    and the style's `sample` of positions (C, K), each a point in C dimensions. At most
    SLICED_SAMPLE positions of `features` take part, a fresh random subset each call."""
    f = features.float().flatten(2)[0]
    f = f[:, _random_subset(f.shape[1], SLICED_SAMPLE, directions).to(f.device)]
    return _sorted_projections_distance(f, sample, directions)


def _sorted_projections_distance(points: torch.Tensor, sample: torch.Tensor, directions: torch.Generator) -> torch.Tensor:
    """Between two sets of points in C dimensions, `points` (C, N) and `sample` (C, K): the mean
    squared difference between their sorted projections on min(C, SLICED_DIRECTIONS) random
    unit directions drawn from `directions`, summed over the directions. Where the counts differ
    the sample's sorted projections are resampled (as quantiles) to the points' count."""
    channels = points.shape[0]
    with torch.autocast(points.device.type, enabled=False):
        d = torch.randn(min(channels, SLICED_DIRECTIONS), channels, generator=directions).to(points.device)
        d = d / d.norm(dim=1, keepdim=True)
        mine = (d @ points.float()).sort(1).values
        theirs = (d @ sample).sort(1).values
        if theirs.shape[1] != mine.shape[1]:
            theirs = F.interpolate(theirs[None], size=mine.shape[1], mode="linear", align_corners=True)[0]
        return (mine - theirs).pow(2).mean(1).sum()


# The pixel patches' side, and the octaves of the image they are compared on (the image and it
# halved once and twice, weighed alike). Weighed alike rather than by the style octaves' shares
# 4/7, 2/7, 1/7, they transferred more texture at the same structure (docs/quality.md,
# fourteenth round). Not halved 3 and 4 times too (patches of 56 and 112 px, a quarter of the
# image at `fast`): a distribution of so few, so large patches is met in part by copying the
# style's composition (at `fast`, The Starry Night's moon and cypress over a rocket's night sky,
# where the painting has them), and the photo's light and dark areas went with it (layout 0.20
# against 0.37 on the held-out pairs at `fast`, 0.13 against 0.25 at `balanced`, for 0.01 to
# 0.02 of texture; docs/quality.md, thirtieth round).
# An octave's short side stays at least PIXEL_MIN_SIDE.
# The halved octaves are matched only where they are at least PIXEL_MIN_LONG_SIDE px on their
# long side, their patches a ninth of it or less: for the same reason, at the pyramid's coarse
# scales (at 128 px the third octave is 32 x 21 px, with 390 patches of a fifth of its width).
# With the layers' rule it kept more of the photos' light and dark areas again at the same
# texture (docs/quality.md, thirty-first round).
PIXEL_PATCH = 7
PIXEL_OCTAVES = 3
PIXEL_MIN_SIDE = 16
PIXEL_MIN_LONG_SIDE = 64


def pixel_octaves(image: torch.Tensor) -> int:
    """How many of the PIXEL_OCTAVES octaves of `image` (1, 3, H, W) its pixel patches are
    matched on: the image itself, and each halving at least PIXEL_MIN_LONG_SIDE px long."""
    return 1 + sum(max(_pixel_octave(image, k).shape[-2:]) >= PIXEL_MIN_LONG_SIDE for k in range(1, PIXEL_OCTAVES))


def pixel_patches(image: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` of the PIXEL_PATCH x PIXEL_PATCH patches of `image` (1, 3, H, W), at random
    positions drawn from `generator` (all of them, in order, when there are no more), each a
    column as F.unfold gives it: (3 * P * P, K). Gathered at the chosen positions only: unfolding
    every patch of a 1024 px image would take 147 values a pixel. One `index_select` over the
    flattened pixels: its gradient is an `index_add_`, which on the CPU sums overlapping
    patches in the same order whatever the number of threads (advanced indexing's gradient,
    an `index_put_` that accumulates, adds them in parallel in an order that changes with the
    threads, and so did the results), and which took a sixth of the time of one gather per
    offset in the patch (2.3 against 14 ms a step for 4096 patches of a 451x300 image).
    Only whole patches are taken, so a pixel at the border lies in fewer of them (a corner
    pixel in one, against P * P inside): the term moves it least, which left a light rim a
    pixel or two wide on some results. The pipeline paints every scale with a margin of the
    border pixels repeated, cropped off after, for it (pipeline.MARGIN). Mirroring the image
    out for this term alone, so that a border pixel lies in as many patches, cost nearly a
    fifth of the texture and left a dark line a few pixels inside; weighing the border's
    gradient up by the missing patches painted a dark frame, and by its square root took a
    quarter off the rim, too little to see (docs/quality.md, twenty-seventh round)."""
    p = PIXEL_PATCH
    height, width = image.shape[-2:]
    h, w = height - p + 1, width - p + 1
    chosen = _random_subset(h * w, count, generator).to(image.device)
    corners = (chosen // w) * width + chosen % w  # each patch's top-left pixel, in the flattened image
    offsets = torch.tensor([dy * width + dx for dy in range(p) for dx in range(p)], device=image.device)
    pixels = image[0].float().flatten(1).index_select(1, (offsets[:, None] + corners).flatten())  # (3, P*P*K)
    return pixels.reshape(3 * p * p, chosen.numel())


def _pixel_distance(image: torch.Tensor, sample: torch.Tensor, directions: torch.Generator) -> torch.Tensor:
    return _sorted_projections_distance(pixel_patches(image, SLICED_SAMPLE, directions), sample, directions)


def _pixel_octave(image: torch.Tensor, k: int) -> torch.Tensor:
    return _octave(image, k, PIXEL_MIN_SIDE)


def _random_subset(total: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """The indices of at most `count` of `total` items: a random subset drawn from `generator`,
    or all of them in order (drawing nothing) when there are no more."""
    return torch.randperm(total, generator=generator)[:count] if total > count else torch.arange(total)


def _fixed() -> torch.Generator:
    """The style samples' source: the same positions for every job."""
    return torch.Generator().manual_seed(0)


def _at(layer: str, octave: int) -> str:
    return f"{layer}@{octave}" if octave else layer


def _layer_of(name: str) -> str:
    """The network layer of a name `_at` made."""
    return name.partition("@")[0]


def _octave(image: torch.Tensor, k: int, min_size: int) -> torch.Tensor:
    """`image` halved k times (antialiased, differentiable), its short side kept at least
    `min_size` so that the network still accepts it."""
    h, w = image.shape[-2:]
    factor = max(2.0 ** -k, min_size / min(h, w))
    if factor >= 1:
        return image
    return F.interpolate(image, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="bilinear",
                         align_corners=False, antialias=True)
