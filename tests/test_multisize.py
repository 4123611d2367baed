"""benchmarks/multisize.py, the random filters of several sizes (docs/quality.md, twentieth
round): its FFT convolutions are conv2d's, and the script writes what it says."""

import csv
import importlib.util
import math
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


@pytest.mark.parametrize("shape, fitting", [((41, 60), 7), ((64, 57), 8)])  # 55 px fits the second only
def test_the_fft_responses_are_conv2d_without_padding(multisize, shape, fitting):
    filters = multisize.MultiSizeFilters()
    filters(torch.rand(1, 3, 30, 30))  # another size's spectra, cached first, must not be reused
    image = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    normalised = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    responses = filters(image)
    assert len(responses) == fitting
    for weight, response in zip(filters.weights, responses):
        expected = F.relu(F.conv2d(normalised, weight))
        assert response.shape == expected.shape
        assert torch.allclose(response, expected, atol=1e-4), weight.shape


def test_the_filters_style_loss_is_0_at_the_style_and_pulls_noise_towards_it(multisize):
    filters = multisize.MultiSizeFilters()
    style = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) ** 3  # dark, sparse lights
    loss = multisize.FilterStyleLoss(filters, style)
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    assert float(loss(style)[0]) == pytest.approx(0, abs=1e-6)
    before = float(loss(noise)[0])
    after = float(loss(multisize.run(noise, loss, 20, torch.device("cpu")))[0])
    assert before > 0.01 and after < 0.5 * before


def test_the_script_synthesises_each_style_both_ways(multisize, tmp_path):
    assert multisize.main(["--out", str(tmp_path), "--size", "48", "--steps", "2",
                           "--styles", "style_pattern_truchet.png"]) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["variant"] for r in rows] == ["engine", "filters"]
    assert all(math.isfinite(float(r[m])) for r in rows for m in ("colour", "texture", "structure", "grain"))
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 3 * 150  # the style and its two syntheses
