"""A style image's frame (a scan's plain surround) is cut off before the style is taken; the
picture's own plain areas are not."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from swag_core.engine.pipeline import stylize
from swag_core.imaging import frames, images

BENCHMARK_IMAGES = Path(__file__).parent.parent / "benchmarks" / "images"


def _tensor(path) -> torch.Tensor:
    return images.to_tensor(images.open_image(path))


@pytest.fixture(scope="module")
def unframed(painting) -> torch.Tensor:
    """The Starry Night without its scan's surround and rim (20 px cut off every side):
    (1, 3, 369, 472)."""
    return _tensor(painting)[..., 20:-20, 20:-20]


def _framed(picture: torch.Tensor, width: int, colour) -> torch.Tensor:
    """`picture` inside a plain frame `width` px wide of `colour` (RGB in 0..1)."""
    height, breadth = picture.shape[-2:]
    out = torch.tensor(colour).view(1, 3, 1, 1).repeat(1, 1, height + 2 * width, breadth + 2 * width)
    out[..., width:width + height, width:width + breadth] = picture
    return out


def test_the_scans_black_surround_and_light_rim_are_cut_off(painting):
    scan = _tensor(painting)
    cut = frames.frame_widths(scan)
    assert all(6 <= w <= 16 for w in cut), cut
    trimmed = frames.without_frame(scan)
    height, width = scan.shape[-2:]
    top, bottom, left, right = cut
    assert torch.equal(trimmed, scan[..., top:height - bottom, left:width - right])
    # The scan's outer lines are black (below 0.02); what is left starts with the painting.
    for line in (trimmed[..., 0, :], trimmed[..., -1, :], trimmed[..., :, 0], trimmed[..., :, -1]):
        assert line.mean() > 0.1
    for line in (scan[..., 0, :], scan[..., -1, :], scan[..., :, 0], scan[..., :, -1]):
        assert line.mean() < 0.02


@pytest.mark.parametrize("colour", [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.55, 0.4, 0.25)])
def test_a_plain_frame_of_any_colour_is_cut_with_its_edge(unframed, colour):
    framed = _framed(unframed, 6, colour)
    height, width = framed.shape[-2:]
    edge_rows, edge_columns = (max(2, math.ceil(frames.EDGE * side)) for side in (height, width))
    assert frames.frame_widths(framed) == (6 + edge_rows, 6 + edge_rows, 6 + edge_columns, 6 + edge_columns)


def test_a_picture_without_a_frame_is_left_whole(unframed):
    assert frames.frame_widths(unframed) == (0, 0, 0, 0)
    assert torch.equal(frames.without_frame(unframed), unframed)


def test_a_plain_band_on_some_sides_only_is_the_pictures_own(unframed):
    """A clear sky along the top of a landscape, a dark floor along its bottom."""
    landscape = unframed.clone()
    landscape[..., :30, :] = torch.tensor([0.55, 0.7, 0.9]).view(1, 3, 1, 1)
    landscape[..., -20:, :] = 0.05
    assert frames.frame_widths(landscape) == (0, 0, 0, 0)


def test_the_paper_round_a_drawing_is_kept(monkeypatch):
    """Margins of plain paper narrower than FRAME_MAX round a pen drawing: kept because the
    picture inside is mostly that paper too."""
    drawing = Image.new("RGB", (300, 240), (246, 240, 226))
    pen = ImageDraw.Draw(drawing)
    for k in range(24):
        pen.line((8 + 12 * k, 8, 14 + 11 * k, 231), fill=(30, 25, 20), width=2)
    pen.line((8, 120, 291, 120), fill=(30, 25, 20), width=2)
    pen.ellipse((120, 80, 200, 160), outline=(160, 40, 30), width=4)
    rgb = images.to_tensor(drawing)
    assert frames.frame_widths(rgb) == (0, 0, 0, 0)
    # What keeps them is the paper inside, not their width: were any colour inside a frame's,
    # the margins would be cut.
    monkeypatch.setattr(frames, "FRAME_CONTRAST", 0.0)
    assert all(frames.frame_widths(rgb))


def test_a_plain_band_wider_than_a_frame_is_kept(unframed):
    """A band all round of more than FRAME_MAX of each side is the picture's own."""
    wide = _framed(unframed, round(min(unframed.shape[-2:]) * 0.1), (0.0, 0.0, 0.0))
    band = (wide.shape[-2] - unframed.shape[-2]) // 2
    assert band > frames.FRAME_MAX * max(wide.shape[-2:])
    assert frames.frame_widths(wide) == (0, 0, 0, 0)


def test_a_small_image_is_left_whole(unframed):
    small = _framed(F.interpolate(unframed, size=(50, 60), mode="area"), 1, (0.0, 0.0, 0.0))
    assert min(small.shape[-2:]) < frames.SMALLEST
    assert frames.frame_widths(small) == (0, 0, 0, 0)


def test_the_benchmarks_paintings_patterns_and_photos_have_nothing_cut():
    paths = sorted(BENCHMARK_IMAGES.glob("style_*")) + sorted(BENCHMARK_IMAGES.glob("content_*"))
    assert len(paths) >= 28
    cut = {path.name: frames.frame_widths(_tensor(path)) for path in paths}
    assert {name: w for name, w in cut.items() if any(w)} == {}


def test_the_engine_takes_the_style_without_its_frame(photo, painting):
    """The same result from the framed scan as from the painting cut out of it by hand."""
    top, bottom, left, right = widths = frames.frame_widths(_tensor(painting))
    assert min(widths) > 0
    scan = Image.open(painting)
    by_hand = scan.crop((left, top, scan.width - right, scan.height - bottom))
    run = lambda style: np.asarray(stylize(photo, style, size=64, iterations=4, device="cpu"))  # noqa: E731
    assert np.array_equal(run(painting), run(by_hand))
