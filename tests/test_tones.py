"""The photo's light and dark areas laid under the stylised image (engine/tones.py)."""

import pytest
import torch
import torch.nn.functional as F

from swag_core.engine.pipeline import stylize
from swag_core.engine.tones import with_photo_layout
from swag_core.imaging import images
from swag_core.research.quality import layout


def _stripes(height=96, width=128) -> torch.Tensor:
    """A style's fine texture in its own colours, even at any larger scale: thin light teal and
    dark purple stripes."""
    teal, purple = torch.tensor([0.2, 0.6, 0.6]), torch.tensor([0.35, 0.2, 0.45])
    rows = (torch.arange(height) // 2 % 2).view(height, 1, 1).expand(height, width, 1).float()
    return (rows * teal + (1 - rows) * purple).permute(2, 0, 1).unsqueeze(0)


def _photo(height=96, width=128) -> torch.Tensor:
    """A dark subject (a disc) on a light ground."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    disc = ((y - height / 2) ** 2 + (x - width / 3) ** 2 < (height / 3) ** 2).float()
    return (0.85 - 0.7 * disc).expand(1, 3, height, width).clone()


def _detail(image: torch.Tensor) -> torch.Tensor:
    lightness = image.mean(1, keepdim=True)
    return lightness - F.avg_pool2d(lightness, 5, 1, 2, count_include_pad=False)


def test_nothing_changes_at_amount_zero():
    image = _stripes()
    assert torch.equal(with_photo_layout(image, _photo(), 0.0), image)


def test_the_photos_masses_go_under_the_styles_detail_and_hues():
    image, photo = _stripes(), _photo()
    out = with_photo_layout(image, photo, 1.0)
    # The even texture had no layout; now its lights and darks lie where the photo's do.
    assert abs(layout(photo, image)) < 0.1
    assert layout(photo, out) > 0.9
    # At 1 the photo's overall tone too, with the style's fine stripes kept.
    assert float(out.mean()) == pytest.approx(float(photo.mean()), abs=0.03)
    stripes = _detail(image).abs() > 0.02
    assert (torch.sign(_detail(out)) == torch.sign(_detail(image)))[stripes].float().mean() > 0.9
    # Each pixel lightened or darkened, its hue kept: the channels' ratios where it was darkened
    # (scaled towards black), their distances to white where it was lightened.
    darker = out.mean(1) < image.mean(1) - 0.05
    lighter = out.mean(1) > image.mean(1) + 0.05
    assert darker.any() and lighter.any()
    ratio_in, ratio_out = image[:, 0] / image[:, 1], out[:, 0] / out[:, 1]
    assert torch.allclose(ratio_out[darker], ratio_in[darker], rtol=1e-3)
    white_in, white_out = (1 - image[:, 0]) / (1 - image[:, 1]), (1 - out[:, 0]) / (1 - out[:, 1])
    assert torch.allclose(white_out[lighter], white_in[lighter], rtol=1e-3)
    assert out.min() >= 0 and out.max() <= 1


def test_half_the_amount_moves_the_masses_half_way_and_the_tone_a_quarter_of_the_way():
    image, photo = _stripes(), _photo()
    half = with_photo_layout(image, photo, 0.5)
    # The overall tone a quarter of the way to the photo's (far from it: stripes 0.40, photo 0.67).
    quarter = float(image.mean()) + 0.25 * (float(photo.mean()) - float(image.mean()))
    assert float(half.mean()) == pytest.approx(quarter, abs=0.01)
    assert abs(float(half.mean()) - float(image.mean())) > 0.05
    # The lights and darks where the photo's are, less strongly than at 1.
    assert 0.8 < layout(photo, half) and torch.std(half.mean(1)) < torch.std(with_photo_layout(image, photo, 1.0).mean(1))


@pytest.mark.parametrize("size", [(16, 16), (17, 300)])
def test_any_size_of_image(size):
    out = with_photo_layout(torch.rand(1, 3, *size), torch.rand(1, 3, *size), 1.0)
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()


def test_a_stylisation_keeps_the_photos_layout_with_the_step(photo, painting):
    # Started from noise, whose light and dark areas are the style's alone until the step.
    job = dict(size=96, iterations=30, init="noise", device="cpu")
    content = images.to_tensor(images.open_image(photo).convert("RGB"))
    kept = {weight: layout(content, images.to_tensor(stylize(photo, painting, layout_weight=weight, **job)
                                                     .convert("RGB")))
            for weight in (0.0, 1.0)}
    assert kept[1.0] > kept[0.0] + 0.1 and kept[1.0] > 0.8, kept
