"""Stand-in for GIMP 3's `gi.repository` (Gimp, GimpUi, Gegl, GLib, GObject, Gio), with the
signatures of GIMP 3.0.4 as seen in a real GIMP (../../notes: the API findings), over model.py.

Where GIMP 3.0.4 only prints a warning and keeps going (an invalid value given to a procedure
config), the stand-in raises: a test must not run with a value it did not mean.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import re
import sys
import time
import types

from . import model
from .model import ImageBaseType, ImageType, Precision, ShimError

_CANONICAL = re.compile(r"^[a-z][a-z0-9-]*$")  # GIMP's rule for procedure and argument names


def _check_str(value, what):
    if not isinstance(value, str):
        raise ShimError(f"{what} must be a str, not {type(value).__name__}")


def _check_int(value, what):
    if not isinstance(value, int) or isinstance(value, bool):
        raise ShimError(f"{what} must be an int, not {value!r}")


class PDBProcType(enum.IntEnum):
    INTERNAL = 0
    PLUGIN = 1
    PERSISTENT = 2
    TEMPORARY = 3


class PDBStatusType(enum.IntEnum):
    EXECUTION_ERROR = 0
    CALLING_ERROR = 1
    PASS_THROUGH = 2
    SUCCESS = 3
    CANCEL = 4


class RunMode(enum.IntEnum):
    INTERACTIVE = 0
    NONINTERACTIVE = 1
    WITH_LAST_VALS = 2


class ProcedureSensitivityMask(enum.IntFlag):
    DRAWABLE = 1
    DRAWABLES = 4
    NO_DRAWABLES = 8
    NO_IMAGE = 16
    ALWAYS = 0x7FFFFFFF


class FileChooserAction(enum.IntEnum):
    ANY = -1
    OPEN = 0
    SAVE = 1
    SELECT_FOLDER = 2
    CREATE_FOLDER = 3


class LayerMode(enum.IntEnum):
    NORMAL_LEGACY = 0
    NORMAL = 28


class AddMaskType(enum.IntEnum):
    WHITE = 0
    BLACK = 1
    ALPHA = 2
    ALPHA_TRANSFER = 3
    SELECTION = 4
    COPY = 5
    CHANNEL = 6


class ChannelOps(enum.IntEnum):
    ADD = 0
    SUBTRACT = 1
    REPLACE = 2
    INTERSECT = 3


class ParamFlags(enum.IntFlag):
    READABLE = 1
    WRITABLE = 2
    READWRITE = 3


class MaskApplyMode(enum.IntEnum):
    APPLY = 0
    DISCARD = 1


class AbyssPolicy(enum.IntEnum):
    NONE = 0
    CLAMP = 1
    LOOP = 2
    BLACK = 3
    WHITE = 4


# ------------------------------------------------------------------ GLib, Gio, Gegl


class GLibError(Exception):
    def __init__(self, message):
        _check_str(message, "GLib.Error's message")
        super().__init__(message)
        self.message = message

    @classmethod
    def new_literal(cls, domain, message, code):
        return cls(message)


class Timeouts:
    """GLib.timeout_add's sources; the stand-in's dialog runs them while it is open, as GTK's main
    loop does (ProcedureDialog.run)."""

    def __init__(self):
        self.sources: dict[int, tuple] = {}
        self._next = 1

    def add(self, interval, function, *data):
        _check_int(interval, "the timeout interval (ms)")
        if not callable(function):
            raise ShimError("GLib.timeout_add needs a function")
        self.sources[self._next] = (interval, function, data)
        self._next += 1
        return self._next - 1

    def remove(self, source_id):
        if source_id not in self.sources:
            raise ShimError(f"GLib.source_remove({source_id}): no such source (it ended, or was removed)")
        del self.sources[source_id]
        return True

    def run(self, seconds):
        """Call each source every `interval` ms until it returns False or `seconds` have passed."""
        deadline = time.monotonic() + seconds
        while self.sources and time.monotonic() < deadline:
            time.sleep(min(interval for interval, _, _ in self.sources.values()) / 1000)
            for source_id, (_, function, data) in list(self.sources.items()):
                if source_id in self.sources and not function(*data):
                    del self.sources[source_id]


class GValue:
    """GObject.Value(type, value): the stand-in checks the type where it models it."""

    def __init__(self, value_type, value):
        if isinstance(value_type, type) and value is not None and not isinstance(value, value_type):
            raise ShimError(f"GObject.Value of type {value_type.__name__} cannot hold {value!r}")
        self.value_type, self.value = value_type, value


class GioFile:
    def __init__(self, path):
        _check_str(path, "a file path")
        self._path = path

    @classmethod
    def new_for_path(cls, path):
        return cls(path)

    def get_path(self):
        return self._path


class Rectangle:
    def __init__(self, x, y, width, height):
        for what, v in (("x", x), ("y", y), ("width", width), ("height", height)):
            _check_int(v, f"Gegl.Rectangle {what}")
        self.x, self.y, self.width, self.height = x, y, width, height

    @classmethod
    def new(cls, x, y, width, height):
        return cls(x, y, width, height)


class Buffer:
    def __init__(self, drawable: model.Drawable):
        self._d = drawable

    def get_extent(self):
        return Rectangle(0, 0, self._d.width, self._d.height)

    def get(self, rect, scale, format_name, abyss):
        if not isinstance(rect, Rectangle):
            raise ShimError(f"Buffer.get needs a Gegl.Rectangle, not {type(rect).__name__}")
        if scale != 1.0:
            raise ShimError(f"the stand-in reads at scale 1.0 only, not {scale!r}")
        if not isinstance(abyss, AbyssPolicy):
            raise ShimError(f"abyss policy must be a Gegl.AbyssPolicy, not {abyss!r}")
        return self._d.read(rect.x, rect.y, rect.width, rect.height, format_name,
                            clamp=abyss == AbyssPolicy.CLAMP)

    def set(self, rect, format_name, data):
        if not isinstance(rect, Rectangle):
            raise ShimError(f"Buffer.set needs a Gegl.Rectangle, not {type(rect).__name__}")
        self._d.write(rect.x, rect.y, rect.width, rect.height, format_name, data)

    def flush(self):
        pass


# ------------------------------------------------------------------ Gimp: items and images
# GIMP 3 objects wrap the model ones; `_wrap` keeps one wrapper per model object, so identity
# comparisons in plug-ins behave as with real GObjects.

_WRAPPERS: dict[int, object] = {}


def _wrap(obj):
    if obj is None:
        return None
    key = id(obj)
    if key not in _WRAPPERS:
        cls = {model.LayerMask: LayerMask, model.Layer: Layer, model.Channel: Channel,
               model.Image: Image}[type(obj)]
        wrapper = cls.__new__(cls)
        wrapper._m = obj
        _WRAPPERS[key] = (wrapper, obj)  # keep obj alive so its id is not reused
    return _WRAPPERS[key][0]


def _unwrap(obj, cls, what):
    if not isinstance(obj, cls):
        raise ShimError(f"{what} must be a Gimp.{cls.__name__}, not {type(obj).__name__}")
    return obj._m


class Drawable:
    def get_name(self):
        return self._m.name

    def set_name(self, name):
        _check_str(name, "the item name")
        self._m.name = name
        return True

    def is_group(self):
        return isinstance(self._m, model.Layer) and self._m.group

    def get_width(self):
        return self._m.width

    def get_height(self):
        return self._m.height

    def get_offsets(self):
        return True, self._m.offsets[0], self._m.offsets[1]

    def get_image(self):
        return _wrap(self._m.image)

    def get_buffer(self):
        return Buffer(self._m)

    def has_alpha(self):
        return self._m.channels in (2, 4)

    def get_bpp(self):
        return self._m.channels  # the stand-in's images are 8-bit in this respect

    def update(self, x, y, w, h):
        for v in (x, y, w, h):
            _check_int(v, "update rectangle value")
        self._m.update(x, y, w, h)
        return True

    def mask_intersect(self):
        if isinstance(self._m, model.Layer):
            return self._m.mask_intersect()
        return True, 0, 0, self._m.width, self._m.height


class Channel(Drawable):
    pass


class LayerMask(Channel):
    pass


class Layer(Drawable):
    @classmethod
    def new(cls, image, name, width, height, kind, opacity, mode):
        if not isinstance(mode, LayerMode):
            raise ShimError(f"layer mode must be a Gimp.LayerMode, not {mode!r}")
        _check_str(name, "the layer name")
        return _wrap(model.Layer(_unwrap(image, Image, "the image"), name, width, height, kind, opacity, mode))

    @classmethod
    def new_from_drawable(cls, drawable, dest_image):
        source = _unwrap(drawable, Layer, "the drawable to copy")
        return _wrap(source.copy(_unwrap(dest_image, Image, "the image")))

    def set_offsets(self, x, y):
        self._m.set_offsets(x, y)
        return True

    def get_opacity(self):
        return self._m.opacity

    def set_opacity(self, opacity):
        if not isinstance(opacity, (int, float)) or isinstance(opacity, bool) or not 0 <= opacity <= 100:
            raise ShimError(f"opacity must be a number from 0 to 100, not {opacity!r}")
        self._m.opacity = float(opacity)
        return True

    def get_mode(self):
        return self._m.mode

    def set_mode(self, mode):
        if not isinstance(mode, LayerMode):
            raise ShimError(f"layer mode must be a Gimp.LayerMode, not {mode!r}")
        self._m.mode = mode
        return True

    def get_visible(self):
        return self._m.visible

    def set_visible(self, visible):
        if not isinstance(visible, bool):
            raise ShimError(f"visibility must be a bool, not {visible!r}")
        self._m.visible = visible
        return True

    def remove_mask(self, mode):
        if not isinstance(mode, MaskApplyMode):
            raise ShimError(f"mask apply mode must be a Gimp.MaskApplyMode, not {mode!r}")
        if mode != MaskApplyMode.DISCARD:
            raise ShimError("the stand-in removes masks with MaskApplyMode.DISCARD only")
        return self._m.remove_mask()

    def get_parent(self):
        return None  # the stand-in has no layer groups

    def get_mask(self):
        return _wrap(self._m.mask)

    def create_mask(self, mask_type):
        if not isinstance(mask_type, AddMaskType):
            raise ShimError(f"mask type must be a Gimp.AddMaskType, not {mask_type!r}")
        if mask_type == AddMaskType.SELECTION:
            values = self._m.selection_values()
        elif mask_type == AddMaskType.WHITE:
            values = [1.0] * (self._m.width * self._m.height)
        else:
            raise ShimError(f"the stand-in does not model {mask_type.name} masks")
        return _wrap(model.LayerMask(self._m, values))

    def add_mask(self, mask):
        return self._m.add_mask(_unwrap(mask, LayerMask, "the mask"))


class Image:
    @classmethod
    def new(cls, width, height, base_type):
        return _wrap(model.Image(width, height, base_type))

    @classmethod
    def new_with_precision(cls, width, height, base_type, precision):
        return _wrap(model.Image(width, height, base_type, precision))

    def get_base_type(self):
        return self._m.base_type

    def get_precision(self):
        return self._m.precision

    def get_width(self):
        return self._m.width

    def get_height(self):
        return self._m.height

    def get_layers(self):
        return [_wrap(l) for l in self._m.layers]

    def duplicate(self):
        return _wrap(self._m.duplicate())

    def delete(self):
        if self._m.deleted:
            raise ShimError("the image was deleted already")
        self._m.deleted = True
        return True

    def insert_layer(self, layer, parent, position):
        return self._m.insert_layer(_unwrap(layer, Layer, "the layer"),
                                    None if parent is None else _unwrap(parent, Layer, "the parent"), position)

    def remove_layer(self, layer):
        return self._m.remove_layer(_unwrap(layer, Layer, "the layer"))

    def get_item_position(self, item):
        return self._m.position(_unwrap(item, Layer, "the item"))

    def undo_group_start(self):
        return self._m.undo_group_start()

    def undo_group_end(self):
        return self._m.undo_group_end()

    def select_rectangle(self, op, x, y, w, h):
        if op != ChannelOps.REPLACE:
            raise ShimError("the stand-in selects with ChannelOps.REPLACE only")
        self._m.select_rectangle(x, y, w, h)
        return True


class Selection:
    @staticmethod
    def is_empty(image):
        return _unwrap(image, Image, "the image").selection is None

    @staticmethod
    def bounds(image):
        m = _unwrap(image, Image, "the image")
        if m.selection is None:
            return True, False, 0, 0, m.width, m.height
        return (True, True) + m.selection

    @staticmethod
    def none(image):
        _unwrap(image, Image, "the image").selection = None
        return True


# ------------------------------------------------------------------ Gimp: procedures


class Choice:
    def __init__(self):
        self._items: list[tuple[str, int, str, str]] = []

    @classmethod
    def new(cls):
        return cls()

    def add(self, nick, choice_id, label, help_text):
        _check_str(nick, "a choice nick")
        _check_int(choice_id, "a choice id")
        _check_str(label, "a choice label")
        _check_str(help_text, "a choice help")
        if nick in self.list_nicks() or choice_id in [i for _, i, _, _ in self._items]:
            raise ShimError(f"choice {nick!r} / id {choice_id} added twice")
        self._items.append((nick, choice_id, label, help_text))

    def list_nicks(self):
        return [n for n, _, _, _ in self._items]

    def is_valid(self, nick):
        return nick in self.list_nicks()

    def get_id(self, nick):
        return next(i for n, i, _, _ in self._items if n == nick)

    def get_label(self, nick):
        return next(l for n, _, l, _ in self._items if n == nick)


class Argument:
    def __init__(self, kind, name, nick, blurb, default, flags, minimum=None, maximum=None,
                 choice=None, action=None, none_ok=None):
        self.kind, self.name, self.nick, self.blurb, self.default = kind, name, nick, blurb, default
        self.flags, self.minimum, self.maximum = flags, minimum, maximum
        self.choice, self.action, self.none_ok = choice, action, none_ok

    def check(self, value):
        """Raise ShimError unless `value` is valid for this argument."""
        k, n = self.kind, self.name
        if k == "int":
            _check_int(value, f"argument {n!r}")
        elif k == "double":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ShimError(f"argument {n!r} must be a number, not {value!r}")
        elif k == "boolean":
            if not isinstance(value, bool):
                raise ShimError(f"argument {n!r} must be a bool, not {value!r}")
        elif k == "string":
            _check_str(value, f"argument {n!r}")
        elif k == "choice":
            if not isinstance(value, str) or not self.choice.is_valid(value):
                raise ShimError(f"argument {n!r}: {value!r} is not one of {self.choice.list_nicks()}")
        elif k == "layer":
            if value is None and not self.none_ok:
                raise ShimError(f"argument {n!r} may not be None")
            if value is not None and not isinstance(value, Layer):
                raise ShimError(f"argument {n!r} must be a Gimp.Layer, not {type(value).__name__}")
        elif k == "file":
            if value is None and not self.none_ok:
                raise ShimError(f"argument {n!r} may not be None")
            if value is not None and not isinstance(value, GioFile):
                raise ShimError(f"argument {n!r} must be a Gio.File, not {type(value).__name__}")
        if k in ("int", "double") and not self.minimum <= value <= self.maximum:
            raise ShimError(f"argument {n!r}: {value} is outside {self.minimum}..{self.maximum}")


class ProcedureConfig:
    def __init__(self, procedure):
        self._procedure = procedure
        self._values = {"run-mode": RunMode.INTERACTIVE, "image": None, "drawables": []}
        self._values.update({a.name: a.default for a in procedure.arguments})
        self._handlers: list[tuple[str, object]] = []

    def connect(self, signal, handler):
        """GObject's notify::PROPERTY signal, emitted when set_property changes the value."""
        if not signal.startswith("notify::") or not callable(handler):
            raise ShimError(f"the stand-in's config emits notify::PROPERTY signals only, not {signal!r}")
        self._procedure.argument(signal[len("notify::"):])
        self._handlers.append((signal[len("notify::"):], handler))
        return len(self._handlers)

    def set_property(self, name, value):
        if name == "drawables":
            raise TypeError("use set_core_object_array for 'drawables'")  # as in GIMP 3.0.4
        if name == "run-mode":
            if not isinstance(value, RunMode):
                raise ShimError(f"run-mode must be a Gimp.RunMode, not {value!r}")
        elif name == "image":
            if value is not None and not isinstance(value, Image):
                raise ShimError(f"image must be a Gimp.Image, not {type(value).__name__}")
        else:
            self._procedure.argument(name).check(value)
        changed = self._values.get(name) != value
        self._values[name] = value
        for prop, handler in list(self._handlers):
            if changed and prop == name:
                handler(self, name)

    def set_core_object_array(self, name, values):
        if name != "drawables":
            raise ShimError(f"{name!r} is not an object array")
        if not values or not all(isinstance(v, Drawable) for v in values):
            raise ShimError("drawables must be a non-empty list of Gimp drawables")
        self._values[name] = list(values)

    def get_property(self, name):
        if name not in self._values:
            raise ShimError(f"no property {name!r}")
        value = self._values[name]
        return list(value) if name == "drawables" else value

    def get_choice_id(self, name):
        arg = self._procedure.argument(name)
        return arg.choice.get_id(self._values[name])


