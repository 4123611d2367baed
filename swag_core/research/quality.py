"""Measures of a stylised image, so that "it looks like a painting of the photo" has numbers
beside the eye, and baselines that show what each number is worth.

Every measure compares the output with the content and the style at the output's size
((1, 3, H, W) tensors in [0, 1]; the style is brought to the output's long side, the scale at
which the engine applies it):

- `colour_transfer`: how far the colour statistics (mean and covariance of the Lab pixels)
  moved from the content's toward the style's: 0 = not at all, 1 = all the way.
- `texture_transfer`: the same for texture, measured on luminance whose mean and contrast are
  normalised first, so that a colour grade, which only moves those, scores about 0. Texture is
  described by a fixed bank of oriented band-pass filters over five octaves (a small
  Portilla-Simoncelli-like description: the log energy of each band, how sparse each band is,
  and how bands of neighbouring orientations and scales co-vary). It shares nothing with the
  engine's networks, so the engine cannot optimise the measure itself.
- `structure`: SSIM of the luminance against the content's (Wang et al. 2004, 11x11 Gaussian
  window, sigma 1.5): is the subject's detail still there.
- `layout`: the correlation of the luminance with the content's, both brought to 32 px on
  their long side: are the photo's large light and dark areas where they were (1), unrelated to
  the result's (0) or inverted (-1). SSIM compares a few pixels at a time and misses them: an
  image that keeps the photo's outlines over the style's own light and dark areas scores well
  on structure and about 0 here.
- `grain`: pixel-level chroma energy (what a 1-pixel Gaussian blur removes from the a and b
  channels of Lab), divided by the larger of the content's and the style's own: 1 = no more
  colour grain than the inputs have.
- `rim`: how much the image's outermost pixels stand out in lightness from those just inside
  them: the mean over the four sides of |the outer RIM_WIDTH px' mean luminance - the next
  RIM_INSIDE px'|. A photo's own rim is small; a light or dark line painted along the border
  raises it (the content-unchanged row is the one to read it against).

Baselines (`BASELINES`): the content unchanged, and a colour grade (each Lab channel's mean
and spread moved to the style's, no network). A stylisation is worth something where it beats
both on texture at a structure the grade cannot fake.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..imaging.images import luminance

# --- colour -----------------------------------------------------------------------------------

_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """sRGB (1, 3, H, W) in [0, 1] -> CIE Lab (D65), L in 0..100."""
    x = image.double()
    linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,bjhw->bihw", _RGB_TO_XYZ.double(), linear) / _WHITE.double().view(1, 3, 1, 1)
    f = torch.where(xyz > (6 / 29) ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.cat([116 * f[:, 1:2] - 16, 500 * (f[:, 0:1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:3])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_lab`, clipped to [0, 1], in float32."""
    lab = lab.double()
    fy = (lab[:, 0:1] + 16) / 116
    f = torch.cat([fy + lab[:, 1:2] / 500, fy, fy - lab[:, 2:3] / 200], 1)
    xyz = torch.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE.double().view(1, 3, 1, 1)
    linear = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_XYZ.double()), xyz).clamp(0, 1)
    rgb = torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1).float()


def _colour_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = rgb_to_lab(image).flatten(2)[0]  # (3, N)
    return pixels.mean(1), torch.cov(pixels)


def _colour_distance(a, b) -> float:
    (ma, ca), (mb, cb) = a, b
    # A covariance is in squared units: its square root's scale compares with the means'.
    return float((ma - mb).norm() + (ca - cb).norm().sqrt())


def _transfer(d_content: float, d_output: float) -> float:
    """1 - the share of the content-to-style distance still left at the output."""
    return 1.0 - d_output / max(d_content, 1e-12)


def colour_transfer(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> float:
    target = _colour_stats(style)
    return _transfer(_colour_distance(_colour_stats(content), target),
                     _colour_distance(_colour_stats(output), target))


# --- texture ----------------------------------------------------------------------------------

_OCTAVES = 5
_ORIENTATIONS = 4


def _filter_bank() -> torch.Tensor:
    """Even and odd Gabor filters (wavelength 4 px, 9x9) at four orientations: (8, 1, 9, 9)."""
    r = torch.arange(9, dtype=torch.float64) - 4
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    envelope = torch.exp(-(xx**2 + yy**2) / (2 * 1.6**2))
    filters = []
    for k in range(_ORIENTATIONS):
        theta = math.pi * k / _ORIENTATIONS
        u = xx * math.cos(theta) + yy * math.sin(theta)
        even = envelope * torch.cos(2 * math.pi * u / 4)
        even = even - even.mean()  # no response to flat areas
        odd = envelope * torch.sin(2 * math.pi * u / 4)
        filters += [even / even.abs().sum(), odd / odd.abs().sum()]
    return torch.stack(filters)[:, None].float()


_BANK = _filter_bank()


def _normalised_luminance(image: torch.Tensor) -> torch.Tensor:
    y = luminance(image.float().cpu())
    return (y - y.mean()) / y.std().clamp_min(1e-6)


def _octaves_of(image: torch.Tensor) -> int:
    """How many octaves (each half the previous size) stay at least 9 px, the filters' size."""
    side, n = min(image.shape[-2:]), 0
    while n < _OCTAVES and side >= 9:
        side, n = (side - 1) // 2 + 1, n + 1
    return n


def texture_stats(image: torch.Tensor, octaves: int = _OCTAVES) -> torch.Tensor:
    """A vector describing the texture of `image`'s luminance, independent of its mean and
    contrast: per octave and orientation, the log energy and the sparsity of the band's
    magnitude; per octave, the correlations of the magnitudes across orientations; and each
    orientation's correlation with the next coarser octave."""
    y = _normalised_luminance(image)
    energy, sparsity, cross, parent = [], [], [], []
    previous = None
    for _ in range(min(octaves, _octaves_of(image))):
        r = F.conv2d(F.pad(y, (4, 4, 4, 4), mode="reflect"), _BANK)
        magnitude = (r[:, 0::2] ** 2 + r[:, 1::2] ** 2).sqrt()[0].flatten(1)  # (orientations, N)
        mean = magnitude.mean(1).clamp_min(1e-6)
        energy.append(mean.log())
        sparsity.append(magnitude.std(1) / mean)
        centred = (magnitude - magnitude.mean(1, keepdim=True)) / magnitude.std(1, keepdim=True).clamp_min(1e-6)
        corr = centred @ centred.T / centred.shape[1]
        cross.append(corr[torch.triu_indices(_ORIENTATIONS, _ORIENTATIONS, 1).unbind()])
        if previous is not None:
            up = F.interpolate(centred.view(1, _ORIENTATIONS, *r.shape[-2:]), size=previous[1], mode="bilinear",
                               align_corners=False).flatten(2)[0]
            up = (up - up.mean(1, keepdim=True)) / up.std(1, keepdim=True).clamp_min(1e-6)
            parent.append((previous[0] * up).mean(1))
        previous = (centred, r.shape[-2:])
        y = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), 3, stride=2)  # blur, then halve
    # Groups weighted so each counts about equally whatever its length and natural range.
    groups = [(energy, 1.0), (sparsity, 2.0), (cross, 2.0), (parent, 2.0)]
    return torch.cat([torch.cat(g) * w / math.sqrt(max(1, sum(len(t) for t in g))) for g, w in groups if g])


