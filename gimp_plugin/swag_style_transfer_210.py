#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 plug-in (Python-Fu, Python 2.7): Filters > Artistic > SWAG Style Transfer...

The same filter as the GIMP 3 plug-in: registered from the same argument table
(swag_gimp_common.ARGUMENTS) and run by the same swag_filter.run, with Gimp210Host, GIMP 2.10's
calls. The installer puts this file in GIMP 2.10's plug-ins folder with
swag_style_transfer_210_lib/ next to it (the shared modules, the engine client and
swag_engine.json).

Differences forced by GIMP 2.10:
- one layer at a time (GIMP 2.10 selects one drawable);
- pixels come through the legacy 8-bit pixel regions: 16-bit and float images are stylised at
  8 bits and converted back by GIMP;
- gimpfu's dialog has no room for the line that says what the chosen preset works at;
- gimpfu does not tell the function its run mode: a failure is raised as an exception, which
  GIMP shows in an error dialog when interactive and returns as EXECUTION_ERROR with the message
  in batch; the new image of animation frames is opened in a window where GIMP has windows, and
  is not returned to a caller (batch use of animation frames is GIMP 3's).
Cancelling the progress makes GIMP kill the plug-in, before the image was changed; the engine
cancels the job about 10 s later, when its polls have stopped (swag_client.ABANDON_AFTER).
"""

import os
import sys

LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "swag_style_transfer_210_lib")
sys.path.insert(0, LIB_DIR)

from gimpfu import *  # noqa: E402,F401,F403 (gimpfu's documented use)

import swag_client  # noqa: E402
import swag_filter  # noqa: E402
import swag_gimp_common as common  # noqa: E402
import swag_pixels  # noqa: E402

_PARAM = {
    common.FILE: lambda a: (PF_FILE, a.name, a.text, ""),
    common.LAYER: lambda a: (PF_LAYER, a.name, a.text, None),
    common.CHOICE: lambda a: (PF_OPTION, a.name, a.text, a.nicks().index(a.default),
                              tuple(label for _, label in a.choices)),
    common.INT: lambda a: (PF_SPINNER, a.name, a.text, a.default, (a.low, a.high, a.step)),
    common.DOUBLE: lambda a: (PF_SLIDER, a.name, a.text, a.default, (a.low, a.high, a.step)),
    common.BOOLEAN: lambda a: (PF_TOGGLE, a.name, a.text, a.default),
    common.STRING: lambda a: (PF_STRING, a.name, a.text, a.default),
}


def _values(args):
    """gimpfu's arguments (in ARGUMENTS' order, options as indices) -> {name: value}."""
    values = {}
    for argument, value in zip(common.ARGUMENTS, args):
        if argument.kind == common.CHOICE:
            try:
                value = argument.nicks()[int(value)]
            except (IndexError, TypeError, ValueError):
                raise common.FilterError("%s option number %r is out of range: choose 0 to %d"
                                         % (argument.name, value, len(argument.choices) - 1))
        values[argument.name] = value
    return values


class Gimp210Host(object):
    """GIMP 2.10's calls for swag_filter.run (which lists what each one does)."""

    def image_kind(self, image):
        return {RGB: "rgb", GRAY: "gray"}.get(image.base_type, "indexed")

    def layer_problem(self, drawable):
        if drawable is None or not isinstance(drawable, gimp.Layer):
            return "select a layer (not a mask or channel) in the Layers dialog"
        if pdb.gimp_item_is_group(drawable):
            return ("%r is a layer group: select a layer inside it, or Layer > Merge Layer Group first"
                    % drawable.name)
        return None

    def name(self, drawable):
        return drawable.name

    def size(self, drawable):
        return drawable.width, drawable.height

    def mask_intersect(self, drawable):
        return pdb.gimp_drawable_mask_intersect(drawable)

    def read(self, drawable, region):
        rgn = drawable.get_pixel_rgn(region.x, region.y, region.width, region.height, False, False)
        return (rgn[region.x:region.x + region.width, region.y:region.y + region.height],
                swag_pixels.PixelLayout(drawable.bpp, 1))

    def style_png(self, layer):
        if layer.image.base_type == INDEXED:  # its pixel regions hold palette indices
            raise common.FilterError("style layer %r is in an indexed image: use Image > Mode > RGB on that "
                                     "image first" % layer.name)
        raw = layer.get_pixel_rgn(0, 0, layer.width, layer.height, False, False)[0:layer.width, 0:layer.height]
        return swag_client.encode_png(layer.width, layer.height, layer.bpp, 8, raw)

    def frames(self, image):
        return list(reversed(image.layers))

    def selection_empty(self, image):
        return pdb.gimp_selection_is_empty(image)

    def progress_init(self, text):
        gimp.progress_init(text)

    def progress(self, fraction, text):
        pdb.gimp_progress_set_text(text)
        gimp.progress_update(fraction)

    def undo_group_start(self, image):
        pdb.gimp_image_undo_group_start(image)

    def undo_group_end(self, image):
        pdb.gimp_image_undo_group_end(image)

    def copy_above(self, image, source, name):
        layer = pdb.gimp_layer_new_from_drawable(source, image)
        layer.name = name
        layer.mode = LAYER_MODE_NORMAL
        layer.opacity = 100.0
        layer.visible = True
        image.insert_layer(layer, source.parent, pdb.gimp_image_get_item_position(image, source))
        if layer.mask is not None:
            layer.remove_mask(MASK_DISCARD)
        return layer

    def write(self, layer, region, layout, pixels):
        rgn = layer.get_pixel_rgn(region.x, region.y, region.width, region.height, True, False)
        rgn[region.x:region.x + region.width, region.y:region.y + region.height] = pixels

    def update(self, layer):
        layer.flush()
        layer.update(0, 0, layer.width, layer.height)

    def mask_from_selection(self, layer):
        layer.add_mask(layer.create_mask(ADD_MASK_SELECTION))

    def remove(self, image, layer):
        image.remove_layer(layer)

    def duplicate(self, image):
        return pdb.gimp_image_duplicate(image)

    def delete(self, image):
        pdb.gimp_image_delete(image)


def swag_style_transfer(image, drawable, *args):
    try:
        new_image = swag_filter.run(Gimp210Host(), swag_client.EngineClient.from_config(LIB_DIR), image,
                                    [] if drawable is None else [drawable], _values(args))
    except Exception as exc:
        message = common.error_message(exc)
        if message is not None:  # None: cancelled, nothing to report
            raise common.FilterError(message)
        return
    if new_image is not None:
        try:
            gimp.Display(new_image)
        except RuntimeError:
            pass  # GIMP without windows (gimp -i): the new image stays open for the batch code
    gimp.displays_flush()


register(
    common.PROCEDURE, common.BLURB,
    common.HELP + " In GIMP 2.10 the dialog cannot show the presets' working sizes; Working size and "
    "Iterations at 0 take the preset's.",
    common.AUTHORS, common.AUTHORS, common.DATE, common.MENU_LABEL, common.IMAGE_TYPES,
    [(PF_IMAGE, "image", "Input image", None), (PF_DRAWABLE, "drawable", "Input layer", None)]
    + [_PARAM[argument.kind](argument) for argument in common.ARGUMENTS],
    [],
    swag_style_transfer,
    menu=common.MENU_PATH,
)

main()