class ValueArray:
    def __init__(self, procedure, values):
        self.procedure, self._values = procedure, values

    @classmethod
    def new_from_values(cls, values):
        if not all(isinstance(v, GValue) for v in values):
            raise ShimError("Gimp.ValueArray.new_from_values takes a list of GObject.Value")
        return cls(None, [v.value for v in values])

    def index(self, i):
        return self._values[i]

    def length(self):
        return len(self._values)


class ImageProcedure:
    def __init__(self, plugin, name, proc_type, run_func, run_data):
        if not isinstance(plugin, PlugIn):
            raise ShimError("ImageProcedure.new needs the plug-in object")
        _check_str(name, "the procedure name")
        if not _CANONICAL.match(name):
            raise ShimError(f"procedure name {name!r} is not canonical (lowercase letters, digits, '-')")
        if not isinstance(proc_type, PDBProcType):
            raise ShimError(f"procedure type must be a Gimp.PDBProcType, not {proc_type!r}")
        if not callable(run_func):
            raise ShimError("the run function is not callable")
        self.name, self.proc_type, self._run, self._run_data = name, proc_type, run_func, run_data
        self.arguments: list[Argument] = []
        self.image_types = self.menu_label = self.documentation = self.attribution = None
        self.menu_paths: list[str] = []
        self.sensitivity = None
        self.last_exception: BaseException | None = None
        self.return_values: list[tuple[str, type, bool]] = []  # (name, type, none_ok)

    @classmethod
    def new(cls, plugin, name, proc_type, run_func, run_data):
        return cls(plugin, name, proc_type, run_func, run_data)

    # --- registration
    def set_image_types(self, types_):
        _check_str(types_, "image types")
        self.image_types = types_

    def get_image_types(self):
        return self.image_types

    def set_sensitivity_mask(self, mask):
        if not isinstance(mask, ProcedureSensitivityMask):
            raise ShimError(f"sensitivity must be a Gimp.ProcedureSensitivityMask, not {mask!r}")
        self.sensitivity = mask

    def set_menu_label(self, label):
        _check_str(label, "the menu label")
        self.menu_label = label

    def add_menu_path(self, path):
        _check_str(path, "a menu path")
        if not path.startswith("<Image>/"):
            raise ShimError(f"menu path {path!r} does not start with <Image>/")
        self.menu_paths.append(path)

    def get_menu_paths(self):
        return list(self.menu_paths)

    def set_documentation(self, blurb, help_text, help_id):
        for v in (blurb, help_text, help_id):
            _check_str(v, "documentation")
        self.documentation = (blurb, help_text, help_id)

    def set_attribution(self, authors, copyright_, date):
        for v in (authors, copyright_, date):
            _check_str(v, "attribution")
        self.attribution = (authors, copyright_, date)

    def _add(self, arg: Argument):
        _check_str(arg.name, "an argument name")
        if not _CANONICAL.match(arg.name) or arg.name in ("run-mode", "image", "drawables"):
            raise ShimError(f"argument name {arg.name!r} is not canonical or is reserved")
        if any(a.name == arg.name for a in self.arguments):
            raise ShimError(f"argument {arg.name!r} added twice")
        _check_str(arg.nick, "an argument nick")
        _check_str(arg.blurb, "an argument blurb")
        if not isinstance(arg.flags, ParamFlags):
            raise ShimError(f"argument flags must be GObject.ParamFlags, not {arg.flags!r}")
        if arg.kind in ("int", "double"):
            if not arg.minimum <= arg.maximum:
                raise ShimError(f"argument {arg.name!r}: minimum above maximum")
        arg.check(arg.default)
        self.arguments.append(arg)

    def add_int_argument(self, name, nick, blurb, minimum, maximum, default, flags):
        for v in (minimum, maximum):
            _check_int(v, f"argument {name!r} bound")
        self._add(Argument("int", name, nick, blurb, default, flags, minimum, maximum))

    def add_double_argument(self, name, nick, blurb, minimum, maximum, default, flags):
        self._add(Argument("double", name, nick, blurb, default, flags, float(minimum), float(maximum)))

    def add_boolean_argument(self, name, nick, blurb, default, flags):
        self._add(Argument("boolean", name, nick, blurb, default, flags))

    def add_string_argument(self, name, nick, blurb, default, flags):
        self._add(Argument("string", name, nick, blurb, default, flags))

    def add_choice_argument(self, name, nick, blurb, choice, default_nick, flags):
        if not isinstance(choice, Choice):
            raise ShimError(f"argument {name!r} needs a Gimp.Choice")
        self._add(Argument("choice", name, nick, blurb, default_nick, flags, choice=choice))

    def add_layer_argument(self, name, nick, blurb, none_ok, flags):
        if not isinstance(none_ok, bool):
            raise ShimError(f"argument {name!r}: none_ok must be a bool")
        self._add(Argument("layer", name, nick, blurb, None, flags, none_ok=none_ok))

    def add_image_return_value(self, name, nick, blurb, none_ok, flags):
        for v in (name, nick, blurb):
            _check_str(v, "a return value's name, nick or blurb")
        if not isinstance(flags, ParamFlags):
            raise ShimError(f"return value flags must be GObject.ParamFlags, not {flags!r}")
        self.return_values.append((name, Image, none_ok))

    def add_file_argument(self, name, nick, blurb, action, none_ok, default, flags):
        if not isinstance(action, FileChooserAction):
            raise ShimError(f"argument {name!r}: action must be a Gimp.FileChooserAction")
        if not isinstance(none_ok, bool):
            raise ShimError(f"argument {name!r}: none_ok must be a bool")
        self._add(Argument("file", name, nick, blurb, default, flags, action=action, none_ok=none_ok))

    def argument(self, name):
        for a in self.arguments:
            if a.name == name:
                return a
        raise ShimError(f"procedure {self.name!r} has no argument {name!r}")

    def find_argument(self, name):
        return self.argument(name)

    # --- running (what the PDB does around the plug-in's run function)
    def create_config(self):
        return ProcedureConfig(self)

    def new_return_values(self, status, error):
        if not isinstance(status, PDBStatusType):
            raise ShimError(f"status must be a Gimp.PDBStatusType, not {status!r}")
        if error is not None and not isinstance(error, GLibError):
            raise ShimError(f"the error must be a GLib.Error or None, not {type(error).__name__}")
        return ValueArray(self, [status] + ([error.message] if error is not None else []))

    def run(self, config):
        image = config.get_property("image")
        if image is None:
            raise ShimError("an image procedure needs its 'image' property set")
        for arg in self.arguments:
            value = config.get_property(arg.name)
            if arg.kind == "file" and arg.action == FileChooserAction.OPEN and value is not None \
                    and not os.path.exists(value.get_path()):
                return ValueArray(self, [PDBStatusType.CALLING_ERROR,
                                         f"Procedure '{self.name}' has been called with value "
                                         f"'<not transformable to string>' for argument '{arg.name}'"])
        self.last_exception = None
        try:
            result = self._run(self, config.get_property("run-mode"), image,
                               config.get_property("drawables"), config, self._run_data)
        except Exception as exc:  # GIMP: traceback on stderr, EXECUTION_ERROR without a message
            self.last_exception = exc
            return ValueArray(self, [PDBStatusType.EXECUTION_ERROR])
        if not isinstance(result, ValueArray) or result.procedure not in (self, None):
            raise ShimError("run() must return procedure.new_return_values(...) or Gimp.ValueArray.new_from_values")
        if result.procedure is None:  # built by the plug-in: GIMP checks it against the return values
            status = result.index(0)
            if status != PDBStatusType.SUCCESS or result.length() != 1 + len(self.return_values):
                raise ShimError(f"a plug-in's own value array must hold SUCCESS and the {len(self.return_values)} "
                                f"return values, not {result._values!r}")
            for (name, kind, none_ok), value in zip(self.return_values, result._values[1:]):
                if (value is None and not none_ok) or (value is not None and not isinstance(value, kind)):
                    raise ShimError(f"return value {name!r}: {value!r} is not a {kind.__name__}")
        if image._m.undo_depth:
            raise ShimError("the plug-in left an undo group open")
        return result


