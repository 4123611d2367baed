"""A style image's frame: the plain border that a scan or a photograph of a painting often has
(a museum scan's black surround, a mount), cut off before the style is taken from the image.

Why: the engine paints the style's frame round the result. With The Starry Night's scan (a
black surround, then the canvas's light rim) the cat came out inside a black frame with a
light inner line, and with the frame cut off without one (docs/quality.md, twenty-fourth
round). How the style's border reaches the result's was not isolated further than this: the
border positions of both meet the same padding, and without the pixel patches the frame still
came through, so it is the network's terms that carry it (twenty-seventh round). A frame is
no part of a painting's style.

What counts as a frame: on every side, a run of outer lines (rows or columns), each of one
plain colour, the colour of the outermost line, that differs from the picture inside it. A
plain band that is the picture's own is kept: a sky at the top of a landscape (not all round),
the paper round a drawing (the picture inside is mostly that paper too), a band of FRAME_MAX of
the side or more (the outer band of a painting of nested squares). A frame of another colour
on each side is not seen (each side's lines end in the others' colour), nor one round an image
under SMALLEST px (it cannot be told from the picture there, and the cut would leave too
little).
"""

from __future__ import annotations

import math

import torch

# A frame's line varies along its length by less than this (the largest of the channels'
# standard deviations, colours in 0..1): a JPEG's black surround varies by about 0.01.
LINE_SPREAD = 0.03
# Each of its lines stays within this of the outermost line's colour (in any channel).
SAME_COLOUR = 0.06
# The picture inside the frame (its median colour) differs from the frame by at least this in
# some channel; the paper round a drawing does not.
FRAME_CONTRAST = 0.15
# A plain band of this fraction of the side or more is kept, as the picture's own: a scan's
# surround is a few pixels (The Starry Night's 1.5% of the side), a painted ground all round
# is wider.
FRAME_MAX = 0.05
# No frame is looked for round an image whose short side is under this: the style's own
# smallest useful size.
SMALLEST = 64
# Past a frame, this fraction of the side more is cut (at least 2 px): a frame's edge is
# blurred, or tilted by the scan, and a canvas has an unpainted rim; cut at the frame alone,
# The Starry Night left a faint light line round the result.
EDGE = 0.01


def without_frame(rgb: torch.Tensor) -> torch.Tensor:
    """`rgb` (1, 3, H, W) in [0, 1] with its frame cut off; as it is without one."""
    top, bottom, left, right = frame_widths(rgb)
    height, width = rgb.shape[-2:]
    return rgb[..., top:height - bottom, left:width - right]


def frame_widths(rgb: torch.Tensor) -> tuple[int, int, int, int]:
    """The lines to cut from the top, bottom, left and right of `rgb` (1, 3, H, W): a frame's
    on every side, or none. A frame goes all round; a plain band on some sides only is the
    picture's own (a photo's clear sky is one at its top)."""
    if min(rgb.shape[-2:]) < SMALLEST:
        return (0, 0, 0, 0)
    pixels = rgb[0].float().permute(1, 2, 0)  # (H, W, 3): rows are lines of the top and bottom
    columns = pixels.transpose(0, 1)  # (W, H, 3): lines of the left and right
    widths = (_frame_width(pixels), _frame_width(pixels.flip(0)),
              _frame_width(columns), _frame_width(columns.flip(0)))
    return widths if all(widths) else (0, 0, 0, 0)


def _frame_width(lines: torch.Tensor) -> int:
    """`lines` (L, N, 3), the outermost first: how many to cut, the frame's and its edge's."""
    count = len(lines)
    limit = int(count * FRAME_MAX)
    outer = lines[0].median(0).values
    width = 0
    while (width < limit and lines[width].std(0).max() < LINE_SPREAD
           and (lines[width].mean(0) - outer).abs().max() < SAME_COLOUR):
        width += 1
    if width == 0 or width >= limit:
        return 0
    cut = width + max(2, math.ceil(EDGE * count))
    # The picture's colour: the median over the lines inside the cut, at most 32 of them.
    inside = lines[cut::math.ceil((count - cut) / 32)].reshape(-1, 3).median(0).values
    return cut if (inside - outer).abs().max() >= FRAME_CONTRAST else 0