def texture_transfer(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> float:
    octaves = min(_octaves_of(im) for im in (content, output, style))  # comparable vectors
    c, o, s = (texture_stats(im, octaves) for im in (content, output, style))
    return _transfer(float((c - s).norm()), float((o - s).norm()))


# --- structure and grain ---------------------------------------------------------------------

def _gaussian(sigma: float, radius: int) -> torch.Tensor:
    coords = torch.arange(2 * radius + 1, dtype=torch.float32) - radius
    g = torch.exp(-coords**2 / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, 2 * radius + 1, 2 * radius + 1)


def structure(content: torch.Tensor, output: torch.Tensor) -> float:
    """SSIM of the luminance."""
    x, y = luminance(content.float().cpu()), luminance(output.float().cpu())
    window = _gaussian(1.5, 5)

    def blur(t):
        return F.conv2d(t, window)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


# Not the engine's layout step (the mean of R, G and B under a Gaussian, engine/tones.py), though
# near what it lays down: its rise with `layout_weight` says the step does what it asks, not
# that the picture is better (docs/quality.md, thirty-second round).
LAYOUT_SIDE = 32


def layout(content: torch.Tensor, output: torch.Tensor) -> float:
    """Pearson correlation of the luminance at LAYOUT_SIDE px on the long side."""
    h, w = content.shape[-2:]
    scale = LAYOUT_SIDE / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    a, b = (F.interpolate(luminance(image.float().cpu()), size=size, mode="area").flatten()
            for image in (content, output))
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


def chroma_grain(image: torch.Tensor) -> float:
    """Mean squared pixel-level detail of the Lab chroma channels (a, b)."""
    ab = rgb_to_lab(image.cpu())[:, 1:].float()
    blurred = F.conv2d(F.pad(ab.reshape(-1, 1, *ab.shape[-2:]), (2, 2, 2, 2), mode="reflect"), _gaussian(1.0, 2))
    return float((ab.reshape(-1, 1, *ab.shape[-2:]) - blurred).pow(2).mean())


def grain(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> float:
    return chroma_grain(output) / max(chroma_grain(content), chroma_grain(style), 1e-6)


RIM_WIDTH, RIM_INSIDE = 2, 6


def rim(image: torch.Tensor) -> float:
    """The line along `image`'s border (the module's docstring)."""
    y = luminance(image.float().cpu())[0, 0]
    w, n = RIM_WIDTH, RIM_WIDTH + RIM_INSIDE
    sides = (y[:n], y.flip(0)[:n], y.T[:n], y.T.flip(0)[:n])  # top, bottom, left, right
    return sum(abs(float(side[:w].mean() - side[w:].mean())) for side in sides) / 4


# --- all of them, and the baselines ----------------------------------------------------------

MEASURES = ("colour", "texture", "structure", "layout", "grain", "rim")


def style_at(style: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The style brought to the output's long side."""
    scale = max(output.shape[-2:]) / max(style.shape[-2:])
    if abs(scale - 1) < 1e-6:
        return style
    size = (max(1, round(style.shape[-2] * scale)), max(1, round(style.shape[-1] * scale)))
    return F.interpolate(style, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def measure(content: torch.Tensor, output: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    style = style_at(style.float().cpu(), output)
    content, output = content.float().cpu(), output.float().cpu()
    return {
        "colour": colour_transfer(content, output, style),
        "texture": texture_transfer(content, output, style),
        "structure": structure(content, output),
        "layout": layout(content, output),
        "grain": grain(content, output, style),
        "rim": rim(output),
    }


def colour_grade(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The content with each Lab channel's mean and spread moved to the style's: what a
    colour grade alone gives, with no network."""
    c, s = rgb_to_lab(content), rgb_to_lab(style)
    cm, cs = c.mean((2, 3), keepdim=True), c.std((2, 3), keepdim=True).clamp_min(1e-6)
    sm, ss = s.mean((2, 3), keepdim=True), s.std((2, 3), keepdim=True)
    return lab_to_rgb((c - cm) / cs * ss + sm)


BASELINES = {
    "content unchanged": lambda content, style: content,
    "colour grade": colour_grade,
}
