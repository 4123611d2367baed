#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Artistic > SWAG Style Transfer...

Registers the filter's arguments from swag_gimp_common.ARGUMENTS (the table the GIMP 2.10
plug-in registers from too), shows GIMP's own dialog for them with a line that says what the
chosen preset works at, and runs swag_filter.run with Gimp3Host, GIMP 3's calls for what the run
needs. The engine is reached through swag_client.py.

Cancelling: GIMP ends a plug-in whose progress the user cancels by killing its process (SIGKILL:
no handler runs); there is no call through which a GIMP 3 Python plug-in learns of the cancel.
The image is only changed after every engine job has succeeded, so a killed plug-in leaves it
exactly as it was. Its engine job stops about 10 s later: the client submits it with
abandon_after (swag_client.ABANDON_AFTER), and the engine cancels a job whose status nobody has
asked for that long.
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject  # noqa: E402

import swag_client  # noqa: E402
import swag_filter  # noqa: E402
import swag_gimp_common as common  # noqa: E402
import swag_pixels  # noqa: E402

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
RW = GObject.ParamFlags.READWRITE
PRESET_INFO = "preset-info"  # the dialog's line under Quality
POLL_MS = 500  # how often the dialog asks a starting engine whether it is ready


def _choice(choices):
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(choices):
        choice.add(nick, index, label, "")
    return choice


_ADD_ARGUMENT = {
    common.FILE: lambda proc, a: proc.add_file_argument(a.name, a.label, a.help, Gimp.FileChooserAction.OPEN,
                                                        True, None, RW),
    common.LAYER: lambda proc, a: proc.add_layer_argument(a.name, a.label, a.help, True, RW),
    common.CHOICE: lambda proc, a: proc.add_choice_argument(a.name, a.label, a.help, _choice(a.choices),
                                                            a.default, RW),
    common.INT: lambda proc, a: proc.add_int_argument(a.name, a.label, a.help, a.low, a.high, a.default, RW),
    common.DOUBLE: lambda proc, a: proc.add_double_argument(a.name, a.label, a.help, a.low, a.high, a.default, RW),
    common.BOOLEAN: lambda proc, a: proc.add_boolean_argument(a.name, a.label, a.help, a.default, RW),
    common.STRING: lambda proc, a: proc.add_string_argument(a.name, a.label, a.help, a.default, RW),
}


def _values(config):
    """The arguments' values, with the style file as a path."""
    values = dict((a.name, config.get_property(a.name)) for a in common.ARGUMENTS)
    style_file = values["style-file"]
    values["style-file"] = style_file.get_path() if style_file is not None else None
    return values


def _format(layout):
    """The babl format for pixels in `layout`. Gamma-encoded (the primed names): the engine works
    on sRGB values as stored in image files; "RGBA" would be linear light."""
    return (("Y'" if layout.colour_channels == 1 else "R'G'B'") + ("A" if layout.has_alpha else "")
            + (" u16" if layout.sample_bytes == 2 else " u8"))


class Gimp3Host(object):
    """GIMP 3's calls for swag_filter.run (which lists what each one does)."""

    def image_kind(self, image):
        kinds = {Gimp.ImageBaseType.RGB: "rgb", Gimp.ImageBaseType.GRAY: "gray"}
        return kinds.get(image.get_base_type(), "indexed")

    def layer_problem(self, drawable):
        if not isinstance(drawable, Gimp.Layer):
            return ("%r is not a layer: select a layer (not a mask or channel) in the Layers dialog"
                    % drawable.get_name())
        if drawable.is_group():
            return ("%r is a layer group: select the layers inside it, or Layer > Merge Layer Group first"
                    % drawable.get_name())
        return None

    def name(self, drawable):
        return drawable.get_name()

    def size(self, drawable):
        return drawable.get_width(), drawable.get_height()

    def mask_intersect(self, drawable):
        return drawable.mask_intersect()

    def read(self, drawable, region):
        """8-bit images as u8; deeper ones as u16, which keeps 16-bit images exact and float
        images to 1/65535 (values outside 0..1 are clipped: the engine's images have no room)."""
        image = drawable.get_image()
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        deep = int(image.get_precision()) >= int(Gimp.Precision.U16_LINEAR)
        alpha = drawable.has_alpha()
        layout = swag_pixels.PixelLayout((1 if gray else 3) + (1 if alpha else 0), 2 if deep else 1)
        rect = Gegl.Rectangle.new(region.x, region.y, region.width, region.height)
        return drawable.get_buffer().get(rect, 1.0, _format(layout), Gegl.AbyssPolicy.CLAMP), layout

    def style_png(self, layer):
        width, height = layer.get_width(), layer.get_height()
        rect = Gegl.Rectangle.new(0, 0, width, height)
        return swag_client.encode_png(width, height, 3, 8, layer.get_buffer().get(rect, 1.0, "R'G'B' u8",
                                                                                  Gegl.AbyssPolicy.CLAMP))

    def frames(self, image):
        return list(reversed(image.get_layers()))

    def selection_empty(self, image):
        return Gimp.Selection.is_empty(image)

    def progress_init(self, text):
        Gimp.progress_init(text)

    def progress(self, fraction, text):
        Gimp.progress_set_text(text)
        Gimp.progress_update(fraction)

    def undo_group_start(self, image):
        image.undo_group_start()

    def undo_group_end(self, image):
        image.undo_group_end()

    def copy_above(self, image, source, name):
        layer = Gimp.Layer.new_from_drawable(source, image)
        layer.set_name(name)
        layer.set_mode(Gimp.LayerMode.NORMAL)
        layer.set_opacity(100.0)
        layer.set_visible(True)
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        if layer.get_mask() is not None:
            layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
        return layer

    def write(self, layer, region, layout, pixels):
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(region.x, region.y, region.width, region.height), _format(layout), pixels)
        buf.flush()

    def update(self, layer):
        layer.update(0, 0, layer.get_width(), layer.get_height())

    def mask_from_selection(self, layer):
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))

    def remove(self, image, layer):
        image.remove_layer(layer)

    def duplicate(self, image):
        return image.duplicate()

    def delete(self, image):
        image.delete()


