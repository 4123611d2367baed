"""Stand-in for GIMP 2.10's Python-Fu (`gimpfu`, `gimp`), over model.py.

Follows gimpfu 2.10: `register` checks names and parameter tuples as gimpfu does and prefixes
nothing for names that already start with "python-fu-"; the function gets the parameters
without run-mode; PF_OPTION passes the option's index. Pixel regions are the legacy 8-bit ones
(`drawable.bpp` bytes per pixel, whatever the image's precision), addressed in drawable
coordinates, and a region opened with dirty=False cannot be written (in GIMP the write would be
lost). A function that raises gives EXECUTION_ERROR with the exception's text, which is how
pygimp reports a failed run.
"""

from __future__ import annotations

import re
import types

from . import model
from .model import ImageBaseType, ImageType, ShimError

PF_INT8, PF_INT16, PF_INT32 = 0, 1, 2
PF_FLOAT, PF_STRING = 3, 4
PF_IMAGE, PF_LAYER, PF_CHANNEL, PF_DRAWABLE = 13, 14, 15, 16
PF_TOGGLE, PF_SLIDER, PF_SPINNER, PF_OPTION, PF_FILE = 1000, 1001, 1002, 1005, 1006
PF_INT, PF_BOOL = PF_INT32, PF_TOGGLE

_PARAM_TYPES = {PF_INT8, PF_INT16, PF_INT32, PF_FLOAT, PF_STRING, PF_IMAGE, PF_LAYER, PF_CHANNEL,
                PF_DRAWABLE, PF_TOGGLE, PF_SLIDER, PF_SPINNER, PF_OPTION, PF_FILE}
_LETTERS = re.compile(r"^[A-Za-z0-9_-]+$")  # gimpfu's letterCheck

RUN_INTERACTIVE, RUN_NONINTERACTIVE, RUN_WITH_LAST_VALS = 0, 1, 2
EXECUTION_ERROR, SUCCESS = "EXECUTION_ERROR", "SUCCESS"
LAYER_MODE_NORMAL, LAYER_MODE_MULTIPLY = 28, 30
ADD_MASK_WHITE, ADD_MASK_SELECTION = 0, 4
MASK_APPLY, MASK_DISCARD = 0, 1


# ------------------------------------------------------------------ objects


class PixelRegion:
    def __init__(self, drawable, x, y, w, h, dirty, shadow):
        d = drawable._m
        if shadow:
            raise ShimError("the stand-in has no shadow tiles: use shadow=False")
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > d.width or y + h > d.height:
            raise ShimError(f"pixel region ({x},{y} {w}x{h}) outside the {d.width}x{d.height} drawable")
        self._d, self._x, self._y, self._w, self._h, self._dirty = d, x, y, w, h, dirty

    def _rect(self, key):
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key)):
            raise ShimError("index a pixel region with [x1:x2, y1:y2]")
        (xs, ys) = key
        x1, x2, y1, y2 = xs.start, xs.stop, ys.start, ys.stop
        if not (self._x <= x1 < x2 <= self._x + self._w and self._y <= y1 < y2 <= self._y + self._h):
            raise ShimError(f"[{x1}:{x2}, {y1}:{y2}] is outside the region "
                            f"({self._x},{self._y} {self._w}x{self._h}); regions use drawable coordinates")
        return x1, y1, x2 - x1, y2 - y1

    def _format(self):
        gray = self._d.channels in (1, 2)
        return ("Y'" if gray else "R'G'B'") + ("A" if self._d.channels in (2, 4) else "") + " u8"

    def __getitem__(self, key):
        x, y, w, h = self._rect(key)
        return self._d.read(x, y, w, h, self._format())

    def __setitem__(self, key, data):
        if not self._dirty:
            raise ShimError("writing to a pixel region opened with dirty=False (GIMP drops the write)")
        x, y, w, h = self._rect(key)
        self._d.write(x, y, w, h, self._format(), data)


class Drawable:
    @property
    def name(self):
        return self._m.name

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise ShimError(f"a name must be a str, not {value!r}")
        self._m.name = value

    @property
    def width(self):
        return self._m.width

    @property
    def height(self):
        return self._m.height

    @property
    def offsets(self):
        return self._m.offsets

    @property
    def has_alpha(self):
        return self._m.channels in (2, 4)

    @property
    def bpp(self):
        return self._m.channels

    @property
    def image(self):
        return _wrap(self._m.image)

    @property
    def parent(self):
        return None

    def get_pixel_rgn(self, x, y, w, h, dirty=True, shadow=False):
        return PixelRegion(self, x, y, w, h, dirty, shadow)

    def flush(self):
        pass

    def update(self, x, y, w, h):
        self._m.update(x, y, w, h)


class Channel(Drawable):
    pass


