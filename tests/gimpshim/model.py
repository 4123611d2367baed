"""The image model behind both stand-ins: images, layers, masks, a rectangular selection, undo
and progress records, and babl-style pixel formats.

Pixels are stored as floats in gamma-encoded (non-linear) space, one tuple per pixel with the
layer's own channels, and rounded to the image's precision on every write, as GIMP stores them.
What GIMP checks, this checks too, and a little more strictly where GIMP would only print a
warning or silently misbehave (each such place says so):
- buffer reads and writes: the rectangle, the format name, and the exact byte count;
- layer types that do not fit the image's base type;
- layers inserted twice, into another image, at an impossible position;
- linear-light formats on colour layers are refused: GIMP would convert them, but the plug-ins
  must read gamma-encoded sRGB (a linear read is the classic washed-out-colours bug);
- writing to an indexed layer is refused: GIMP would quantise to the palette.
"""

from __future__ import annotations

import enum
import re
import struct


class ImageBaseType(enum.IntEnum):
    RGB = 0
    GRAY = 1
    INDEXED = 2


class ImageType(enum.IntEnum):
    RGB_IMAGE = 0
    RGBA_IMAGE = 1
    GRAY_IMAGE = 2
    GRAYA_IMAGE = 3
    INDEXED_IMAGE = 4
    INDEXEDA_IMAGE = 5


class Precision(enum.IntEnum):
    U8_LINEAR = 100
    U8_NON_LINEAR = 150
    U8_PERCEPTUAL = 175
    U16_LINEAR = 200
    U16_NON_LINEAR = 250
    U16_PERCEPTUAL = 275
    U32_LINEAR = 300
    U32_NON_LINEAR = 350
    U32_PERCEPTUAL = 375
    HALF_LINEAR = 500
    HALF_NON_LINEAR = 550
    HALF_PERCEPTUAL = 575
    FLOAT_LINEAR = 600
    FLOAT_NON_LINEAR = 650
    FLOAT_PERCEPTUAL = 675
    DOUBLE_LINEAR = 700
    DOUBLE_NON_LINEAR = 750
    DOUBLE_PERCEPTUAL = 775


_BASE_OF_TYPE = {
    ImageType.RGB_IMAGE: ImageBaseType.RGB, ImageType.RGBA_IMAGE: ImageBaseType.RGB,
    ImageType.GRAY_IMAGE: ImageBaseType.GRAY, ImageType.GRAYA_IMAGE: ImageBaseType.GRAY,
    ImageType.INDEXED_IMAGE: ImageBaseType.INDEXED, ImageType.INDEXEDA_IMAGE: ImageBaseType.INDEXED,
}
_CHANNELS_OF_TYPE = {ImageType.RGB_IMAGE: 3, ImageType.RGBA_IMAGE: 4, ImageType.GRAY_IMAGE: 1,
                     ImageType.GRAYA_IMAGE: 2, ImageType.INDEXED_IMAGE: 3, ImageType.INDEXEDA_IMAGE: 4}


class ShimError(RuntimeError):
    """A call GIMP would refuse (or get wrong); the message says which rule was broken."""


def _quantiser(precision: Precision):
    if precision < Precision.U16_LINEAR:
        return lambda v: round(min(1.0, max(0.0, v)) * 255) / 255
    if precision < Precision.U32_LINEAR:
        return lambda v: round(min(1.0, max(0.0, v)) * 65535) / 65535
    if precision < Precision.HALF_LINEAR:
        return lambda v: round(min(1.0, max(0.0, v)) * 4294967295) / 4294967295
    return float


def luma(r: float, g: float, b: float) -> float:
    """Gray from gamma-encoded RGB. babl goes through linear light; the plug-ins never convert
    between RGB and gray, so this simpler Rec. 709 weighting only has to be plausible."""
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ------------------------------------------------------------------ pixel formats (babl names)