# The buttons of GIMP 3.0.4's GimpProcedureDialog (libgimp/gimpproceduredialog.c); GIMP warns
# when a property's label uses one of their mnemonics, uses one twice, or has none.
DIALOG_BUTTONS = ("_Reset", "_Cancel", "_OK", "_Load Saved Settings", "_Save Settings")


def mnemonic(label):
    """The letter after the first "_" (lower case), or None."""
    i = label.find("_")
    return label[i + 1].lower() if 0 <= i < len(label) - 1 else None


def check_mnemonics(arguments):
    """What gimp_procedure_dialog_check_mnemonic warns about, as errors."""
    taken = {mnemonic(b): f"dialog button {b!r}" for b in DIALOG_BUTTONS}
    for arg in arguments:
        key = mnemonic(arg.nick)
        if key is None:
            raise ShimError(f"no mnemonic for property {arg.name!r} (label {arg.nick!r})")
        if arg.nick.count("_") > 1:
            raise ShimError(f"{arg.nick.count('_')} mnemonics for property {arg.name!r}")
        if key in taken:
            raise ShimError(f"duplicate mnemonic {key!r} for label of property {arg.name!r} and {taken[key]}")
        taken[key] = f"property {arg.name!r}"


class _PlugInMeta(type):
    @property
    def __gtype__(cls):
        return cls


