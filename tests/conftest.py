"""Fixtures shared by the test modules: the real images the tests ship and small helpers."""

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
PACKAGE_DATA = Path(__file__).parent.parent / "swag_core" / "data"


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photo (a cup of coffee, 256x171)."""
    return DATA / "coffee.jpg"


@pytest.fixture(scope="session")
def painting() -> Path:
    """A real painting (Van Gogh, The Starry Night, 512x409)."""
    return PACKAGE_DATA / "starry_night.jpg"


@pytest.fixture(scope="session")
def second_painting() -> Path:
    """A second style: a photo of a graffiti wall (256x205)."""
    return DATA / "graffiti.jpg"


@pytest.fixture(scope="session")
def photo_rgba(tmp_path_factory, photo) -> Path:
    """The real photo with a real alpha channel: opaque in an ellipse, a soft edge, transparent
    corners, every alpha value from 0 to 255 present."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.open(photo).convert("RGB")
    alpha = Image.new("L", image.size, 0)
    ImageDraw.Draw(alpha).ellipse((20, 10, image.width - 20, image.height - 10), fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(12))
    image.putalpha(alpha)
    path = tmp_path_factory.mktemp("rgba") / "coffee_rgba.png"
    image.save(path)
    return path