_FORMAT = re.compile(r"^(R'G'B'|Y'|RGB|Y)(A)? (u8|u16|u32|float)$")
_SAMPLE = {"u8": (1, "B", 255), "u16": (2, "<H", 65535), "u32": (4, "<I", 4294967295), "float": (4, "<f", None)}


class PixelFormat:
    def __init__(self, name: str):
        if not isinstance(name, str):
            raise ShimError(f"a babl format name must be a str, not {type(name).__name__}")
        m = _FORMAT.match(name)
        if not m:
            raise ShimError(f"unknown babl format {name!r} (expected e.g. \"R'G'B'A u8\", \"Y'A u16\")")
        space, alpha, sample = m.groups()
        self.name = name
        self.gray = space.startswith("Y")
        self.linear = "'" not in space
        self.alpha = alpha is not None
        self.sample_bytes, self._code, self._max = _SAMPLE[sample]
        self.channels = (1 if self.gray else 3) + (1 if self.alpha else 0)
        self.bpp = self.channels * self.sample_bytes

    def encode(self, value: float) -> bytes:
        if self._max is None:
            return struct.pack(self._code, value)
        return struct.pack(self._code, round(min(1.0, max(0.0, value)) * self._max))

    def decode(self, data: bytes, offset: int) -> float:
        (v,) = struct.unpack_from(self._code, data, offset)
        return float(v) if self._max is None else v / self._max


def _to_format(pixel: tuple, layer_channels: int, fmt: PixelFormat) -> tuple:
    """A stored pixel (the layer's channels) -> the format's channels."""
    has_alpha = layer_channels in (2, 4)
    colour = pixel[:-1] if has_alpha else pixel
    alpha = pixel[-1] if has_alpha else 1.0
    if fmt.gray:
        out = (colour[0] if len(colour) == 1 else luma(*colour),)
    else:
        out = colour * 3 if len(colour) == 1 else colour
    return out + ((alpha,) if fmt.alpha else ())


def _from_format(values: tuple, layer_channels: int, fmt: PixelFormat) -> tuple:
    colour = values[:-1] if fmt.alpha else values
    alpha = values[-1] if fmt.alpha else 1.0
    gray_layer = layer_channels in (1, 2)
    if gray_layer:
        colour = (colour[0] if len(colour) == 1 else luma(*colour),)
    elif len(colour) == 1:
        colour = colour * 3
    return colour + ((alpha,) if layer_channels in (2, 4) else ())


# ------------------------------------------------------------------ items


class Item:
    def __init__(self, image: "Image", name: str, width: int, height: int):
        if not isinstance(image, Image):
            raise ShimError(f"an item needs an image, not {type(image).__name__}")
        if not isinstance(name, str):
            raise ShimError(f"an item's name must be a str, not {type(name).__name__}")
        for what, v in (("width", width), ("height", height)):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 524288:
                raise ShimError(f"{what} must be a whole number from 1 to 524288, not {v!r}")
        self.image, self.name, self.width, self.height = image, name, width, height
        self.offsets = (0, 0)

    @property
    def attached(self) -> bool:
        return False


