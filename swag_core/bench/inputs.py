"""The images every benchmark and check runs on: the bundled photo and painting."""

from __future__ import annotations


def images(size: int):
    """The demo content cropped square at size x size, and the demo style, as CPU tensors."""
    from importlib import resources

    from PIL import ImageOps

    from ..imaging import images as im

    data = resources.files("swag_core") / "data"
    content = ImageOps.fit(im.open_image(data.joinpath("cat.jpg").read_bytes()).convert("RGB"), (size, size))
    return content, im.open_image(data.joinpath("starry_night.jpg").read_bytes())
