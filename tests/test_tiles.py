"""The memory-bounded path: a scale above the tile budget is optimised in overlapping tiles,
one on the device at a time, and blended without seams."""

import numpy as np
import pytest
import torch
from PIL import Image

from swag_core import SwagError, stylize
from swag_core.engine import pipeline, tiles
from swag_core.engine.extractors import network_for
from swag_core.imaging import images
from swag_core.options import Options
from swag_core.research import quality


@pytest.mark.parametrize("length,tile,overlap", [(256, 96, 24), (171, 96, 24), (1000, 128, 32), (96, 96, 24)])
def test_tiles_cover_the_image_and_overlap_their_neighbours(length, tile, overlap):
    starts = tiles.starts(length, tile, overlap)
    assert starts[0] == 0 and min(length, starts[-1] + tile) == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def _steps(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A seam is a step across a line: the mean absolute step between neighbouring columns (and
    rows) of an (H, W, 3) array, after averaging along the line so that texture cancels and a
    step stays."""
    gx = np.abs(np.diff(_blur(image, 8, axis=0), axis=1)).mean(axis=(0, 2))
    gy = np.abs(np.diff(_blur(image, 8, axis=1), axis=0)).mean(axis=(1, 2))
    return gx, gy


def _blur(image: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """A Gaussian blur along one axis, edges mirrored."""
    radius = int(4 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(image, pad, mode="symmetric")
    return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis, padded)


def test_the_window_blends_tiles_that_disagree_without_seams(photo):
    """Tiles whose results differ (each shifted by its own colour offset) pasted with hard edges
    leave steps at their borders; blended through the window they leave none."""
    base = images.to_tensor(images.open_image(photo))  # (1, 3, 171, 256)
    height, width = base.shape[-2:]
    boxes = tiles.grid(height, width, 96, 24)
    offsets = torch.Generator().manual_seed(0)
    canvas, pasted = tiles.Canvas(base, 24), base.clone()
    for box in boxes:
        tile = base[tiles.region(box)] + (torch.rand(1, 3, 1, 1, generator=offsets) - 0.5) * 0.2
        canvas.add(box, tile)
        pasted[tiles.region(box)] = tile
    as_array = lambda t: t[0].permute(1, 2, 0).numpy() - base[0].permute(1, 2, 0).numpy()  # noqa: E731
    blended_steps = max(s.max() for s in _steps(as_array(canvas.result())))
    pasted_steps = max(s.max() for s in _steps(as_array(pasted)))
    assert pasted_steps > 0.02  # the hard paste shows its seams: the measure sees them
    assert blended_steps < pasted_steps / 5, (blended_steps, pasted_steps)


def test_a_tile_starts_from_the_tiles_done_faded_into_its_own_start():
    """Where the tiles done cover a new tile fully it starts from their blend, where they do
    not cover it from its own start, and in between without a step: a step in the start
    stayed in the result as a seam through the middle of the tile."""
    canvas = tiles.Canvas(torch.zeros(1, 3, 64, 128), 16)
    left, right = (0, 0, 64, 64), (0, 32, 64, 64)
    canvas.add(left, torch.ones(1, 3, 64, 64))
    start = canvas.start(right, torch.zeros(1, 3, 64, 64))[0, 0, 32]  # one row across the new tile
    assert start[:16].eq(1).all()  # where the done tile's window is 1
    assert start[32:].eq(0).all()  # beyond the done tile
    assert (start[:-1] - start[1:]).max() < 0.15 and (start[1:] <= start[:-1]).all()  # a ramp, no step


@pytest.fixture(scope="module")
def tiled_job(photo_rgba, painting):
    """Working at the full 128 px of a 128x86 layer with 64 px tiles: 6 tiles."""
    content = Image.open(photo_rgba).resize((128, 86))
    # As in real use, the tiled scales start from a coarser, untiled scale (64 px).
    settings = dict(size=128, tile_size=64, min_scale=64, iterations=40, device="cpu")
    _, extractor = network_for(Options.build(**settings), torch.device("cpu"))
    seen = []
    hook = extractor.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    progress = []
    try:
        result = stylize(content, painting, progress=progress.append, **settings)
    finally:
        hook.remove()
    return content, result, seen, progress


def test_tiled_result_has_the_exact_size_and_alpha_and_is_stylised(tiled_job, painting):
    content, result, _, progress = tiled_job
    assert result.size == content.size and result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == content.getchannel("A").tobytes()
    assert any("tile 6 of 6" in p.stage for p in progress)
    m = quality.measure(images.to_tensor(content), images.to_tensor(result),
                        images.style_tensor(images.open_image(painting)))
    assert m["colour"] > 0.2 and m["structure"] > 0.3 and m["grain"] < 1.5, m


def test_the_device_never_sees_more_than_one_tile(tiled_job):
    _, _, seen, _ = tiled_job
    # Tiles, and the whole content and the style shrunk to the tile budget for the targets.
    assert (64, 64) in seen and max(h * w for h, w in seen) <= 64 * 64


def test_tiled_result_has_no_seams_at_the_tile_borders(tiled_job):
    """Each tile matches the global style on its own; left free, neighbouring tiles drifted apart
    in colour (steps 4-5x the texture's at their borders). They add only the detail finer than
    the coarser scale they start from (pipeline.py)."""
    content, result, _, _ = tiled_job
    residual = np.asarray(result.convert("RGB"), float) - np.asarray(content.convert("RGB"), float)
    gx, gy = _steps(residual)
    # Relative to the typical step of the stylisation's own texture.
    gx, gy = gx / np.median(gx), gy / np.median(gy)
    m = pipeline.MARGIN  # the scale is tiled with its margin (pipeline.py), cropped off after
    boxes = tiles.grid(86 + 2 * m, 128 + 2 * m, 64, 16)
    # The steps between columns (rows) where a tile begins or ends, or inside overlaps.
    cols = sorted({c - m for _, left, _, w in boxes for c in (left - 1, left + w - 1) if 0 <= c - m < 127})
    rows = sorted({r - m for top, _, h, _ in boxes for r in (top - 1, top + h - 1) if 0 <= r - m < 85})
    assert gx[cols].max() < 2.5 and gy[rows].max() < 2.5, (gx[cols], gy[rows])


def test_tile_size_below_the_network_minimum_is_refused(photo, painting):
    with pytest.raises(SwagError, match="tile_size 16 is too small for resnet50"):
        stylize(photo, painting, arch="resnet50", size=64, tile_size=16, iterations=1, device="cpu")
