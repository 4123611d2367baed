"""The photo's large light and dark areas, laid under the stylised image (`layout_weight`).

Not in the paper. With random weights the content term holds the photo's outlines but not its
masses: the style terms match the style's distributions over the whole image, and a style
whose tones are the same all over (a pattern, a hatching, a sky of strokes) repaints a dark
subject on a light ground in its own even tones, until the subject is an outline
(docs/quality.md, nineteenth and thirty-second rounds). This step, after the optimisation,
moves the result's masses (its lightness under a Gaussian of a 48th of the long side) `amount`
of the way to the photo's, brought by a tone curve through black and white to a mean lightness
`amount` of the way from the result's to the photo's: the lights and darks go where the photo
has them, the overall tone moves towards the photo's by `amount` squared (a quarter at the
default 0.5), and the result's finer detail, its strokes and its hues stay. 1 lays down the
photo's masses; 0 leaves the result as the optimisation painted it. Keeping the result's own
mean instead (the thirty-second round's form) kept more of the style's overall tone (colour
0.68 against 0.62 on the quality benchmark), with less texture and structure with every seed
(docs/quality.md, thirty-sixth round).

Lightness is the mean of R, G and B, not luma, and each pixel is exposed as its surroundings
are, scaled towards black where they darken and towards white where they lighten: its hue is
kept and nothing clips. Adding the same offset to R, G and B instead clipped the dark pixels
and left coloured grain (thirty-second round).

It replaces a loss term that asked for the correlation of the lightness with the photo's
(nineteenth round): at the same cost in texture the step keeps more structure, about as much
of the masses and less grain; raised to keep more of them (0.3 and up), the term painted
patches of colours that neither image has. The step costs more of the style's colour
statistics: their spread of lightness, and part of their mean, become the photo's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The masses: the lightness under a Gaussian of sigma a 48th of the long side (a subject's
# masses, not its outlines), found on the lightness brought to MASS_SIDE px on its long side
# and brought back up: the same masses as at the working size, for a fraction of the work.
MASS_SIDE = 96
MASS_SIGMA = MASS_SIDE / 48


def with_photo_layout(image: torch.Tensor, photo: torch.Tensor, amount: float) -> torch.Tensor:
    """`image` (1, 3, H, W in 0..1) with its large light and dark areas moved `amount` of the
    way to those of `photo` (the same size)."""
    if amount <= 0:
        return image
    masses, photo_masses = (_masses(t) for t in (image, photo))
    mean, photo_mean = float(masses.mean()), float(photo_masses.mean())
    moved = masses + amount * (_exposed_to(photo_masses, mean + amount * (photo_mean - mean)) - masses)
    size = tuple(image.shape[-2:])
    masses, moved = (F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in (masses, moved))
    # Each pixel exposed as its surroundings are: scaled towards black where they darken, towards
    # white where they lighten, so that its hue and its share of the strokes' contrast stay.
    darker = image * (moved / masses.clamp_min(1e-4))
    lighter = 1 - (1 - image) * ((1 - moved) / (1 - masses).clamp_min(1e-4))
    return torch.where(moved < masses, darker, lighter).clamp(0, 1)


def _masses(image: torch.Tensor) -> torch.Tensor:
    lightness = image.mean(1, keepdim=True)
    h, w = lightness.shape[-2:]
    scale = min(1.0, MASS_SIDE / max(h, w))
    small = F.interpolate(lightness, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    return _blur(small, MASS_SIGMA * max(small.shape[-2:]) / MASS_SIDE)


def _exposed_to(masses: torch.Tensor, mean: float) -> torch.Tensor:
    """`masses` through the tone curve through black and white, bent at their own mean, that
    brings their mean to `mean`: the photo says where the lights and darks lie, `mean` how light
    the whole is, and no area is pushed past black or white, where its strokes would go.
    The curve scales towards black below the bend and towards white above it; the level at the
    bend is found by bisection (the mean grows with it)."""
    bend = float(masses.mean())
    if not 0 < bend < 1:  # a photo all black or all white: no light and dark areas to lay down
        return torch.full_like(masses, mean)

    def curve(level: float) -> torch.Tensor:
        return torch.where(masses < bend, masses * (level / bend), 1 - (1 - masses) * ((1 - level) / (1 - bend)))

    low, high = 0.0, 1.0
    for _ in range(24):
        level = (low + high) / 2
        low, high = (level, high) if float(curve(level).mean()) < mean else (low, level)
    return curve((low + high) / 2)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur, the edges replicated (valid at any size)."""
    radius = max(1, round(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.pad(image, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, kernel.view(1, 1, -1, 1))
