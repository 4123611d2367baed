#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 plug-in (Python-Fu, Python 2.7): Filters > Artistic > SWAG Style Transfer...

The same filter as the GIMP 3 plug-in, through GIMP 2.10's gimpfu: the installer puts this file
in GIMP 2.10's plug-ins folder with swag_style_transfer_210_lib/ next to it (the engine client,
the logic shared with the GIMP 3 plug-in and swag_engine.json).

Differences forced by GIMP 2.10: pixels come through the legacy 8-bit pixel regions (16-bit and
float images are stylised at 8 bits and converted back by GIMP); a failure is raised as an
exception, which GIMP shows in an error dialog when interactive and returns as EXECUTION_ERROR
with the message in batch (gimpfu does not tell the function its run mode). Cancelling the
progress makes GIMP kill the plug-in, before the image was changed; the engine cancels the job
about 10 s later, when its polls have stopped (swag_client.ABANDON_AFTER).
"""

import os
import sys

LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "swag_style_transfer_210_lib")
sys.path.insert(0, LIB_DIR)

from gimpfu import *  # noqa: E402,F401,F403 (gimpfu's documented use)

import swag_client  # noqa: E402
import swag_gimp_common as common  # noqa: E402


def _nick(choices, index):
    try:
        return choices[int(index)][0]
    except (IndexError, TypeError, ValueError):
        raise common.FilterError("option number %r is out of range: choose 0 to %d"
                                 % (index, len(choices) - 1))


def _layer_type(image, has_alpha):
    if image.base_type == GRAY:
        return GRAYA_IMAGE if has_alpha else GRAY_IMAGE
    return RGBA_IMAGE if has_alpha else RGB_IMAGE


def _add_result_layer(image, source, name, region, pixels):
    """Inside one undo group: a layer like `source` directly above it, holding the source's
    pixels with `pixels` in `region`, masked by the selection when there is one."""
    width, height = source.width, source.height
    pdb.gimp_image_undo_group_start(image)
    layer = inserted = None
    try:
        layer = gimp.Layer(image, name, width, height, _layer_type(image, source.has_alpha), 100,
                           LAYER_MODE_NORMAL)
        position = pdb.gimp_image_get_item_position(image, source)
        image.insert_layer(layer, source.parent, position)
        inserted = True
        layer.set_offsets(*source.offsets)
        if (region.width, region.height) != (width, height):
            # Outside the selection the result shows the source, for when the mask is removed.
            layer.get_pixel_rgn(0, 0, width, height, True, False)[0:width, 0:height] = \
                source.get_pixel_rgn(0, 0, width, height, False, False)[0:width, 0:height]
        rgn = layer.get_pixel_rgn(region.x, region.y, region.width, region.height, True, False)
        rgn[region.x:region.x + region.width, region.y:region.y + region.height] = pixels
        if not pdb.gimp_selection_is_empty(image):
            layer.add_mask(layer.create_mask(ADD_MASK_SELECTION))
        layer.flush()
        layer.update(0, 0, width, height)
    except Exception:
        if inserted:
            image.remove_layer(layer)
        raise
    finally:
        pdb.gimp_image_undo_group_end(image)
    return layer


def _stylize(image, drawable, style_file, preset, architecture, smoothing, size, iterations, strength,
             preserve_colors, seed, device, layer_name):
    if image.base_type == INDEXED:
        raise common.FilterError("indexed images are not supported: use Image > Mode > RGB (or "
                                 "Grayscale) first")
    if drawable is None or not isinstance(drawable, gimp.Layer):
        raise common.FilterError("select a layer (not a mask or channel) in the Layers dialog")
    style = common.read_style(style_file)
    options = common.engine_options(
        _nick(common.PRESETS, preset), _nick(common.ARCHITECTURES, architecture),
        _nick(common.SMOOTHING, smoothing), int(size), int(iterations), strength, preserve_colors,
        int(seed), _nick(common.DEVICES, device))
    intersects, x, y, w, h = pdb.gimp_drawable_mask_intersect(drawable)
    region = common.stylised_region(intersects, x, y, w, h, drawable.width, drawable.height, drawable.name)
    layout = common.PixelLayout(drawable.bpp, 1)  # legacy pixel regions: 8 bits per sample
    gimp.progress_init(common.PLUGIN_TITLE)

    def progress(fraction, text):
        pdb.gimp_progress_set_text("%s: %s" % (common.PLUGIN_TITLE, text))
        gimp.progress_update(min(1.0, max(0.0, float(fraction))))

    raw = drawable.get_pixel_rgn(region.x, region.y, region.width, region.height, False, False)[
        region.x:region.x + region.width, region.y:region.y + region.height]
    client = swag_client.EngineClient.from_config(LIB_DIR)
    pixels = common.stylize_pixels(client, raw, region.width, region.height, layout, style, options,
                                   progress, lambda: False)
    _add_result_layer(image, drawable, common.layer_name(layer_name, style_file), region, pixels)


def swag_style_transfer(image, drawable, *args):
    try:
        _stylize(image, drawable, *args)
    except Exception as exc:
        message = common.error_message(exc)
        if message is not None:  # None: cancelled, nothing to report
            raise common.FilterError(message)
    gimp.displays_flush()


def _option_labels(choices):
    return tuple(label for _, label in choices)


def _default_index(choices, nick):
    return common.nicks(choices).index(nick)


D = common.DEFAULTS
register(
    "python-fu-swag-style-transfer",
    "Paint the layer in the style of an image (SWAG style transfer)",
    "Stylises the selected layer, or the selected area of it, with a style image and puts the result "
    "in a new layer above it. Runs through the local SWAG engine.",
    "SWAG Style Transfer authors", "SWAG Style Transfer authors", "2026",
    "SWAG Style Transfer...",
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Input image", None),
        (PF_DRAWABLE, "drawable", "Input layer", None),
        (PF_FILE, "style-file", "Style image", ""),
        (PF_OPTION, "preset", "Quality", _default_index(common.PRESETS, D["preset"]),
         _option_labels(common.PRESETS)),
        (PF_OPTION, "architecture", "Network", _default_index(common.ARCHITECTURES, D["architecture"]),
         _option_labels(common.ARCHITECTURES)),
        (PF_OPTION, "smoothing", "Smoothing", _default_index(common.SMOOTHING, D["smoothing"]),
         _option_labels(common.SMOOTHING)),
        (PF_SPINNER, "size", "Working size (0 = the preset's)", D["size"], (0, common.MAX_SIZE, 64)),
        (PF_SPINNER, "iterations", "Iterations (0 = the preset's)", D["iterations"],
         (0, common.MAX_ITERATIONS, 10)),
        (PF_SLIDER, "strength", "Strength", D["strength"], (0.0, 1.0, 0.05)),
        (PF_TOGGLE, "preserve-colors", "Keep colours", D["preserve-colors"]),
        (PF_SPINNER, "seed", "Seed", D["seed"], (0, common.MAX_SEED, 1)),
        (PF_OPTION, "device", "Device", _default_index(common.DEVICES, D["device"]),
         _option_labels(common.DEVICES)),
        (PF_STRING, "layer-name", "Layer name (empty = SWAG: style file name)", D["layer-name"]),
    ],
    [],
    swag_style_transfer,
    menu="<Image>/Filters/Artistic",
)

main()
