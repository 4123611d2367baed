"""The service's side of the wire format (docs/openapi.json) that is not JSON: the result image
as PNG, written for the GIMP client's decoder (docs/architecture.md, "The wire format")."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

_COLOUR_TYPES = {"L": 0, "I;16": 0, "LA": 4, "RGB": 2, "RGBA": 6}


def png_bytes(image: Image.Image) -> bytes:
    """The result as PNG, every row with filter type 0 (none).

    Not PIL's PNG writer: PIL picks a filter per row, and the GIMP side decodes PNG in pure Python
    (swag_client.decode_png: GIMP's Python has no imaging library), where undoing a filter is a
    Python loop over every byte; unfiltered rows decode at zlib's speed. zlib level 1: the PNG
    only crosses the loopback interface, where time matters more than size."""
    if image.mode not in _COLOUR_TYPES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    pixels = np.asarray(image)
    if image.mode == "I;16":
        pixels = pixels.astype(">u2")  # PNG stores 16-bit samples big-endian
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    bit_depth = 16 if image.mode == "I;16" else 8
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[image.mode], 0, 0, 0)
    data = zlib.compress(raw, 1)
    chunks = [_chunk(b"IHDR", header)]
    chunks += [_chunk(b"IDAT", data[i:i + 2**24]) for i in range(0, len(data), 2**24)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IEND", b"")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
