"""The pyramid of a job: the sizes it optimises at, coarse to fine, and the iterations each one gets."""

from __future__ import annotations

import math

from ..errors import SwagError
from ..options import Options


def fit(height: int, width: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def within(size: tuple[int, int], pixels: int, min_side: int) -> tuple[int, int]:
    """`size`, shrunk (keeping its aspect) to at most `pixels` pixels (0 = no limit), but not
    below `min_side` on its short side, which the network needs."""
    h, w = size
    if not pixels or h * w <= pixels:
        return size
    scale = max(math.sqrt(pixels / (h * w)), min(1.0, min_side / min(h, w)))
    return max(1, math.floor(h * scale)), max(1, math.floor(w * scale))


# Each scale's long side is this many times the previous one's.
SCALE_STEP = math.sqrt(2)


def working_size(opts: Options, height: int, width: int) -> tuple[int, int]:
    """The size the job paints at: the content's, shrunk to `opts.size` on its long side."""
    return fit(height, width, min(opts.size, max(height, width)))


def content_share(size: tuple[int, int], working: tuple[int, int]) -> float:
    """The share of the content weight that a scale of `size` keeps: its pixel count over the
    working size's, at most 1. crowsonkb/style-transfer-pytorch keeps the same weight at every
    scale. Here, in a job started from the photo, the coarse scales, which paint the style's
    larger shapes, hold the photo loosely: what of the subject they lose comes back with the
    photo's detail that each finer scale starts from (pipeline.py) and with the full weight at
    the working size. On the quality benchmark's eight pairs this transferred more texture at
    the same structure; on six other pairs it did not (docs/quality.md, tenth round)."""
    return min(1.0, size[0] * size[1] / (working[0] * working[1]))


def has_full_resolution_pass(opts: Options, height: int, width: int) -> bool:
    """Whether `schedule` ends with the `full_resolution` pass: the working size is below the content's."""
    return opts.full_resolution and opts.size < max(height, width)


def _shares(count: int) -> list[float]:
    """The iterations' shares of `count` scales, coarse to fine. crowsonkb/style-transfer-pytorch
    gives the first scale 1000 and every later one 500. Here each coarser scale gets SCALE_STEP
    times the next finer one's, so each takes about SCALE_STEP times less time than the next (a
    step costs about the scale's pixels): the coarse scales, cheap, paint the style's larger
    shapes, and the finer ones, which start with the photo's detail (pipeline.py), need fewer
    steps to paint the fine texture over it; more steps there wash the photo's detail out
    (docs/quality.md, ninth round). The coarsest, which starts from the photo, gets twice its
    share, as in crowsonkb's."""
    shares = [SCALE_STEP ** (count - 1 - i) for i in range(count)]
    shares[0] *= 2
    return shares


def schedule(opts: Options, height: int, width: int, min_size: int) -> list[tuple[tuple[int, int], int]]:
    """[(size, iterations)] from coarse to fine. The working size never exceeds the content's.
    The iterations are shared out by `_shares`. `full_resolution` adds the content's own size after the
    working size, with as many iterations again as the last scale: an extra pass, not a share
    taken from the others."""
    long_side = min(opts.size, max(height, width))
    sides, side = [], opts.min_scale
    # The chain stops half a step short of the working size: 90 px grows to 511 on the way to
    # 512, and a scale of 511 would only repeat the last one, paying for it twice.
    while side * math.sqrt(SCALE_STEP) < long_side:
        sides.append(side)
        side = round(side * SCALE_STEP)
    sides.append(long_side)
    sizes = []
    for side in sides:
        size = fit(height, width, side)
        if min(size) >= min_size and size not in sizes:
            sizes.append(size)
    if not sizes:
        h, w = fit(height, width, long_side)
        raise SwagError(f"the image is too small for {opts.arch}: {w}x{h} at the working size, and the "
                        f"network needs at least {min_size} px on each side; use a larger size or image")
    sizes = sizes[-opts.iterations:]  # fewer iterations than scales: the finest ones
    shares = _shares(len(sizes))
    counts = [max(1, math.floor(opts.iterations * s / sum(shares))) for s in shares]
    counts[-1] += opts.iterations - sum(counts)
    while counts[-1] < 1:  # the one step each small share is given can leave the finest none
        counts[counts.index(max(counts))] -= 1
        counts[-1] += 1
    if has_full_resolution_pass(opts, height, width):
        sizes, counts = sizes + [(height, width)], counts + [counts[-1]]
    return list(zip(sizes, counts))
