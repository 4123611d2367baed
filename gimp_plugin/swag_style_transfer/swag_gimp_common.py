"""What the GIMP 3 and the GIMP 2.10 plug-ins share: everything between "the pixels of the
selected area" and "the pixels of the new layer", without any GIMP call.

- the plug-in's choices and how its arguments become engine options;
- the new layer's name; reading the style file with errors that say what to do;
- the stylised area (the selection's bounds on the layer, or the whole layer);
- pixels <-> PNG: the colour channels go to the engine, the source's own alpha goes back into
  the result untouched (at the layer's precision, whatever the engine does with it);
- one-line error messages for everything that can go wrong.

Standard library only and Python 2.7 compatible: GIMP 2.10's Python-Fu runs it too (the
installer copies it next to the 2.10 plug-in). Pixel data is handled with extended slices,
which run at C speed in both Pythons: a per-pixel Python loop would take seconds on a photo.
"""

from __future__ import division

import os
import sys

import swag_client

PLUGIN_TITLE = "SWAG Style Transfer"

# Choices of the dialog, in the order shown. The engine accepts these exact names
# (swag_core.options.PRESETS, networks.ARCHITECTURES, smoothing.MODES, options.DEVICES); a test
# checks that they stay in step.
PRESETS = (("fast", "Fast (preview)"), ("balanced", "Balanced"), ("best", "Best (slow)"))
ARCHITECTURES = (
    ("resnet50", "ResNet-50"), ("resnet101", "ResNet-101"), ("wide_resnet50_2", "Wide ResNet-50-2"),
    ("inception_v3", "Inception v3"), ("vgg16", "VGG-16"), ("vgg19", "VGG-19"),
    ("noresnet50", "NoResNet-50 (no residuals)"), ("pseudo_vgg", "pseudo-VGG"),
    ("pseudo_resvgg", "pseudo-ResVGG"),
)
SMOOTHING = (("softmax", "Softmax (SWAG)"), ("shift", "Shift (linear control)"), ("channel", "Per channel"),
             ("none", "None (plain Gatys)"))
DEVICES = (("auto", "Automatic"), ("gpu", "GPU"), ("cpu", "CPU"))
DEFAULTS = {
    "preset": "balanced", "architecture": "vgg19", "smoothing": "softmax", "size": 0,
    "iterations": 0, "strength": 1.0, "preserve-colors": False, "seed": 0, "device": "auto",
    "layer-name": "",
}
MAX_SIZE = 16384
MAX_ITERATIONS = 100000
MAX_SEED = 2 ** 31 - 1  # a GIMP int argument is 32-bit


class FilterError(Exception):
    """Something the user can fix; the message is one line that says how."""


def nicks(choices):
    return [nick for nick, _ in choices]


def engine_options(preset, architecture, smoothing, size, iterations, strength, preserve_colors,
                   seed, device):
    """The plug-in's arguments -> the engine's options (the service's names). 0 for size or
    iterations means "the preset's", so it is left out rather than sent."""
    for value, choices, what in ((preset, PRESETS, "preset"), (architecture, ARCHITECTURES, "architecture"),
                                 (smoothing, SMOOTHING, "smoothing"), (device, DEVICES, "device")):
        if value not in nicks(choices):
            raise FilterError("unknown %s %r: choose one of %s" % (what, value, ", ".join(nicks(choices))))
    options = {
        "preset": preset, "arch": architecture, "smoothing": smoothing,
        "strength": float(strength), "preserve_colors": bool(preserve_colors), "seed": int(seed),
        "device": device,
    }
    if size:
        options["size"] = int(size)
    if iterations:
        options["iterations"] = int(iterations)
    return options


def layer_name(requested, style_path):
    requested = (requested or "").strip()
    return requested or "SWAG: " + os.path.basename(style_path)


def read_style(path):
    """The style file's bytes. The engine decodes it; here only what would otherwise become an
    unhelpful error later: nothing chosen, missing, a folder, unreadable, empty."""
    if not path:
        raise FilterError("no style image chosen: pick a style image file (a painting) in the dialog")
    if not os.path.exists(path):
        raise FilterError("style image %s does not exist: pick an existing image file" % path)
    if os.path.isdir(path):
        raise FilterError("style image %s is a folder: pick an image file" % path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (IOError, OSError) as exc:
        raise FilterError("cannot read style image %s (%s): check its permissions"
                          % (path, getattr(exc, "strerror", None) or exc))
    if not data:
        raise FilterError("style image %s is empty (0 bytes): pick another file" % path)
    return data


class Region(object):
    """The part of the layer that is stylised, in layer coordinates."""

    def __init__(self, x, y, width, height):
        self.x, self.y, self.width, self.height = x, y, width, height

    def __repr__(self):
        return "Region(%d, %d, %d, %d)" % (self.x, self.y, self.width, self.height)


def stylised_region(intersects, x, y, width, height, layer_width, layer_height, layer_label):
    """The area to stylise from GIMP's "mask intersect" answer (the selection's bounds on the
    layer, or the whole layer without a selection)."""
    if not intersects or width <= 0 or height <= 0:
        raise FilterError("the selection does not touch layer %r: select an area on it, or "
                          "Select > None to stylise the whole layer" % layer_label)
    if x < 0 or y < 0 or x + width > layer_width or y + height > layer_height:
        raise FilterError("GIMP reported a selection outside layer %r (%d,%d %dx%d): Select > None "
                          "and try again" % (layer_label, x, y, width, height))
    return Region(x, y, width, height)


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


def stylize_pixels(client, raw, width, height, layout, style_bytes, options, progress, should_cancel):
    """Stylise `raw` (the area's pixels in `layout`) with the engine; returns pixels in the same
    layout. Raises FilterError, swag_client.EngineError or swag_client.Cancelled."""
    result = client.stylize(content_png(raw, width, height, layout), style_bytes, options,
                            progress=progress, should_cancel=should_cancel)
    return result_pixels(result, width, height, layout, raw)


def error_message(exc):
    """The one line the user sees for `exc` (None for a cancelled job)."""
    if isinstance(exc, swag_client.Cancelled):
        return None
    if isinstance(exc, (FilterError, swag_client.EngineError)):
        return "%s: %s" % (PLUGIN_TITLE, exc)
    if isinstance(exc, MemoryError):
        return ("%s: not enough memory for this layer in GIMP: select a smaller area or close other "
                "images, and try again" % PLUGIN_TITLE)
    return ("%s failed unexpectedly (%s: %s); please report it with the steps that led to it"
            % (PLUGIN_TITLE, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