class Layer(Drawable):
    def __init__(self, image, name, width, height, kind, opacity, mode):
        if not isinstance(image, Image):
            raise ShimError("gimp.Layer needs a gimp.Image")
        self._m = model.Layer(image._m, name, width, height, ImageType(kind), opacity, mode)
        _WRAPPERS[id(self._m)] = (self, self._m)

    def set_offsets(self, x, y):
        self._m.set_offsets(x, y)

    @property
    def opacity(self):
        return self._m.opacity

    @opacity.setter
    def opacity(self, value):
        if not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ShimError(f"opacity must be 0..100, not {value!r}")
        self._m.opacity = float(value)

    @property
    def mode(self):
        return self._m.mode

    @mode.setter
    def mode(self, value):
        if not isinstance(value, int):
            raise ShimError(f"a layer mode must be an int, not {value!r}")
        self._m.mode = value

    @property
    def visible(self):
        return self._m.visible

    @visible.setter
    def visible(self, value):
        self._m.visible = bool(value)

    @property
    def mask(self):
        return _wrap(self._m.mask)

    def remove_mask(self, mode):
        if mode != MASK_DISCARD:
            raise ShimError("the stand-in removes masks with MASK_DISCARD only")
        self._m.remove_mask()

    def create_mask(self, kind):
        if kind == ADD_MASK_SELECTION:
            values = self._m.selection_values()
        elif kind == ADD_MASK_WHITE:
            values = [1.0] * (self._m.width * self._m.height)
        else:
            raise ShimError(f"the stand-in does not model mask type {kind!r}")
        return _wrap(model.LayerMask(self._m, values))

    def add_mask(self, mask):
        if not isinstance(mask, Channel):
            raise ShimError("add_mask needs a mask from create_mask")
        self._m.add_mask(mask._m)


class Image:
    def __init__(self, width, height, base_type):
        self._m = model.Image(width, height, ImageBaseType(base_type))
        _WRAPPERS[id(self._m)] = (self, self._m)

    @property
    def base_type(self):
        return int(self._m.base_type)

    @property
    def width(self):
        return self._m.width

    @property
    def height(self):
        return self._m.height

    @property
    def layers(self):
        return [_wrap(l) for l in self._m.layers]

    def insert_layer(self, layer, parent=None, position=-1):
        if not isinstance(layer, Layer):
            raise ShimError("insert_layer needs a gimp.Layer")
        self._m.insert_layer(layer._m, parent, position)

    def remove_layer(self, layer):
        self._m.remove_layer(layer._m)


_WRAPPERS: dict[int, tuple] = {}


def _wrap(obj):
    if obj is None:
        return None
    if id(obj) not in _WRAPPERS:
        cls = {model.Layer: Layer, model.LayerMask: Channel, model.Channel: Channel, model.Image: Image}[type(obj)]
        w = cls.__new__(cls)
        w._m = obj
        _WRAPPERS[id(obj)] = (w, obj)
    return _WRAPPERS[id(obj)][0]


class _Pdb:
    def __init__(self, recorder):
        self._rec = recorder

    @staticmethod
    def _image(image):
        if not isinstance(image, Image):
            raise ShimError(f"expected a gimp.Image, not {type(image).__name__}")
        return image._m

    def gimp_image_undo_group_start(self, image):
        self._image(image).undo_group_start()

    def gimp_image_undo_group_end(self, image):
        self._image(image).undo_group_end()

    def gimp_image_get_item_position(self, image, item):
        return self._image(image).position(item._m)

    def gimp_drawable_mask_intersect(self, drawable):
        if not isinstance(drawable, Drawable):
            raise ShimError("expected a drawable")
        return drawable._m.mask_intersect() if isinstance(drawable, Layer) else \
            (True, 0, 0, drawable.width, drawable.height)

    def gimp_selection_is_empty(self, image):
        return self._image(image).selection is None

    def gimp_item_is_group(self, item):
        return isinstance(item, Layer) and item._m.group

    def gimp_layer_new_from_drawable(self, drawable, image):
        if not isinstance(drawable, Layer):
            raise ShimError("the stand-in copies layers only")
        return _wrap(drawable._m.copy(self._image(image)))

    def gimp_image_duplicate(self, image):
        return _wrap(self._image(image).duplicate())

    def gimp_image_delete(self, image):
        self._image(image).deleted = True

    def gimp_progress_set_text(self, text):
        self._rec.progress_set_text(text)

    def gimp_message(self, text):
        self._rec.message(text)


# ------------------------------------------------------------------ modules


