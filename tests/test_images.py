import io

import numpy as np
import pytest
import torch
from PIL import Image

from swag_core.imaging import images
from swag_core.errors import SwagError


def _roundtrip(image: Image.Image) -> Image.Image:
    parts = images.decompose(image)
    return images.recompose(parts.rgb, parts)


def test_rgba_keeps_its_alpha_bit_for_bit(photo_rgba):
    image = Image.open(photo_rgba)
    out = _roundtrip(image)
    assert out.mode == "RGBA" and out.size == image.size
    assert out.getchannel("A").tobytes() == image.getchannel("A").tobytes()
    # Unchanged RGB comes back unchanged (8-bit -> float -> 8-bit is exact).
    assert out.convert("RGB").tobytes() == image.convert("RGB").tobytes()


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_grayscale_comes_back_grayscale(photo, mode):
    image = Image.open(photo).convert(mode)
    out = _roundtrip(image)
    assert out.mode == mode
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(image, dtype=int)).max() <= 1


def test_16_bit_grayscale_keeps_16_bits(tmp_path, photo):
    gray = np.asarray(Image.open(photo).convert("L"), dtype=np.uint16) * 257 + 3
    path = tmp_path / "gray16.png"
    Image.fromarray(gray).save(path)  # uint16 -> mode I;16
    image = images.open_image(path)
    out = _roundtrip(image)
    assert out.mode == "I;16"
    back = np.asarray(out, dtype=np.int64)
    assert np.abs(back - gray).max() <= 2  # 16-bit precision, not 8-bit steps of 257


def test_palette_with_transparency_becomes_rgba(photo):
    image = Image.open(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    out = _roundtrip(image)
    assert out.mode == "RGBA"
    expected = image.convert("RGBA")
    assert out.tobytes() == expected.tobytes()


def test_cmyk_is_converted_to_rgb(photo):
    rgb = Image.open(photo).convert("RGB")
    cmyk = rgb.convert("CMYK")
    parts = images.decompose(cmyk)
    assert parts.mode == "RGB"
    diff = (parts.rgb - images.to_tensor(rgb)).abs().mean()
    assert diff < 0.02


def test_exif_orientation_is_applied(photo):
    image = Image.open(photo).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    opened = images.open_image(buf.getvalue(), "style")
    assert opened.size == (image.height, image.width)


@pytest.mark.parametrize("data, message", [
    (b"", "not an image"),
    (b"hello, this is text", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged|not an image"),
])
def test_broken_files_are_clear_errors(tmp_path, data, message):
    path = tmp_path / "broken.png"
    path.write_bytes(data)
    with pytest.raises(SwagError, match=message):
        images.open_image(path, "style")


def test_truncated_jpeg_is_a_clear_error(tmp_path, photo):
    data = photo.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(SwagError, match="damaged or truncated"):
        images.open_image(path, "content")


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(SwagError, match="is a folder"):
        images.open_image(tmp_path, "content")
    with pytest.raises(SwagError, match="does not exist"):
        images.open_image(tmp_path / "missing.png", "content")


def test_luminance_matches_pil():
    rgb = torch.rand(1, 3, 8, 8)
    arr = (rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    pil = np.asarray(Image.fromarray(arr, "RGB").convert("L"), dtype=np.float32)
    ours = images.luminance(torch.from_numpy(arr).permute(2, 0, 1)[None].float())[0, 0].numpy()
    assert np.abs(pil - ours).max() <= 1.0
