"""Overlapping tiles of a large image and the smooth window that blends them back together.

A scale whose pixel count exceeds the tile budget is optimised one tile at a time (pipeline.py).
Neighbouring tiles overlap by at least `overlap` pixels; each tile's result is weighted by a
window that rises from near 0 at a tile edge shared with a neighbour to 1 over `overlap` pixels
(a raised cosine, so its slope is 0 at both ends), and the weighted results are divided by the
summed weights. Edges on the image's border are not faded: no other tile covers them.
"""

from __future__ import annotations

import math

import torch


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles along one axis begin: evenly spaced, the first at 0, the last ending at
    `length`, neighbours overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """[(top, left, tile height, tile width)] covering a height x width image, row by row."""
    th, tw = min(tile, height), min(tile, width)
    return [(top, left, th, tw) for top in starts(height, tile, overlap) for left in starts(width, tile, overlap)]


def _ramp(length: int, fade_start: bool, fade_end: bool, overlap: int) -> torch.Tensor:
    w = torch.ones(length)
    rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)  # never 0
    if fade_start:
        w[:overlap] = torch.minimum(w[:overlap], rise)
    if fade_end:
        w[-overlap:] = torch.minimum(w[-overlap:], rise.flip(0))
    return w


def window(box: tuple[int, int, int, int], height: int, width: int, overlap: int) -> torch.Tensor:
    """The blending weights of the tile `box` of a height x width image: (1, 1, th, tw)."""
    top, left, th, tw = box
    rows = _ramp(th, top > 0, top + th < height, min(overlap, th // 2))
    cols = _ramp(tw, left > 0, left + tw < width, min(overlap, tw // 2))
    return (rows[:, None] * cols[None, :])[None, None]


class Canvas:
    """The blend of the tiles done so far, on the CPU: sum(window * tile) / sum(window)."""

    def __init__(self, like: torch.Tensor, overlap: int):
        self.height, self.width = like.shape[-2:]
        self.overlap = overlap
        self.total = torch.zeros_like(like)
        self.weight = torch.zeros(1, 1, self.height, self.width, dtype=like.dtype)

    def start(self, box: tuple[int, int, int, int], fallback: torch.Tensor) -> torch.Tensor:
        """Where `box` has been covered, the blend so far; elsewhere `fallback` (the tile's own);
        in between, faded from one to the other by the windows' summed weight. A hard switch
        left a step in the start, along the edge of the tiles done, that the optimisation kept
        as a seam through the middle of the tile (most with the pixel patches' term, which
        flattens the areas on either side)."""
        index = region(box)
        done = self.weight[index]
        mix = done.clamp(max=1.0)
        return mix * (self.total[index] / done.clamp_min(1e-12)) + (1 - mix) * fallback

    def add(self, box: tuple[int, int, int, int], tile: torch.Tensor) -> None:
        w = window(box, self.height, self.width, self.overlap)
        self.total[region(box)] += w * tile
        self.weight[region(box)] += w

    def result(self) -> torch.Tensor:
        return self.total / self.weight


def region(box: tuple[int, int, int, int]) -> tuple:
    """The index of `box` in a (..., H, W) tensor."""
    top, left, th, tw = box
    return (..., slice(top, top + th), slice(left, left + tw))
