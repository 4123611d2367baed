"""Layer pixels <-> the PNG images the engine takes and gives, for both plug-ins: the colour
channels go to the engine, the source's own alpha goes back into the result untouched (at the
layer's precision, whatever the engine does with it).

Standard library only and Python 2.7 compatible. Pixel data is handled with extended slices,
which run at C speed in both Pythons: a per-pixel Python loop would take seconds on a photo.
"""

from __future__ import division

import array
import sys

import swag_client


class PixelLayout(object):
    """How the plug-in holds a layer's pixels: `channels` samples per pixel (gray, gray+alpha,
    RGB, RGB+alpha) of `sample_bytes` bytes (1, or 2 in the machine's byte order, as GIMP's
    buffers give them)."""

    def __init__(self, channels, sample_bytes):
        if channels not in (1, 2, 3, 4) or sample_bytes not in (1, 2):
            raise ValueError("unsupported pixel layout: %d channels of %d bytes" % (channels, sample_bytes))
        self.channels, self.sample_bytes = channels, sample_bytes

    @property
    def has_alpha(self):
        return self.channels in (2, 4)

    @property
    def colour_channels(self):
        return self.channels - 1 if self.has_alpha else self.channels

    @property
    def pixel_bytes(self):
        return self.channels * self.sample_bytes

    def size(self, width, height):
        return width * height * self.pixel_bytes


def _swap16(data):
    """16-bit samples between the machine's byte order and PNG's big-endian order."""
    if sys.byteorder == "big":
        return bytearray(data)
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return out


def _take_channels(data, pixel_bytes, first_byte, count):
    """Bytes first_byte .. first_byte+count-1 of every pixel, packed."""
    out = bytearray(len(data) // pixel_bytes * count)
    for b in range(count):
        out[b::count] = data[first_byte + b::pixel_bytes]
    return out


def content_png(raw, width, height, layout):
    """The area's colour channels as the PNG the engine stylises (alpha stays here)."""
    if len(raw) != layout.size(width, height):
        raise ValueError("expected %d bytes of pixels, got %d" % (layout.size(width, height), len(raw)))
    s = layout.sample_bytes
    colour = _take_channels(raw, layout.pixel_bytes, 0, layout.colour_channels * s)
    if s == 2:
        colour = _swap16(colour)
    return swag_client.encode_png(width, height, layout.colour_channels, 8 * s, bytes(colour))


def result_pixels(png, width, height, layout, source_raw):
    """The engine's PNG -> pixels in `layout`, with the source's alpha put back bit for bit."""
    try:
        w, h, channels, depth, data = swag_client.decode_png(png)
    except Exception as exc:  # a broken answer is the engine's fault, not the user's
        raise swag_client.EngineError("the engine returned an unreadable image (%s); see the engine log "
                                      "and try again" % exc)
    if (w, h) != (width, height):
        raise swag_client.EngineError("the engine returned a %dx%d image for a %dx%d area; update the "
                                      "engine (swag) and the plug-in together" % (w, h, width, height))
    colour_in = channels - 1 if channels in (2, 4) else channels
    if colour_in != layout.colour_channels:
        raise swag_client.EngineError("the engine returned %d colour channels for %d; update the engine "
                                      "(swag) and the plug-in together" % (colour_in, layout.colour_channels))
    in_bytes = depth // 8
    colour = _take_channels(data, channels * in_bytes, 0, colour_in * in_bytes)
    s = layout.sample_bytes
    if in_bytes == 2:
        colour = _swap16(colour) if s == 2 else colour[0::2]  # more precision than the layer holds
    elif s == 2:
        # 8 -> 16 bit: v * 257 (the same byte twice), which maps 0..255 exactly onto 0..65535.
        wide = bytearray(len(colour) * 2)
        wide[0::2] = colour
        wide[1::2] = colour
        colour = wide
    if not layout.has_alpha:
        return bytes(colour)
    out = bytearray(layout.size(width, height))
    colour_bytes = layout.colour_channels * s
    for b in range(colour_bytes):
        out[b::layout.pixel_bytes] = colour[b::colour_bytes]
    for b in range(s):
        out[colour_bytes + b::layout.pixel_bytes] = source_raw[colour_bytes + b::layout.pixel_bytes]
    return bytes(out)


def carried(raw, previous_raw, previous_result, layout):
    """This frame's pixels plus half of what stylising did to the previous frame, sample by
    sample (rounded, clamped): where the picture did not change, halfway to the previous result.
    Animation frames start from it, so that the texture stays in place (docs/batch.md has the
    measures). Starting from the previous result itself smeared what moves and let the picture
    fade under the paint, frame after frame; carrying the whole change onto the frame still
    thickened the paint over the first frames, where half of it did not. All three in `layout`,
    for the same area; a result's alpha is its source's, so alpha comes out as this frame's."""
    kind, top = ("B", 255) if layout.sample_bytes == 1 else ("H", 65535)
    now, before, painted = (array.array(kind, bytes(data)) for data in (raw, previous_raw, previous_result))
    out = array.array(kind, [min(top, max(0, (2 * n + p - b + 1) >> 1)) for n, p, b in zip(now, painted, before)])
    return out.tobytes() if sys.version_info[0] >= 3 else out.tostring()
