"""benchmarks/multisize.py, the random filters of several sizes (docs/quality.md, twentieth
round): its FFT convolutions are conv2d's, and the script writes what it says."""

import csv
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from swag_core.engine.networks import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def multisize():
    path = Path(__file__).parent.parent / "benchmarks" / "multisize.py"
    spec = importlib.util.spec_from_file_location("multisize_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fft_responses_are_conv2d_without_padding(multisize):
    filters = multisize.MultiSizeFilters()
    image = torch.rand(1, 3, 41, 60, generator=torch.Generator().manual_seed(1))
    normalised = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    responses = filters(image)
    fitting = [w for w in filters.weights if w.shape[-1] <= 41]
    assert len(responses) == len(fitting) == 7  # the 55 px filters do not fit a 41 px side
    for weight, response in zip(fitting, responses):
        expected = F.relu(F.conv2d(normalised, weight))
        assert response.shape == expected.shape
        assert torch.allclose(response, expected, atol=1e-4), weight.shape


def test_the_script_synthesises_each_style_both_ways(multisize, tmp_path):
    assert multisize.main(["--out", str(tmp_path), "--size", "48", "--steps", "2",
                           "--styles", "style_pattern_truchet.png"]) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["variant"] for r in rows] == ["engine", "filters"]
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 3 * 150  # the style and its two syntheses
