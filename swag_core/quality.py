"""Measurements of a stylised image, so that "it is stylised" is a number.

- `colour_shift`: how far the colour statistics (mean and covariance of the RGB pixels) moved
  from the content's toward the style's: 0 = not at all, 1 = all the way.
- `texture_shift`: the same for texture, measured as Gram matrices of a fixed reference network
  (a random-weight VGG-19, seed 0, layers relu1_1..relu4_1) that no job's settings change.
- `ssim`: structural similarity of the luminance to the content's (Wang et al. 2004, 11x11
  Gaussian window, sigma 1.5): does the content stay recognisable.
Images are compared at the same size, (1, 3, H, W) tensors in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from .images import luminance
from .losses import gram
from .networks import FeatureExtractor
from .weights import load_model

_REFERENCE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _colour_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = image.flatten(2)[0].double()  # (3, N)
    return pixels.mean(1), torch.cov(pixels)


def _colour_distance(a, b) -> float:
    (ma, ca), (mb, cb) = a, b
    return float((ma - mb).norm() + (ca - cb).norm() * 4)  # covariances are ~1/4 of a mean's scale


def _shift(d_content: float, d_output: float) -> float:
    return 1.0 - d_output / max(d_content, 1e-12)


def colour_shift(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> float:
    target = _colour_stats(style)
    return _shift(_colour_distance(_colour_stats(content), target), _colour_distance(_colour_stats(output), target))


@lru_cache(maxsize=1)
def _reference() -> FeatureExtractor:
    arch, model = load_model("vgg19", "random", seed=0)
    return FeatureExtractor(arch, model, _REFERENCE_LAYERS)


@torch.no_grad()
def texture_shift(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> float:
    net = _reference()
    grams = [{k: gram(v) for k, v in net(img.float().cpu()).items()} for img in (content, output, style)]
    c, o, s = grams
    return sum(_shift(float((c[k] - s[k]).norm()), float((o[k] - s[k]).norm())) for k in _REFERENCE_LAYERS) / len(
        _REFERENCE_LAYERS)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    x, y = luminance(a.float().cpu()), luminance(b.float().cpu())
    coords = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-coords**2 / (2 * 1.5**2))
    g = (g / g.sum())
    window = (g[:, None] * g[None, :]).view(1, 1, 11, 11)

    def blur(t):
        return F.conv2d(t, window)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def measure(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    """All three; the style is brought to the output's long side for the colour and texture terms."""
    scale = max(output.shape[-2:]) / max(style.shape[-2:])
    style = F.interpolate(style, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
    return {
        "colour_shift": colour_shift(content, output, style),
        "texture_shift": texture_shift(content, output, style),
        "ssim": ssim(content, output),
    }
