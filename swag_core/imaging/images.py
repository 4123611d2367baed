"""Images in and out of the engine: files and PIL images <-> RGB tensors, without losing the
parts the engine does not stylise.

The engine stylises RGB. Everything else an image carries is split off on the way in and put
back on the way out, so the result has the input's mode and size:
- alpha (RGBA, LA, palette transparency) is kept bit for bit;
- grayscale (L, LA, 16-bit I;16 / I) is stylised as gray RGB and returned as luminance in the
  same mode and bit depth;
- CMYK and palette images are converted to RGB (through their ICC profile when they carry one)
  and returned as RGB / RGBA;
- EXIF orientation is applied on reading, so a photo is stylised the way it is displayed.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import SwagError
from .frames import without_frame

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_SIXTEEN_BIT = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def open_image(source, what: str = "image") -> Image.Image:
    """Open a path, bytes or PIL image, fully decoded, with EXIF orientation applied."""
    if isinstance(source, Image.Image):
        image = source
    else:
        in_memory = isinstance(source, (bytes, bytearray))
        # "style is damaged..." for data sent by a client, "style /path/x.png is damaged..." for a file.
        label = what if in_memory else f"{what} {os.fspath(source)}"
        try:
            image = Image.open(io.BytesIO(source) if in_memory else source)
            image.load()
        except FileNotFoundError:
            raise SwagError(f"{what} file {os.fspath(source)} does not exist") from None
        except IsADirectoryError:
            raise SwagError(f"{label} is a folder, not an image file") from None
        except PermissionError:
            raise SwagError(f"cannot read {what} file {os.fspath(source)}: permission denied") from None
        except UnidentifiedImageError:
            raise SwagError(f"{label} is not an image file (PNG, JPEG, TIFF, WebP... expected)") from None
        except Image.DecompressionBombError as exc:
            raise SwagError(f"{label} is too large to decode safely: {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise SwagError(f"{label} is damaged or truncated ({exc}); re-save it and try again") from None
    if image.width < 1 or image.height < 1:
        raise SwagError(f"{what} is empty ({image.width}x{image.height})")
    return ImageOps.exif_transpose(image)


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB (or RGBA) in sRGB, converting through an embedded ICC profile where there is one."""
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("CMYK", "RGB"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(image, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: fall back to PIL's plain conversion below
    if image.mode == "P" or image.mode == "PA":
        return image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
    if image.mode in ("RGBA", "RGB"):
        return image
    if image.mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")


@dataclass
class Decomposed:
    """What `decompose` split off an image, to be put back by `recompose`."""

    rgb: torch.Tensor  # (1, 3, H, W) float32 in [0, 1]
    alpha: Image.Image | None  # the alpha band, untouched
    mode: str  # the mode to return: RGB, RGBA, L, LA or I;16


def decompose(image: Image.Image) -> Decomposed:
    if image.mode in _GRAY_MODES:
        alpha = image.getchannel("A") if image.mode in ("LA", "La") else None
        if image.mode in _SIXTEEN_BIT or image.mode == "F":
            values = np.asarray(image, dtype=np.float32)
            # PNG and TIFF 16-bit grayscale arrive as I;16 or as I with values 0..65535.
            gray = values / (65535.0 if image.mode != "F" else max(1.0, float(values.max())))
            mode = "I;16"
        else:
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
            mode = "LA" if alpha is not None else "L"
        t = torch.from_numpy(np.clip(gray, 0, 1)).expand(3, -1, -1)
        return Decomposed(t.unsqueeze(0).contiguous(), alpha, mode)
    rgba = _to_srgb(image)
    alpha = rgba.getchannel("A") if rgba.mode == "RGBA" else None
    rgb = np.asarray(rgba.convert("RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).contiguous()
    return Decomposed(t, alpha, "RGBA" if alpha is not None else "RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """Any image as (1, 3, H, W) RGB in [0, 1] (alpha dropped)."""
    return decompose(image).rgb


def style_tensor(image: Image.Image) -> torch.Tensor:
    """A style image as the engine takes its style: `to_tensor`'s, with its frame cut off
    (frames.py)."""
    return without_frame(to_tensor(image))


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma, as PIL's RGB -> L conversion uses: (B, 3, H, W) -> (B, 1, H, W)."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def recompose(rgb: torch.Tensor, parts: Decomposed) -> Image.Image:
    """(1, 3, H, W) result in [0, 1] -> a PIL image in the input's mode, with its alpha."""
    rgb = rgb.detach().float().clamp(0, 1).cpu()
    if parts.mode in ("L", "LA", "I;16"):
        y = luminance(rgb)[0, 0].numpy()
        if parts.mode == "I;16":
            return Image.fromarray(np.round(y * 65535).astype(np.uint16))  # uint16 -> mode I;16
        out = Image.fromarray(np.round(y * 255).astype(np.uint8), "L")
    else:
        arr = np.round(rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        out = Image.fromarray(arr, "RGB")
    if parts.alpha is not None:
        out.putalpha(parts.alpha)
    return out