class Drawable(Item):
    channels = 1

    def __init__(self, image, name, width, height, channels, fill):
        super().__init__(image, name, width, height)
        self.channels = channels
        self.pixels = [fill] * (width * height)
        self.updates: list[tuple] = []

    # --- pixel access in a babl format, layer-local coordinates (GIMP's buffer extent is local)
    def read(self, x: int, y: int, w: int, h: int, fmt_name: str, clamp: bool = True) -> bytes:
        fmt = self._format(fmt_name, writing=False)
        self._check_rect(x, y, w, h, allow_outside=True)
        out = bytearray()
        for j in range(y, y + h):
            for i in range(x, x + w):
                if 0 <= i < self.width and 0 <= j < self.height:
                    p = self.pixels[j * self.width + i]
                elif clamp:
                    p = self.pixels[min(max(j, 0), self.height - 1) * self.width + min(max(i, 0), self.width - 1)]
                else:
                    p = (0.0,) * self.channels
                for v in _to_format(p, self.channels, fmt):
                    out += fmt.encode(v)
        return bytes(out)

    def write(self, x: int, y: int, w: int, h: int, fmt_name: str, data) -> None:
        fmt = self._format(fmt_name, writing=True)
        # GEGL clips a rectangle that leaves the buffer; refusing it catches offset mistakes.
        self._check_rect(x, y, w, h, allow_outside=False)
        if not isinstance(data, (bytes, bytearray)):
            raise ShimError(f"pixel data must be bytes, not {type(data).__name__}")
        if len(data) != w * h * fmt.bpp:
            # GEGL reads w*h*bpp bytes whatever it is given: too few is a crash, too many a bug.
            raise ShimError(f"{w}x{h} pixels of {fmt.name!r} are {w * h * fmt.bpp} bytes, got {len(data)}")
        quantise = _quantiser(self.image.precision)
        k = 0
        for j in range(y, y + h):
            for i in range(x, x + w):
                values = tuple(fmt.decode(data, k + c * fmt.sample_bytes) for c in range(fmt.channels))
                k += fmt.bpp
                self.pixels[j * self.width + i] = tuple(
                    quantise(v) for v in _from_format(values, self.channels, fmt))
        self.image.record(self, "paint")

    def _format(self, name, writing):
        fmt = PixelFormat(name)
        if fmt.linear and self.is_colour_layer:
            raise ShimError(f"linear-light format {name!r} on a colour layer: plug-ins must use the "
                            "gamma-encoded (primed) formats such as \"R'G'B'A u8\"")
        if writing and self.indexed:
            raise ShimError("writing to an indexed layer (GIMP would quantise to the palette)")
        return fmt

    def _check_rect(self, x, y, w, h, allow_outside):
        for v in (x, y, w, h):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ShimError(f"rectangle values must be whole numbers, not {v!r}")
        if w <= 0 or h <= 0:
            raise ShimError(f"empty rectangle {w}x{h}")
        if not allow_outside and (x < 0 or y < 0 or x + w > self.width or y + h > self.height):
            raise ShimError(f"rectangle ({x},{y} {w}x{h}) leaves the {self.width}x{self.height} buffer")

    is_colour_layer = False
    indexed = False

    def update(self, x, y, w, h):
        self.updates.append((x, y, w, h))


class Channel(Drawable):
    """A one-channel drawable: selection masks and layer masks."""

    def __init__(self, image, name, width, height, fill=0.0):
        super().__init__(image, name, width, height, 1, (fill,))


class LayerMask(Channel):
    def __init__(self, layer: "Layer", values):
        super().__init__(layer.image, layer.name + " mask", layer.width, layer.height)
        self.layer = layer
        self.pixels = [(v,) for v in values]

    @property
    def attached(self):
        return self.layer.mask is self and self.layer.attached

    @property
    def offsets(self):
        return self.layer.offsets

    @offsets.setter
    def offsets(self, value):
        pass  # a mask always follows its layer


