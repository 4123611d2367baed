"""The quality measures themselves: each baseline scores what it should, so that a number in
the benchmark means what its name says."""

import pytest
import torch

from swag_core.imaging import images
from swag_core.research import quality


def _tensor(path, side=None):
    image = images.open_image(path).convert("RGB")
    if side:
        image.thumbnail((side, side))
    return images.to_tensor(image)


@pytest.fixture(scope="module")
def pair(photo, painting):
    content = _tensor(photo)
    return content, _tensor(painting)


def test_unchanged_content_scores_no_transfer_and_full_structure(pair):
    content, style = pair
    m = quality.measure(content, content, style)
    assert m["colour"] == pytest.approx(0, abs=1e-9) and m["texture"] == pytest.approx(0, abs=1e-9)
    assert m["structure"] == pytest.approx(1, abs=1e-6) and m["layout"] == pytest.approx(1, abs=1e-6)
    assert m["grain"] <= 1.0  # no more grain than the content itself has


def test_colour_grade_moves_colour_but_not_texture(pair, second_painting):
    for style in (pair[1], _tensor(second_painting)):
        content = pair[0]
        graded = quality.colour_grade(content, quality.style_at(style, content))
        m = quality.measure(content, graded, style)
        assert m["colour"] > 0.4, m  # the grade does move the colours
        assert abs(m["texture"]) < 0.1, m  # but luminance texture, normalised, stays the content's
        assert m["layout"] > 0.95, m  # and its light and dark areas where they were
        assert m["grain"] < 1.2, m


def test_another_part_of_the_painting_scores_high_texture_and_colour(pair):
    content, style = pair
    # The left half of the painting, measured against its right half: the same brushwork and
    # palette, none of the same pixels.
    w = style.shape[-1] // 2
    left, right = style[..., :w], style[..., w:2 * w]
    photo = torch.nn.functional.interpolate(content, size=left.shape[-2:], mode="bilinear", antialias=True)
    assert quality.texture_transfer(photo, left, right) > 0.6
    assert quality.colour_transfer(photo, left, right) > 0.6


def _at_size_of(image, other):
    return torch.nn.functional.interpolate(image, size=other.shape[-2:], mode="bilinear", antialias=True)


def _blurred(image, factor=16):
    small = torch.nn.functional.interpolate(image, scale_factor=1 / factor, mode="area")
    return torch.nn.functional.interpolate(small, size=image.shape[-2:], mode="bilinear")


def test_layout_sees_the_light_and_dark_areas_that_structure_misses(pair, second_painting):
    content = pair[0]
    assert quality.layout(content, 1 - content) == pytest.approx(-1, abs=1e-5)
    # The photo blurred: its large areas kept, its detail lost.
    blurred = quality.measure(content, _blurred(content), pair[1])
    assert blurred["layout"] > 0.9 and blurred["structure"] < 0.5, blurred
    for style in (pair[1], _tensor(second_painting)):
        other = _at_size_of(style, content)
        assert abs(quality.layout(content, other)) < 0.5  # another picture's areas are not the photo's
        # The photo's detail over another picture's large areas: the outlines kept, not the areas.
        outlines = (content - _blurred(content) + _blurred(other)).clamp(0, 1)
        m = quality.measure(content, outlines, style)
        assert m["structure"] > 0.7 and m["layout"] < m["structure"] - 0.15, m


def test_noise_scores_high_grain_and_little_texture(pair):
    content, style = pair
    noisy = (content + 0.1 * torch.randn(content.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    m = quality.measure(content, noisy, style)
    assert m["grain"] > 3, m
    assert m["texture"] < 0.3, m


def test_rim_sees_a_line_along_the_border_and_not_the_photo(pair):
    content = pair[0]
    lined = content.clone()
    lined[..., -2:, :] = (lined[..., -2:, :] + 0.2).clamp(max=1)  # a light line two pixels high, at the bottom
    photo, with_line = quality.rim(content), quality.rim(lined)
    assert photo < 0.03, photo
    assert with_line > photo + 0.03, (photo, with_line)
    assert quality.rim(torch.full((1, 3, 32, 48), 0.5)) == pytest.approx(0, abs=1e-6)


def test_lab_round_trip():
    rgb = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    lab = quality.rgb_to_lab(rgb)
    assert float(lab[:, 0].min()) >= 0 and float(lab[:, 0].max()) <= 100
    assert torch.allclose(quality.lab_to_rgb(lab), rgb, atol=1e-4)


def test_the_benchmark_prints_baselines_and_variants_and_writes_its_files(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from PIL import Image

    path = Path(__file__).parent.parent / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("quality_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--out", str(tmp_path), "--size", "64", "--iterations", "2", "--limit", "2",
                       "--variant", "plain:smoothing=none", "--variant", "swag:smoothing=softmax",
                       "--against", "plain"]) == 0
    table = (tmp_path / "table.md").read_text()
    assert table.strip() in capsys.readouterr().out
    for name in ("content unchanged", "colour grade", "plain", "swag"):
        assert f"| {name} | 2 |" in table, table
    assert "swag beats plain on texture" in table
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4  # header, then 2 pairs x (2 baselines + 2 variants)
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 6 * 150 and sheet.height > 2 * 150  # 6 columns, 2 rows of pairs
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path), "--variant", "bad:no_such_option=1"])
