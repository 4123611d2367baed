"""`swag compare`: the labelled grid and the measurements per variant."""

import re

import numpy as np
from PIL import Image

from swag_core import cli
from swag_core.research import compare


def test_writes_a_grid_with_content_style_and_the_three_variants_and_prints_their_numbers(
        tmp_path, photo, painting, capsys):
    out = tmp_path / "grid.png"
    assert cli.main(["compare", str(photo), str(painting), "--size", "64", "--iterations", "2",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    labels = ["r-VGG-19", "r-ResNet-50", "r-ResNet-50 + SWAG"]
    for label in labels:
        numbers = re.search(rf"^{re.escape(label)}" + r"\s+(-?[\d.]+)" * 4 + r"\s+([\d.]+)\s+([\d.]+)$",
                            printed, re.MULTILINE)
        assert numbers, (label, printed)
        colour, texture, structure, layout, grain, seconds = map(float, numbers.groups())
        assert -1 <= structure <= 1 and -1 <= layout <= 1 and grain >= 0 and seconds > 0
    with Image.open(out) as grid:
        # Content (256x171 photo) at 64 px: tiles 43 px high under a label band, one row.
        assert grid.height == 43 + compare.LABEL_HEIGHT
        assert grid.width >= 64 * 5
        grid = grid.convert("RGB")
        content = Image.open(photo).convert("RGB").resize((64, 43), Image.Resampling.LANCZOS)
        tile = grid.crop((0, compare.LABEL_HEIGHT, 64, grid.height))
        # The first tile is the content: close to it, pixel for pixel.
        assert np.abs(np.asarray(tile, float) - np.asarray(content, float)).mean() < 8


def test_grid_labels_every_tile_and_leaves_empty_cells_white():
    red, blue = Image.new("RGB", (40, 20), "red"), Image.new("RGB", (20, 20), "blue")
    image = compare.grid([[("a", red), ("b", blue)], [None, ("a long label", red)]], height=10)
    label = compare.LABEL_HEIGHT
    assert image.height == 2 * (10 + label)
    assert image.getpixel((0, label)) == (255, 0, 0)  # first tile, scaled to 20x10
    assert image.getpixel((5, 10 + label + label + 2)) == (255, 255, 255)  # the empty cell
    # The column is wide enough for its longest label, and the label is drawn (dark pixels).
    second = image.crop((20, 10 + label, image.width, 10 + 2 * label))
    assert image.width > 20 + 40 and np.asarray(second.convert("L")).min() < 128


def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, photo, capsys):
    out = tmp_path / "grid.png"
    assert cli.main(["compare", str(photo), str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    assert cli.main(["compare", str(photo), str(photo), "--out", str(tmp_path / "grid.xyz")]) == 2
    assert cli.main(["compare", str(photo), str(photo), "--size", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "does not exist" in err[0] and "format" in err[1] and "size" in err[2]
    assert list(tmp_path.iterdir()) == []