class Layer(Drawable):
    is_colour_layer = True

    def __init__(self, image, name, width, height, kind, opacity, mode):
        if not isinstance(kind, ImageType):
            raise ShimError(f"layer type must be an ImageType, not {kind!r}")
        if _BASE_OF_TYPE[kind] != image.base_type:
            raise ShimError(f"a {kind.name} layer does not fit a {image.base_type.name} image")
        if not isinstance(opacity, (int, float)) or isinstance(opacity, bool) or not 0 <= opacity <= 100:
            raise ShimError(f"opacity must be a number from 0 to 100, not {opacity!r}")
        channels = _CHANNELS_OF_TYPE[kind]
        super().__init__(image, name, width, height, channels, (0.0,) * channels)
        self.kind, self.opacity, self.mode = kind, float(opacity), mode
        self.mask: LayerMask | None = None
        self.visible = True
        # A layer that stands for a layer group: the stand-in does not nest layers, but a plug-in
        # must tell a group (whose pixels it cannot write) from a layer.
        self.group = False

    def copy(self, image: "Image") -> "Layer":
        """GIMP's copy of a layer for `image` (not inserted): "NAME copy", with its pixels, offsets,
        opacity, mode, visibility and mask, as gimp_layer_new_from_drawable makes it."""
        if image.base_type != self.image.base_type:
            raise ShimError("the stand-in copies layers between images of the same base type only")
        twin = Layer(image, self.name + " copy", self.width, self.height, self.kind, self.opacity, self.mode)
        twin.pixels, twin.offsets, twin.visible, twin.group = list(self.pixels), self.offsets, self.visible, self.group
        if self.mask is not None:
            twin.mask = LayerMask(twin, [v for (v,) in self.mask.pixels])
        return twin

    @property
    def indexed(self):
        return self.kind in (ImageType.INDEXED_IMAGE, ImageType.INDEXEDA_IMAGE)

    @property
    def has_alpha(self):
        return self.channels in (2, 4)

    @property
    def attached(self):
        return self in self.image.layers

    def set_offsets(self, x, y):
        for v in (x, y):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ShimError(f"offsets must be whole numbers, not {v!r}")
        self.offsets = (x, y)
        self.image.record(self, "move")

    def selection_values(self) -> list[float]:
        """The image's selection over this layer, layer-local (1 inside, 0 outside)."""
        sel = self.image.selection
        ox, oy = self.offsets
        values = []
        for j in range(self.height):
            for i in range(self.width):
                inside = sel is None or (sel[0] <= ox + i < sel[2] and sel[1] <= oy + j < sel[3])
                values.append(1.0 if inside else 0.0)
        return values

    def mask_intersect(self):
        """GIMP's answer: (intersects, x, y, w, h), layer-local; whole layer without a selection."""
        sel = self.image.selection
        if sel is None:
            return True, 0, 0, self.width, self.height
        ox, oy = self.offsets
        x1, y1 = max(sel[0] - ox, 0), max(sel[1] - oy, 0)
        x2, y2 = min(sel[2] - ox, self.width), min(sel[3] - oy, self.height)
        if x2 <= x1 or y2 <= y1:
            return False, 0, 0, x2 - x1, y2 - y1  # GIMP's width/height are garbage here too
        return True, x1, y1, x2 - x1, y2 - y1

    def remove_mask(self):
        if self.mask is None:
            raise ShimError(f"layer {self.name!r} has no mask to remove")
        self.image.record(self, "remove mask")
        self.mask = None
        return True

    def add_mask(self, mask):
        if not isinstance(mask, LayerMask) or mask.layer is not self:
            raise ShimError("add_mask needs a mask created for this layer (layer.create_mask)")
        if self.mask is not None:
            raise ShimError(f"layer {self.name!r} already has a mask")
        self.mask = mask
        self.image.record(self, "add mask")
        return True


# ------------------------------------------------------------------ image


