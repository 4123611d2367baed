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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .networks import FeatureExtractor
from .smoothing import smooth

EPS = 1e-12


def gram(features: torch.Tensor) -> torch.Tensor:
    """Eq. (1) per sample, in fp32 whatever the activations' precision: (B, C, H, W) -> (B, C, C)."""
    f = features.flatten(2).float()
    return f @ f.transpose(1, 2) / f.shape[2]


def total_variation(image: torch.Tensor) -> torch.Tensor:
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


@dataclass(frozen=True)
class Weights:
    content: float = 1.0
    style: float = 1.0
    tv: float = 0.0


class StyleContentLoss(nn.Module):
    """Holds the targets of one job (content activations, blended style Grams, normalisers) and
    evaluates the loss of an image against them."""

    def __init__(self, extractor: FeatureExtractor, style_layers: tuple[str, ...], content_layer: str,
                 smoothing: str, temperature: float, smoothed_layers: set[str], weights: Weights):
        super().__init__()
        self.extractor = extractor
        self.style_layers, self.content_layer = style_layers, content_layer
        self.smoothing, self.temperature = smoothing, temperature
        self.smoothed_layers = smoothed_layers
        self.weights = weights

    def _smoothed(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: smooth(f, self.smoothing, self.temperature * self.scales[name])
            if name in self.smoothed_layers else f
            for name, f in raw.items()
        }

    @torch.no_grad()
    def set_targets(self, content: torch.Tensor, styles: list[tuple[torch.Tensor, float]]) -> None:
        """content: (1, 3, H, W); styles: [(image (1, 3, h, w), blend weight), ...]."""
        raw = self.extractor(content)
        # The temperature's unit: the spread of the content's own activations at each layer.
        self.scales = {name: f.float().std().clamp_min(EPS) for name, f in raw.items()}
        feats = self._smoothed(raw)
        total = sum(w for _, w in styles)
        self.style_targets = {name: 0.0 for name in self.style_layers}
        for image, weight in styles:
            style_feats = self._smoothed(self.extractor(image))
            for name in self.style_layers:
                self.style_targets[name] = self.style_targets[name] + gram(style_feats[name]) * (weight / total)
        self.style_norms = {
            name: (gram(feats[name]) - self.style_targets[name]).pow(2).sum().clamp_min(EPS)
            for name in self.style_layers
        }
        c = feats[self.content_layer].float()
        self.content_target = c
        self.content_norm = (c - c.mean()).pow(2).sum().clamp_min(EPS)
        self.tv_norm = total_variation(content).clamp_min(EPS)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self._smoothed(self.extractor(image))
        style = sum(
            (gram(feats[name]) - self.style_targets[name]).pow(2).sum() / self.style_norms[name]
            for name in self.style_layers
        ) / len(self.style_layers)
        content = (feats[self.content_layer].float() - self.content_target).pow(2).sum() / self.content_norm
        w = self.weights
        total = w.content * content + w.style * style
        if w.tv:
            total = total + w.tv * total_variation(image) / self.tv_norm
        return total, {"content": float(content.detach()), "style": float(style.detach())}