class _PresetInfo(object):
    """Keeps the dialog's line under Quality up to date: what the chosen preset works at, as the
    engine reports it. An engine that is not running is started at once, in the background, so
    that it is warm when the user presses OK; until it answers the line says so, and when GIMP
    cannot start it the line says why, before the user has chosen anything."""

    def __init__(self, config, label):
        self.config, self.label = config, label
        self.client = self.presets = self.note = self.timer = None
        try:
            self.client = swag_client.EngineClient.from_config(PLUGIN_DIR)
            self.presets = self.client.presets()
            if self.presets is None:
                self.client.start()
                self.note = "starting the engine..."
                self.timer = GLib.timeout_add(POLL_MS, self._poll)
        except swag_client.EngineError as exc:
            self.note = str(exc)
        config.connect("notify::preset", lambda *args: self._show())
        self._show()

    def _poll(self):
        """Ask the starting engine again; GLib calls this every POLL_MS while it returns True."""
        try:
            self.presets = self.client.presets()
            waiting = self.presets is None and self.client.process.poll() is None
            if self.presets is None and not waiting:
                self.note = "the engine stopped while starting; its log is %s" % self.client.log_file
        except swag_client.EngineError as exc:  # another program answers at the engine's URL
            self.note, waiting = str(exc), False
        self._show()
        if not waiting:
            self.timer = None
        return waiting

    def _show(self):
        self.label.set_text(common.preset_text(self.presets, self.config.get_property("preset"), self.note))

    def stop(self):
        if self.timer is not None:
            GLib.source_remove(self.timer)
            self.timer = None


def _dialog(procedure, config):
    """GIMP's dialog for the arguments. Returns (accepted, the engine client it made or None)."""
    GimpUi.init(common.PROCEDURE)
    # An empty string argument can arrive as None (GIMP 3.0.4 passes "" that way between
    # processes), and its text entry complains (Gtk-CRITICAL) when shown None.
    for argument in common.ARGUMENTS:
        if argument.kind == common.STRING and config.get_property(argument.name) is None:
            config.set_property(argument.name, "")
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    label = dialog.get_label(PRESET_INFO, "", False, False)
    label.set_line_wrap(True)
    label.set_max_width_chars(60)
    names = [a.name for a in common.ARGUMENTS]
    names.insert(names.index("preset") + 1, PRESET_INFO)
    dialog.fill(names)
    for name, source in (("style-file", "file"), ("style-layer", "layer")):  # only the one in use
        dialog.set_sensitive_if_in(name, None, "style-source", Gimp.ValueArray.new_from_values(
            [GObject.Value(GObject.TYPE_STRING, source)]), True)
    info = _PresetInfo(config, label)
    try:
        accepted = dialog.run()
    finally:
        info.stop()
        dialog.destroy()
    return accepted, info.client


class SwagStyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self):
        return [common.PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types(common.IMAGE_TYPES)
        # One selected layer or several: each gets its own stylised layer.
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES)
        proc.set_menu_label(common.MENU_LABEL)
        proc.add_menu_path(common.MENU_PATH)
        proc.set_documentation(common.BLURB, common.HELP, name)
        proc.set_attribution(common.AUTHORS, common.AUTHORS, common.DATE)
        for argument in common.ARGUMENTS:
            _ADD_ARGUMENT[argument.kind](proc, argument)
        proc.add_image_return_value("new-image", "New image", "The stylised animation (with Animation frames; "
                                    "otherwise none)", True, RW)
        return proc

    def run(self, procedure, run_mode, image, drawables, config, data):
        client = None
        if run_mode == Gimp.RunMode.INTERACTIVE:
            accepted, client = _dialog(procedure, config)
            if not accepted:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        try:
            client = client or swag_client.EngineClient.from_config(PLUGIN_DIR)
            new_image = swag_filter.run(Gimp3Host(), client, image, drawables, _values(config))
        except Exception as exc:  # every failure is one message, which GIMP shows; the image is unchanged
            message = common.error_message(exc)
            if message is None:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
            return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
        finally:
            Gimp.progress_end()
        if run_mode != Gimp.RunMode.NONINTERACTIVE:
            if new_image is not None:
                Gimp.Display.new(new_image)
            Gimp.displays_flush()
        return Gimp.ValueArray.new_from_values([GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
                                                GObject.Value(Gimp.Image, new_image)])


Gimp.main(SwagStyleTransfer.__gtype__, sys.argv)