class Image:
    def __init__(self, width, height, base_type, precision=Precision.U8_NON_LINEAR):
        if not isinstance(base_type, ImageBaseType):
            raise ShimError(f"base type must be an ImageBaseType, not {base_type!r}")
        if not isinstance(precision, Precision):
            raise ShimError(f"precision must be a Precision, not {precision!r}")
        self.width, self.height, self.base_type, self.precision = width, height, base_type, precision
        self.layers: list[Layer] = []  # top first, like GIMP's stack
        self.selection: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 in image coords
        self.undo_depth = 0
        self.undo_steps: list[list[str]] = []  # each: the changes of one undo step
        self._group: list[str] | None = None
        self.deleted = False

    # --- undo: every change of an attached item is recorded in the open group or as its own step
    def record(self, item: Item, what: str):
        if not item.attached and what != "insert":
            return  # GIMP keeps no undo for items outside the image
        entry = f"{what} {item.name!r}"
        if self._group is not None:
            self._group.append(entry)
        else:
            self.undo_steps.append([entry])

    def undo_group_start(self):
        self.undo_depth += 1
        if self.undo_depth == 1:
            self._group = []
        return True

    def undo_group_end(self):
        if self.undo_depth == 0:
            raise ShimError("undo_group_end without undo_group_start")
        self.undo_depth -= 1
        if self.undo_depth == 0:
            if self._group:
                self.undo_steps.append(self._group)
            self._group = None
        return True

    # --- the layer stack
    def insert_layer(self, layer, parent, position):
        if not isinstance(layer, Layer):
            raise ShimError(f"insert_layer needs a layer, not {type(layer).__name__}")
        if layer.image is not self:
            raise ShimError("the layer was created for another image")
        if layer in self.layers:
            raise ShimError(f"layer {layer.name!r} is already in the image")
        if parent is not None:
            raise ShimError("the stand-in has no layer groups")
        if not isinstance(position, int) or not -1 <= position <= len(self.layers):
            raise ShimError(f"position {position!r} is outside 0..{len(self.layers)}")
        self.layers.insert(len(self.layers) if position == -1 else position, layer)
        self.record(layer, "insert")
        return True

    def remove_layer(self, layer):
        if layer not in self.layers:
            raise ShimError(f"layer {getattr(layer, 'name', layer)!r} is not in the image")
        self.record(layer, "remove")
        self.layers.remove(layer)
        return True

    def position(self, layer):
        if layer not in self.layers:
            raise ShimError(f"layer {getattr(layer, 'name', layer)!r} is not in the image")
        return self.layers.index(layer)

    def select_rectangle(self, x, y, w, h):
        self.selection = (x, y, x + w, y + h)

    def duplicate(self) -> "Image":
        """GIMP's copy of the image: its layers (copies keep their names here), selection and
        precision, with an empty undo history."""
        twin = Image(self.width, self.height, self.base_type, self.precision)
        for layer in self.layers:
            copy = layer.copy(twin)
            copy.name = layer.name
            twin.layers.append(copy)
        twin.selection = self.selection
        return twin

    # --- for tests
    def snapshot(self):
        """Everything a user could see or undo: compared before and after a failed filter."""
        return {
            "size": (self.width, self.height), "selection": self.selection,
            "undo_steps": [list(s) for s in self.undo_steps],
            "layers": [(l.name, l.kind, l.width, l.height, l.offsets, l.opacity, l.mode, l.visible, tuple(l.pixels),
                        tuple(l.mask.pixels) if l.mask else None) for l in self.layers],
        }


class Recorder:
    """What the plug-in told the user: progress, messages, dialogs."""

    def __init__(self):
        self.progress: list[float] = []
        self.progress_texts: list[str] = []
        self.messages: list[str] = []
        self.dialogs: list[object] = []
        self.displays: list[object] = []  # the images a plug-in opened in a window
        self.flushes = 0
        self.progress_open = False

    def progress_init(self, text):
        if not isinstance(text, str):
            raise ShimError(f"progress text must be a str, not {type(text).__name__}")
        self.progress_open = True
        self.progress_texts.append(text)
        return True

    def progress_update(self, fraction):
        if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
            raise ShimError(f"progress must be a number, not {fraction!r}")
        if not 0.0 <= fraction <= 1.0:
            raise ShimError(f"progress {fraction} is outside 0..1")
        self.progress.append(float(fraction))
        return True

    def progress_set_text(self, text):
        if not isinstance(text, str):
            raise ShimError(f"progress text must be a str, not {type(text).__name__}")
        self.progress_texts.append(text)
        return True

    def message(self, text):
        if not isinstance(text, str):
            raise ShimError(f"a message must be a str, not {type(text).__name__}")
        self.messages.append(text)
        return True
