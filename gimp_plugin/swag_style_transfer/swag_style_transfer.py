#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Artistic > SWAG Style Transfer...

Stylises the selected layer (or the selected area of it) with a style image through the local
SWAG engine service, into a new layer directly above it. The pixel and option logic shared with
the GIMP 2.10 plug-in is in swag_gimp_common.py; the engine is reached through swag_client.py.

Cancelling: GIMP ends a plug-in whose progress the user cancels by killing its process (SIGKILL:
no handler runs); there is no call through which a GIMP 3 Python plug-in learns of the cancel,
so the client is given should_cancel=lambda: False. The image is only changed after the engine's
result has arrived, so a killed plug-in leaves it exactly as it was. Its engine job stops
about 10 s later: the client submits it with abandon_after (swag_client.ABANDON_AFTER), and the
engine cancels a job whose status nobody has asked for that long.
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject  # noqa: E402

import swag_client  # noqa: E402
import swag_gimp_common as common  # noqa: E402

PROCEDURE = "python-fu-swag-style-transfer"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
RW = GObject.ParamFlags.READWRITE


def _choice(choices):
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(choices):
        choice.add(nick, index, label, "")
    return choice


def _pixel_format(drawable, image):
    """The babl format the pixels are read and written in, and its layout. Gamma-encoded (the
    primed names): the engine works on sRGB values as stored in image files. 8-bit images as
    u8; deeper ones as u16, which keeps 16-bit images exact and float images to 1/65535
    (values outside 0..1 are clipped, as the engine's images have no room for them)."""
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    deep = int(image.get_precision()) >= int(Gimp.Precision.U16_LINEAR)
    alpha = drawable.has_alpha()
    name = ("Y'" if gray else "R'G'B'") + ("A" if alpha else "") + (" u16" if deep else " u8")
    return name, common.PixelLayout((1 if gray else 3) + (1 if alpha else 0), 2 if deep else 1)


def _read(drawable, region, fmt):
    rect = Gegl.Rectangle.new(region.x, region.y, region.width, region.height)
    return drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)


def _write(layer, region, fmt, data):
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(region.x, region.y, region.width, region.height), fmt, data)
    buf.flush()


def _check_target(image, drawable):
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise common.FilterError("indexed images are not supported: use Image > Mode > RGB (or "
                                 "Grayscale) first")
    if not isinstance(drawable, Gimp.Layer):
        raise common.FilterError("%r is not a layer: select a layer (not a mask or channel) in the "
                                 "Layers dialog" % drawable.get_name())


def _add_result_layer(image, source, name, fmt, region, pixels):
    """Inside one undo group: a layer like `source` directly above it, holding the source's
    pixels with `pixels` in `region`, masked by the selection when there is one."""
    width, height = source.get_width(), source.get_height()
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    if source.has_alpha():
        kind = Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE
    else:
        kind = Gimp.ImageType.GRAY_IMAGE if gray else Gimp.ImageType.RGB_IMAGE
    whole = common.Region(0, 0, width, height)
    partial = (region.width, region.height) != (width, height)
    image.undo_group_start()
    layer = inserted = None
    try:
        layer = Gimp.Layer.new(image, name, width, height, kind, 100.0, Gimp.LayerMode.NORMAL)
        inserted = image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        _, x, y = source.get_offsets()
        layer.set_offsets(x, y)
        if partial:  # outside the selection the result shows the source, for when the mask is removed
            _write(layer, whole, fmt, _read(source, whole, fmt))
        _write(layer, region, fmt, pixels)
        if not Gimp.Selection.is_empty(image):
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
        layer.update(0, 0, width, height)
    except Exception:
        if inserted:
            image.remove_layer(layer)
        raise
    finally:
        image.undo_group_end()
    return layer


class SwagStyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("SWAG Style Transfer...")
        proc.add_menu_path("<Image>/Filters/Artistic")
        proc.set_documentation(
            "Paint the layer in the style of an image (SWAG style transfer)",
            "Stylises the selected layer, or the selected area of it, with a style image and puts "
            "the result in a new layer above it. Runs through the local SWAG engine.",
            name)
        proc.set_attribution("SWAG Style Transfer authors", "SWAG Style Transfer authors", "2026")
        d = common.DEFAULTS
        proc.add_file_argument("style-file", "_Style image", "The image whose style is applied",
                               Gimp.FileChooserAction.OPEN, True, None, RW)
        proc.add_choice_argument("preset", "_Quality", "Speed and quality preset",
                                 _choice(common.PRESETS), d["preset"], RW)
        proc.add_choice_argument("architecture", "_Network", "Network whose features define the style",
                                 _choice(common.ARCHITECTURES), d["architecture"], RW)
        proc.add_choice_argument("smoothing", "S_moothing", "SWAG smoothing of the activations",
                                 _choice(common.SMOOTHING), d["smoothing"], RW)
        proc.add_int_argument("size", "Working si_ze", "Working long side in pixels (0 = the preset's)",
                              0, common.MAX_SIZE, d["size"], RW)
        proc.add_int_argument("iterations", "_Iterations", "Optimiser iterations (0 = the preset's)",
                              0, common.MAX_ITERATIONS, d["iterations"], RW)
        proc.add_double_argument("strength", "S_trength", "1 = fully stylised, 0 = the original",
                                 0.0, 1.0, d["strength"], RW)
        proc.add_boolean_argument("preserve-colors", "_Keep colours", "Transfer the texture only, keep "
                                  "the layer's colours", d["preserve-colors"], RW)
        proc.add_int_argument("seed", "S_eed", "Random seed (for random network weights)",
                              0, common.MAX_SEED, d["seed"], RW)
        proc.add_choice_argument("device", "_Device", "Where the engine computes",
                                 _choice(common.DEVICES), d["device"], RW)
        proc.add_string_argument("layer-name", "_Layer name", 'Name of the new layer (empty = "SWAG: " '
                                 "and the style file's name)", d["layer-name"], RW)
        return proc

    def run(self, procedure, run_mode, image, drawables, config, data):
        interactive = run_mode == Gimp.RunMode.INTERACTIVE
        if interactive:
            GimpUi.init(PROCEDURE)
            dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
            dialog.fill(None)
            accepted = dialog.run()
            dialog.destroy()
            if not accepted:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        try:
            _stylize(image, drawables, config)
        except Exception as exc:  # every failure becomes a message; the image is unchanged
            message = common.error_message(exc)
            if message is None:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            if interactive:
                Gimp.message(message)
            return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
        finally:
            Gimp.progress_end()
        if interactive:
            Gimp.displays_flush()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def _stylize(image, drawables, config):
    if not drawables:
        raise common.FilterError("no layer is selected: select a layer in the Layers dialog")
    source = drawables[0]
    _check_target(image, source)
    style_file = config.get_property("style-file")
    style_path = style_file.get_path() if style_file is not None else None
    style = common.read_style(style_path)
    options = common.engine_options(
        config.get_property("preset"), config.get_property("architecture"),
        config.get_property("smoothing"), config.get_property("size"),
        config.get_property("iterations"), config.get_property("strength"),
        config.get_property("preserve-colors"), config.get_property("seed"),
        config.get_property("device"))
    intersects, x, y, w, h = source.mask_intersect()
    region = common.stylised_region(intersects, x, y, w, h, source.get_width(), source.get_height(),
                                    source.get_name())
    fmt, layout = _pixel_format(source, image)
    Gimp.progress_init(common.PLUGIN_TITLE)

    def progress(fraction, text):
        Gimp.progress_set_text("%s: %s" % (common.PLUGIN_TITLE, text))
        Gimp.progress_update(min(1.0, max(0.0, float(fraction))))

    client = swag_client.EngineClient.from_config(PLUGIN_DIR)
    pixels = common.stylize_pixels(client, _read(source, region, fmt), region.width, region.height,
                                   layout, style, options, progress, lambda: False)
    _add_result_layer(image, source, common.layer_name(config.get_property("layer-name"), style_path),
                      fmt, region, pixels)


Gimp.main(SwagStyleTransfer.__gtype__, sys.argv)
