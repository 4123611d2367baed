"""The objective of Gatys et al. (the paper's Eq. 2) over smoothed activations.

    loss(x) = content_weight * L_content + style_weight * L_style + tv_weight * L_tv

Eq. (1)  gram(F) = F F^T / M for F reshaped to C x M (M = H*W pixels).
Eq. (2)  L_content = ||F^l(x) - F^l(x_c)||^2,   L_style = sum_l w_l ||G^l(x) - G^l(x_s)||^2.

Departure from the paper: normalisation. The paper divides the style term by 4 D^2 M^2 and leaves
the content term raw, so the right weights change with the network, the image size and the
smoothing by many orders of magnitude (the public code used a style weight of 1e17). Here each
term is divided by a constant fixed per job, which makes it scale-free:
- each style layer by ||G^l(x_c) - G^l_target||^2, its value at the content image: it measures
  the fraction of the way from the content's style to the target still to go;
- the content term by the variance of the content's activations times their count;
- total variation by the content image's own total variation.
The style layers are averaged (w_l = 1 / number of layers). One set of default weights then
works for every network, with and without smoothing. The Gram matrix is divided by M (the mean
over pixels) so that targets computed at one image size compare with another.

The targets come in two parts so that a large image can be optimised in tiles against one
global style: `StyleTargets` (the style Grams, the temperature units and the normalisers, from the
whole content image and the style images, computed once per scale and cacheable across jobs) and
the content target of the region being optimised (`set_content`: the whole image or one tile).

Precision: Gram matrices are always accumulated in fp32, with autocast switched off inside them,
and activations are smoothed in fp32; under bf16 autocast only the network runs in bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .networks import FeatureExtractor
from .smoothing import smooth

EPS = 1e-12


def gram(features: torch.Tensor) -> torch.Tensor:
    """Eq. (1) per sample, in fp32 whatever the activations' precision: (B, C, H, W) -> (B, C, C).
    Autocast is off inside: it would run the product in bf16, losing the sum over M pixels."""
    with torch.autocast(features.device.type, enabled=False):
        f = features.flatten(2).float()
        return f @ f.transpose(1, 2) / f.shape[2]


def activation_scale(features: torch.Tensor) -> torch.Tensor:
    """The unit of the smoothing temperature at one layer: the spread (standard deviation) of an
    image's own activations there."""
    return features.float().std().clamp_min(EPS)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


@dataclass(frozen=True)
class Weights:
    content: float = 1.0
    style: float = 1.0
    tv: float = 0.0


@dataclass(frozen=True)
class StyleTargets:
    """What one scale of a job optimises towards, whatever the region optimised: computed once
    from the whole content image (`view`) and the style images."""

    scales: dict[str, torch.Tensor]  # each layer's temperature unit (activation_scale of the content)
    grams: dict[str, torch.Tensor]  # the blended style Gram matrices
    norms: dict[str, torch.Tensor]  # each style layer's normaliser, ||G(content) - G(style)||^2
    content_spread: torch.Tensor  # mean squared deviation of the content layer's activations
    tv_norm: torch.Tensor  # the content's total variation


class StyleContentLoss(nn.Module):
    """Holds the targets of one job (job-wide `StyleTargets`, the content activations of the
    region optimised) and evaluates the loss of an image against them."""

    def __init__(self, extractor: FeatureExtractor, style_layers: tuple[str, ...], content_layer: str,
                 smoothing: str, temperature: float, smoothed_layers: set[str], weights: Weights):
        super().__init__()
        self.extractor = extractor
        self.style_layers, self.content_layer = style_layers, content_layer
        self.smoothing, self.temperature = smoothing, temperature
        self.smoothed_layers = smoothed_layers
        self.weights = weights

    def _smoothed(self, raw: dict[str, torch.Tensor], scales: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # In fp32: under bf16 autocast the network's activations arrive in bf16, whose 8-bit
        # mantissa would make exp(z - logsumexp(z)) lose most of its digits.
        # Every layer is measured in units of its spread: random-weight Inception-v3 reaches 1e10,
        # whose squared Gram differences overflow fp32; the normalised losses do not change.
        return {
            name: smooth(f.float() / scales[name], self.smoothing, self.temperature)
            if name in self.smoothed_layers else f.float() / scales[name]
            for name, f in raw.items()
        }

    @torch.no_grad()
    def style_targets_for(self, view: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> StyleTargets:
        """view: the whole content image (1, 3, H, W); styles: [(image (1, 3, h, w), blend weight), ...]."""
        raw = self.extractor(view)
        # The temperature's unit: the spread of the content's own activations at each layer.
        scales = {name: activation_scale(f) for name, f in raw.items()}
        feats = self._smoothed(raw, scales)
        total = sum(w for _, w in styles)
        grams = {name: 0.0 for name in self.style_layers}
        for image, weight in styles:
            style_feats = self._smoothed(self.extractor(image), scales)
            for name in self.style_layers:
                grams[name] = grams[name] + gram(style_feats[name]) * (weight / total)
        norms = {name: (gram(feats[name]) - grams[name]).pow(2).sum().clamp_min(EPS) for name in self.style_layers}
        c = feats[self.content_layer].float()
        return StyleTargets(scales, grams, norms, (c - c.mean()).pow(2).mean(), total_variation(view).clamp_min(EPS))

    @torch.no_grad()
    def set_content(self, content: torch.Tensor, targets: StyleTargets) -> None:
        """Optimise the region `content` (the whole image or one tile of it) towards `targets`."""
        self.targets = targets
        c = self._smoothed(self.extractor(content), targets.scales)[self.content_layer].float()
        self.content_target = c
        # The content's spread over the whole image, counted over this region's elements.
        self.content_norm = (targets.content_spread * c.numel()).clamp_min(EPS)

    def set_targets(self, content: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> None:
        """The whole `content` image optimised towards the `styles`."""
        self.set_content(content, self.style_targets_for(content, styles))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        t = self.targets
        feats = self._smoothed(self.extractor(image), t.scales)
        style = sum(
            (gram(feats[name]) - t.grams[name]).pow(2).sum() / t.norms[name] for name in self.style_layers
        ) / len(self.style_layers)
        content = (feats[self.content_layer].float() - self.content_target).pow(2).sum() / self.content_norm
        w = self.weights
        total = w.content * content + w.style * style
        if w.tv:
            total = total + w.tv * total_variation(image) / t.tv_norm
        return total, {"content": float(content.detach()), "style": float(style.detach())}
