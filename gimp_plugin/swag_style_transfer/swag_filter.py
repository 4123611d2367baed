"""The filter's run, the same in GIMP 3 and GIMP 2.10: the layers to stylise, the style, one
engine job per layer with the progress bar across all of them, then, in one undo step, a new
layer above each one; or, for animation frames, a new image whose frames are stylised, each
frame's job starting from half of the previous frame's stylisation carried onto it.

Nothing in the image changes until every job has succeeded, so a failure, or a cancel (GIMP
kills the plug-in), leaves it exactly as it was. Every GIMP call goes through `host`, which each
plug-in implements with its own API (Gimp3Host in swag_style_transfer.py, Gimp210Host in
swag_style_transfer_210.py):

    image_kind(image)               "rgb", "gray" or "indexed"
    layer_problem(drawable)         None, or why it cannot be stylised ("... is not a layer: ...")
    name(drawable), size(drawable)  its name; (width, height)
    mask_intersect(drawable)        (intersects, x, y, width, height) of the selection, layer coordinates
    read(drawable, region)          (raw pixels, swag_pixels.PixelLayout)
    style_png(layer)                the layer's colours as PNG bytes
    frames(image)                   the top-level layers, first frame (the bottom layer) first
    selection_empty(image)
    progress_init(text), progress(fraction, text)
    undo_group_start(image), undo_group_end(image)
    copy_above(image, source, name) GIMP's copy of `source` (its pixels, offsets and type), inserted
                                    right above it, shown as it is: normal mode, full opacity,
                                    visible, without the source's mask
    write(layer, region, layout, pixels), update(layer)
    mask_from_selection(layer)      the selection as the layer's mask
    remove(image, layer)
    duplicate(image), delete(image) GIMP's copy of an image (frames, their names and timing)

Standard library only and Python 2.7 compatible.
"""

from __future__ import division

import os
from collections import namedtuple

import swag_gimp_common as common
import swag_pixels


# One layer's job: its area's pixels before (raw) and after (pixels), in layout.
Stylised = namedtuple("Stylised", "layer region layout raw pixels")


def run(host, client, image, drawables, values):
    """Stylise the drawables (or every frame, with values["animation"]) with the engine behind
    `client` (swag_client.EngineClient). Returns the new image for animation frames, else None.
    Raises common.FilterError, swag_client.EngineError or swag_client.Cancelled."""
    if host.image_kind(image) == "indexed":
        raise common.FilterError("indexed images are not supported: use Image > Mode > RGB (or Grayscale) first")
    animation = bool(values["animation"])
    layers = host.frames(image) if animation else list(drawables)
    if not layers:
        raise common.FilterError("no layer is selected: select a layer in the Layers dialog")
    for layer in layers:  # every problem the user can fix is found before any engine work
        problem = host.layer_problem(layer)
        if problem:
            raise common.FilterError(problem)
    regions = [_region(host, layer) for layer in layers]
    style, style_name = _style(host, values)
    options = common.engine_options(values)

    host.progress_init(common.PLUGIN_TITLE)
    results = []
    for k, (layer, region) in enumerate(zip(layers, regions)):
        raw, layout = host.read(layer, region)
        init = _carried_init(results[-1], raw, region, layout) if animation and results else None
        png = client.stylize(swag_pixels.content_png(raw, region.width, region.height, layout), style, options,
                             progress=_progress(host, k, len(layers), "frame" if animation else "layer",
                                                host.name(layer)),
                             init_png=init)
        results.append(Stylised(layer, region, layout, raw,
                                swag_pixels.result_pixels(png, region.width, region.height, layout, raw)))
    if animation:
        return _new_animation(host, image, results)
    _add_layers(host, image, results, common.layer_name(values["layer-name"], style_name))
    return None


def _carried_init(previous, raw, region, layout):
    """The PNG an animation frame starts from: half of the previous frame's stylisation carried
    onto this frame (swag_pixels.carried), so that the texture stays in place. A frame of another
    size than the one before starts from itself."""
    if (previous.region.width, previous.region.height, previous.layout.channels, previous.layout.sample_bytes) != \
            (region.width, region.height, layout.channels, layout.sample_bytes):
        return None
    return swag_pixels.content_png(swag_pixels.carried(raw, previous.raw, previous.pixels, layout),
                                   region.width, region.height, layout)


def _region(host, layer):
    intersects, x, y, width, height = host.mask_intersect(layer)
    layer_width, layer_height = host.size(layer)
    return common.stylised_region(intersects, x, y, width, height, layer_width, layer_height, host.name(layer))


def _style(host, values):
    """(the style image as file bytes, its name for the new layer's name)."""
    source = values["style-source"]
    if source == "layer":
        layer = values["style-layer"]
        if layer is None:
            raise common.FilterError("no style layer chosen: pick a layer of an open image in the dialog, or "
                                     "set Style from to Image file")
        return host.style_png(layer), host.name(layer)
    if source != "file":
        raise common.FilterError("unknown style-source %r: choose one of %s"
                                 % (source, ", ".join(common.ARGUMENT["style-source"].nicks())))
    path = values["style-file"]
    return common.read_style(path), os.path.basename(path)


def _progress(host, k, count, what, name):
    """The client's progress for job k of count, as a fraction of all of them, with the stage
    the engine names ("scale 2 of 4: iteration 40 of 120") after the layer's or frame's number."""
    prefix = "" if count == 1 else "%s %d of %d (%s): " % (what, k + 1, count, name)

    def progress(fraction, text):
        host.progress((k + min(1.0, max(0.0, float(fraction)))) / count,
                      "%s: %s%s" % (common.PLUGIN_TITLE, prefix, text))
    return progress


def _add_layers(host, image, results, name):
    """In one undo group: for each source, a copy of it right above it with the stylised area
    written in, masked by the selection when there is one. The copy (GIMP's own) holds the
    source's pixels outside the selection, for when the mask is removed."""
    masked = not host.selection_empty(image)
    added = []
    host.undo_group_start(image)
    try:
        for result in results:
            layer = host.copy_above(image, result.layer, name)
            added.append(layer)
            host.write(layer, result.region, result.layout, result.pixels)
            if masked:
                host.mask_from_selection(layer)
            host.update(layer)
    except Exception:
        for layer in reversed(added):
            host.remove(image, layer)
        raise
    finally:
        host.undo_group_end(image)
    return added


def _new_animation(host, image, results):
    """GIMP's copy of the image (frame names and timing, precision, colour profile) with each
    frame stylised; the original is not touched."""
    new = host.duplicate(image)
    try:
        for result, frame in zip(results, host.frames(new)):
            host.write(frame, result.region, result.layout, result.pixels)
            host.update(frame)
    except Exception:
        host.delete(new)
        raise
    return new