class Session:
    def __init__(self):
        self.recorder = model.Recorder()
        self.registered: dict[str, dict] = {}
        self.modules = self._build()

    def _build(self):
        rec, session = self.recorder, self
        pdb = _Pdb(rec)

        def register(proc_name, blurb, help_text, author, copyright_, date, label, imagetypes, params,
                     results, function, menu=None, domain=None, on_query=None, on_run=None):
            if not _LETTERS.match(proc_name):
                raise ShimError("procedure name contains illegal characters")
            for ent in params:
                if len(ent) < 4:
                    raise ShimError(f"parameter definition must contain at least 4 elements: {ent}")
                if ent[0] not in _PARAM_TYPES:
                    raise ShimError(f"unknown parameter type {ent[0]!r}")
                if not _LETTERS.match(ent[1]):
                    raise ShimError(f"parameter name {ent[1]!r} contains illegal characters")
                _check_param(ent)
            if not callable(function):
                raise ShimError("the function is not callable")
            if menu is not None and (len(params) < 2 or params[0][0] != PF_IMAGE
                                     or params[1][0] not in (PF_DRAWABLE, PF_LAYER)):
                raise ShimError("a plug-in with an <Image> menu must take (PF_IMAGE, PF_DRAWABLE) first")
            if not proc_name.startswith(("python-", "python_", "plug-in-", "plug_in_")):
                proc_name = "python-fu-" + proc_name
            session.registered[proc_name] = dict(
                label=label, imagetypes=imagetypes, params=params, function=function, menu=menu,
                blurb=blurb)

        def main():
            return None

        gimp = types.ModuleType("gimp")
        gimp.__dict__.update(
            Layer=Layer, Channel=Channel, Image=Image, Drawable=Drawable, pdb=pdb,
            progress_init=rec.progress_init, progress_update=rec.progress_update, message=rec.message,
            displays_flush=lambda: setattr(rec, "flushes", rec.flushes + 1),
            Display=lambda image: rec.displays.append(image._m),
        )
        gimpfu = types.ModuleType("gimpfu")
        exported = dict(
            gimp=gimp, pdb=pdb, register=register, main=main,
            RGB=int(ImageBaseType.RGB), GRAY=int(ImageBaseType.GRAY), INDEXED=int(ImageBaseType.INDEXED),
            RGB_IMAGE=int(ImageType.RGB_IMAGE), RGBA_IMAGE=int(ImageType.RGBA_IMAGE),
            GRAY_IMAGE=int(ImageType.GRAY_IMAGE), GRAYA_IMAGE=int(ImageType.GRAYA_IMAGE),
            INDEXED_IMAGE=int(ImageType.INDEXED_IMAGE), LAYER_MODE_NORMAL=LAYER_MODE_NORMAL,
            ADD_MASK_WHITE=ADD_MASK_WHITE, ADD_MASK_SELECTION=ADD_MASK_SELECTION, MASK_DISCARD=MASK_DISCARD,
        )
        exported.update({k: v for k, v in globals().items() if k.startswith(("PF_", "RUN_"))})
        gimpfu.__dict__.update(exported)
        gimpfu.__all__ = sorted(exported)
        return {"gimp": gimp, "gimpfu": gimpfu}

    def run(self, proc_name, run_mode, *args):
        """Call a registered procedure as the PDB does: returns (status, message or None)."""
        entry = self.registered[proc_name]
        params = entry["params"]
        if run_mode != RUN_NONINTERACTIVE:
            raise ShimError("the stand-in runs gimpfu plug-ins non-interactively only")
        if len(args) != len(params):
            raise ShimError(f"{proc_name} takes {len(params)} arguments, got {len(args)}")
        for ent, value in zip(params, args):
            _check_value(ent, value)
        try:
            entry["function"](*args)
        except Exception as exc:
            return EXECUTION_ERROR, str(exc)
        for image in [a for a in args if isinstance(a, Image)]:
            if image._m.undo_depth:
                raise ShimError("the plug-in left an undo group open")
        return SUCCESS, None


def _check_param(ent):
    kind, name, _desc, default = ent[:4]
    extra = ent[4] if len(ent) > 4 else None
    if kind == PF_OPTION:
        if not isinstance(extra, tuple) or not 0 <= default < len(extra):
            raise ShimError(f"PF_OPTION {name!r}: default {default!r} is not an index into {extra!r}")
    elif kind in (PF_SLIDER, PF_SPINNER):
        if not (isinstance(extra, tuple) and len(extra) == 3 and extra[0] <= default <= extra[1]):
            raise ShimError(f"{name!r}: default {default!r} outside (min, max, step) {extra!r}")


def _check_value(ent, value):
    kind, name = ent[0], ent[1]
    extra = ent[4] if len(ent) > 4 else None
    ok = {
        PF_IMAGE: lambda v: isinstance(v, Image),
        PF_DRAWABLE: lambda v: isinstance(v, Drawable),
        PF_LAYER: lambda v: v is None or isinstance(v, Layer),  # gimpfu passes no layer (ID -1) as None
        PF_FILE: lambda v: isinstance(v, str),
        PF_STRING: lambda v: isinstance(v, str),
        PF_OPTION: lambda v: isinstance(v, int) and 0 <= v < len(extra),
        PF_TOGGLE: lambda v: isinstance(v, (bool, int)),
        PF_SPINNER: lambda v: isinstance(v, int) and not isinstance(v, bool) and extra[0] <= v <= extra[1],
        PF_SLIDER: lambda v: isinstance(v, (int, float)) and extra[0] <= v <= extra[1],
    }.get(kind, lambda v: True)
    if not ok(value):
        raise ShimError(f"argument {name!r}: {value!r} is not valid for its type")