class PlugIn(metaclass=_PlugInMeta):
    pass


# ------------------------------------------------------------------ module assembly


class Session:
    """One installed stand-in: the fake modules plus what the plug-in did."""

    def __init__(self):
        self.recorder = model.Recorder()
        self.dialog_accepts = True  # what the user answers in GimpUi.ProcedureDialog
        self.dialog_actions = []  # what the user does in the dialog before answering: f(dialog)
        self.dialog_seconds = 0.0  # how long the dialog stays open for GLib timeouts to run
        self.timeouts = Timeouts()
        self.plugin_class = None
        self.modules = self._build()

    def _build(self):
        rec = self.recorder
        session = self

        def main(gtype, argv):
            if not (isinstance(gtype, type) and issubclass(gtype, PlugIn)):
                raise ShimError("Gimp.main needs the plug-in class's __gtype__")
            if not isinstance(argv, list):
                raise ShimError("Gimp.main needs sys.argv")
            session.plugin_class = gtype
            return 0

        def displays_flush():
            rec.flushes += 1

        def progress_end():
            rec.progress_open = False
            return True

        class Display:
            @classmethod
            def new(cls, image):
                rec.displays.append(_unwrap(image, Image, "the image to display"))
                return cls()

        gimp = types.ModuleType("gi.repository.Gimp")
        gimp.__dict__.update(
            PlugIn=PlugIn, ImageProcedure=ImageProcedure, Choice=Choice, Image=Image, Layer=Layer,
            Channel=Channel, LayerMask=LayerMask, Drawable=Drawable, Selection=Selection,
            ImageBaseType=ImageBaseType, ImageType=ImageType, Precision=Precision,
            PDBProcType=PDBProcType, PDBStatusType=PDBStatusType, RunMode=RunMode,
            ProcedureSensitivityMask=ProcedureSensitivityMask, FileChooserAction=FileChooserAction,
            LayerMode=LayerMode, AddMaskType=AddMaskType, ChannelOps=ChannelOps, MaskApplyMode=MaskApplyMode,
            ValueArray=ValueArray, Display=Display, main=main,
            progress_init=rec.progress_init, progress_update=rec.progress_update,
            progress_set_text=rec.progress_set_text, progress_end=progress_end, message=rec.message,
            displays_flush=displays_flush,
        )

        class Label:
            def __init__(self, text):
                self.text, self.wrap, self.max_width_chars = text, False, -1

            def set_text(self, text):
                _check_str(text, "a label's text")
                self.text = text

            def get_text(self):
                return self.text

            def set_line_wrap(self, wrap):
                self.wrap = bool(wrap)

            def set_max_width_chars(self, n):
                _check_int(n, "max_width_chars")
                self.max_width_chars = n

        class ProcedureDialog:
            def __init__(self, procedure=None, config=None, title=None):
                if not isinstance(procedure, ImageProcedure) or not isinstance(config, ProcedureConfig):
                    raise ShimError("GimpUi.ProcedureDialog needs procedure= and config=")
                if not gimpui.initialised:
                    raise ShimError("GimpUi.init must be called before a dialog is made")
                self.procedure, self.config, self.filled, self.destroyed = procedure, config, None, False
                self.labels: dict[str, Label] = {}
                self.sensitive_if: dict[str, tuple] = {}  # property -> (config property, values, in_values)
                rec.dialogs.append(self)

            @classmethod
            def new(cls, procedure, config, title=None):
                return cls(procedure=procedure, config=config, title=title)

            def get_label(self, label_id, text, is_markup, with_mnemonic):
                _check_str(label_id, "a label id")
                _check_str(text, "a label's text")
                if any(a.name == label_id for a in self.procedure.arguments) or label_id in self.labels:
                    raise ShimError(f"label id {label_id!r} is a property's name or was used already")
                self.labels[label_id] = Label(text)
                return self.labels[label_id]

            def fill(self, properties):
                if properties is not None and not isinstance(properties, list):
                    raise ShimError("fill() takes a list of property names or None")
                names = [a.name for a in self.procedure.arguments] if properties is None else properties
                for name in names:
                    if name not in self.labels:
                        self.procedure.argument(name)
                check_mnemonics([self.procedure.argument(n) for n in names if n not in self.labels])
                self.filled = properties

            def set_sensitive_if_in(self, prop, config, config_property, values, in_values):
                self.procedure.argument(prop)
                self.procedure.argument(config_property)
                if config is not None and not isinstance(config, ProcedureConfig):
                    raise ShimError("set_sensitive_if_in's config must be None (the dialog's) or a config")
                if not isinstance(values, ValueArray) or not isinstance(in_values, bool):
                    raise ShimError("set_sensitive_if_in needs a Gimp.ValueArray and a bool")
                self.sensitive_if[prop] = (config_property, list(values._values), in_values)

            def is_sensitive(self, prop):
                """What GIMP would show: is the property's widget sensitive now?"""
                if prop not in self.sensitive_if:
                    return True
                other, values, in_values = self.sensitive_if[prop]
                return (self.config.get_property(other) in values) == in_values

            def run(self):
                for action in session.dialog_actions:
                    action(self)
                session.timeouts.run(session.dialog_seconds)  # GTK's main loop while the dialog is open
                return session.dialog_accepts

            def destroy(self):
                self.destroyed = True

        def ui_init(name):
            _check_str(name, "GimpUi.init's program name")
            gimpui.initialised = True

        gimpui = types.ModuleType("gi.repository.GimpUi")
        gimpui.__dict__.update(init=ui_init, ProcedureDialog=ProcedureDialog, initialised=False)
        gegl = types.ModuleType("gi.repository.Gegl")
        gegl.__dict__.update(Rectangle=Rectangle, AbyssPolicy=AbyssPolicy, Buffer=Buffer)
        glib = types.ModuleType("gi.repository.GLib")
        glib.__dict__.update(Error=GLibError, timeout_add=session.timeouts.add, source_remove=session.timeouts.remove)
        gobject = types.ModuleType("gi.repository.GObject")
        gobject.__dict__.update(ParamFlags=ParamFlags, Value=GValue, TYPE_STRING=str)
        gio = types.ModuleType("gi.repository.Gio")
        gio.File = GioFile

        versions = {"Gimp": "3.0", "GimpUi": "3.0", "Gegl": "0.4", "GLib": "2.0", "GObject": "2.0",
                    "Gio": "2.0"}

        def require_version(name, version):
            if versions.get(name) != version:
                raise ValueError(f"Namespace {name} not available for version {version}")

        gi = types.ModuleType("gi")
        gi.require_version = require_version
        repository = types.ModuleType("gi.repository")
        parts = {"Gimp": gimp, "GimpUi": gimpui, "Gegl": gegl, "GLib": glib, "GObject": gobject, "Gio": gio}
        repository.__dict__.update(parts)
        gi.repository = repository
        modules = {"gi": gi, "gi.repository": repository}
        modules.update({f"gi.repository.{k}": v for k, v in parts.items()})
        return modules

    @property
    def Gimp(self):
        return self.modules["gi.repository.Gimp"]

    def load_plugin(self, path):
        """Import the plug-in file as GIMP does (its folder first on sys.path), query it and
        create its procedure. Returns (plug-in module, procedure)."""
        if not os.access(path, os.X_OK):
            raise ShimError(f"{path} is not executable: GIMP would skip it")
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.basename(folder) != os.path.splitext(os.path.basename(path))[0]:
            raise ShimError(f"{path}: GIMP 3 needs the plug-in in a folder of the same name")
        sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location("swag_plugin_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if self.plugin_class is None:
            raise ShimError(f"{path} never called Gimp.main(...)")
        plugin = self.plugin_class()
        names = plugin.do_query_procedures()
        if not isinstance(names, list) or len(names) != 1:
            raise ShimError(f"do_query_procedures returned {names!r}")
        plugin.do_set_i18n(names[0])
        procedure = plugin.do_create_procedure(names[0])
        if not isinstance(procedure, ImageProcedure) or procedure.name != names[0]:
            raise ShimError("do_create_procedure must return the procedure it was asked for")
        if procedure.menu_label is None or procedure.image_types is None or procedure.documentation is None:
            raise ShimError("the procedure lacks a menu label, image types or documentation")
        return module, procedure
