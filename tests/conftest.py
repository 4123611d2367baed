"""Fixtures shared by the test modules: the real images the tests ship, small helpers, and the
one running engine that the service, client and plug-in tests talk to."""

from pathlib import Path

import pytest

from engine_process import MAX_PIXELS, QUICK, start_engine

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


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    """The folder offered to jobs with --weights-dir: a state_dict that fits QUICK's network, one
    that does not, and a file whose unpickling would create a file (it must never be unpickled)."""
    import torch

    from swag_core.engine.weights import load_model

    folder = tmp_path_factory.mktemp("weights")
    torch.save(load_model(QUICK["arch"], seed=5)[1].state_dict(), folder / "resnet50-seed5.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, folder / "foreign.pt")
    torch.save(_RunsCode(folder.parent / "unpickled-marker"), folder / "runs-code.pt")
    return folder


class _RunsCode:
    """Pickles as a call of open(marker, "w"): unpickling it would create the marker."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="session")
def engine(tmp_path_factory, weights_dir):
    """One `swag serve` for the whole session, kept warm between the modules that use it (it
    loads a network once, not once a module), with a small --max-pixels and --weights-dir for
    the service's own checks. Tests that stop or flood an engine start their own."""
    engine = start_engine(tmp_path_factory.mktemp("engine"), "--max-pixels", str(MAX_PIXELS),
                          "--idle-timeout", "0", "--weights-dir", str(weights_dir))
    yield engine
    assert engine.stop() == 0
    assert list(engine.tmpdir.iterdir()) == [], "the service left temp files"
