"""What the GIMP 3 and the GIMP 2.10 plug-ins share, without any GIMP call: the filter's
arguments (one declarative table, from which both plug-ins register the procedure), how they
become engine options, the style file, the stylised area, the new layer's name, and the one-line
messages for everything that can go wrong.

Standard library only and Python 2.7 compatible: GIMP 2.10's Python-Fu runs it too (the
installer copies it next to the 2.10 plug-in).
"""

from __future__ import division

import os

import swag_client

PLUGIN_TITLE = "SWAG Style Transfer"
PROCEDURE = "python-fu-swag-style-transfer"
MENU_LABEL = "SWAG Style Transfer..."
MENU_PATH = "<Image>/Filters/Artistic"
IMAGE_TYPES = "RGB*, GRAY*"
AUTHORS = "SWAG Style Transfer authors"
DATE = "2026"
BLURB = "Paint the layer in the style of an image (SWAG style transfer)"
HELP = ("Stylises each selected layer, or the selected area of it, with the style of an image file or of a "
        "layer of any open image, into a new layer above it, in one undo step. With Animation frames, every "
        "layer is a frame: each one starts from half of the previous frame's stylisation carried onto it, into a "
        "new image. Runs through the local SWAG engine (swag serve).")

# Kinds of argument. Each plug-in maps them to its own API's (GIMP 3: add_*_argument; GIMP
# 2.10: PF_*).
FILE, LAYER, CHOICE, INT, DOUBLE, BOOLEAN, STRING = "file", "layer", "choice", "int", "double", "boolean", "string"


class Argument(object):
    """One argument of the filter. `label` carries the dialog's mnemonic ("_Quality": Alt+Q);
    GIMP 3 checks that no two labels, and no label and dialog button, share one."""

    def __init__(self, name, kind, label, help, default=None, low=None, high=None, step=None, choices=()):
        self.name, self.kind, self.label, self.help = name, kind, label, help
        self.default, self.low, self.high, self.step, self.choices = default, low, high, step, choices

    @property
    def text(self):
        """The label without its mnemonic mark (GIMP 2.10's dialog shows underscores as they are)."""
        return self.label.replace("_", "", 1)

    @property
    def mnemonic(self):
        return self.label[self.label.index("_") + 1].lower()

    def nicks(self):
        return [nick for nick, _ in self.choices]


# Choices in the order shown. The engine accepts these exact names (swag_core.options.PRESETS,
# swag_core.choices: ARCHITECTURE_NAMES, MODES, DEVICES); a test checks that they stay in step.
# The presets' sizes and iterations are the engine's: the GIMP 3 dialog asks the engine for them.
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
STYLE_SOURCES = (("file", "Image file"), ("layer", "Layer of an open image"))
MAX_SIZE = 16384
MAX_ITERATIONS = 100000
MAX_SEED = 2 ** 31 - 1  # a GIMP int argument is 32-bit

# The procedure's arguments after the image and its drawables, in the dialog's order.
ARGUMENTS = (
    Argument("style-source", CHOICE, "St_yle from", "Take the style from an image file or from a layer of any "
             "open image", "file", choices=STYLE_SOURCES),
    Argument("style-file", FILE, "Style _file", "The image whose style is applied (when Style from is an "
             "image file)"),
    Argument("style-layer", LAYER, "Style lay_er", "The layer whose style is applied, from any open image (when "
             "Style from is a layer)"),
    Argument("preset", CHOICE, "_Quality", "Speed and quality preset: its working size and iterations apply "
             "where those are 0", "balanced", choices=PRESETS),
    Argument("architecture", CHOICE, "_Network", "Network whose features define the style", "vgg19",
             choices=ARCHITECTURES),
    Argument("smoothing", CHOICE, "S_moothing", "SWAG smoothing of the activations", "softmax", choices=SMOOTHING),
    Argument("size", INT, "Working si_ze", "Working long side in pixels (0 = the preset's)", 0, 0, MAX_SIZE, 64),
    Argument("iterations", INT, "_Iterations", "Optimiser iterations (0 = the preset's)", 0, 0, MAX_ITERATIONS, 10),
    Argument("strength", DOUBLE, "S_trength", "1 = fully stylised, 0 = the original", 1.0, 0.0, 1.0, 0.05),
    Argument("preserve-colors", BOOLEAN, "_Keep colours", "Transfer the texture only, keep the layer's colours",
             False),
    Argument("layout-weight", DOUBLE, "Keep lig_ht and dark areas", "Lay the layer's large light and dark areas "
             "under the result, in the style's hues: 1 = where and as light as the layer has them, 0 = where the "
             "style leaves them (a pattern or a busy painting can then hide the subject)", 0.5, 0.0, 1.0, 0.05),
    Argument("full-resolution", BOOLEAN, "F_ull resolution", "On a layer larger than the working size, paint "
             "its fine detail at the layer's own size too, instead of keeping the photo's (slower: about the "
             "layer's pixels over the working size's times the last scale's time)", False),
    Argument("seed", INT, "See_d", "Random seed (for random network weights): the same seed gives the same "
             "result", 0, 0, MAX_SEED, 1),
    Argument("device", CHOICE, "De_vice", "Where the engine computes", "auto", choices=DEVICES),
    Argument("animation", BOOLEAN, "_Animation frames", "Every layer of the image is a frame (bottom first): each "
             "frame starts from half of the previous frame's stylisation carried onto it, which keeps the texture "
             "of what does not move steadier; the frames go into a new image", False),
    Argument("layer-name", STRING, "Ne_w layer name", 'Name of the new layers (empty = "SWAG: " and the style\'s '
             "name); animation frames keep their names, which hold their timing", ""),
)
ARGUMENT = dict((a.name, a) for a in ARGUMENTS)
DEFAULTS = dict((a.name, a.default) for a in ARGUMENTS)


class FilterError(Exception):
    """Something the user can fix; the message is one line that says how."""


def engine_options(values):
    """The filter's argument values ({name: value}, choices as nicks) -> the engine's options
    (the service's names). 0 for size or iterations means "the preset's", so it is left out."""
    for name in ("preset", "architecture", "smoothing", "device"):
        nicks = ARGUMENT[name].nicks()
        if values[name] not in nicks:
            raise FilterError("unknown %s %r: choose one of %s" % (name, values[name], ", ".join(nicks)))
    options = {
        "preset": values["preset"], "arch": values["architecture"], "smoothing": values["smoothing"],
        "strength": float(values["strength"]), "preserve_colors": bool(values["preserve-colors"]),
        "layout_weight": float(values["layout-weight"]),
        "full_resolution": bool(values["full-resolution"]),
        "seed": int(values["seed"]), "device": values["device"],
    }
    for name in ("size", "iterations"):
        if values[name]:
            options[name] = int(values[name])
    return options


def preset_text(presets, nick, note=None):
    """The dialog's line under Quality: what the preset works at, as the engine says (`presets`
    from its /health), or, until it has said, `note` on why not (the engine is starting, or
    GIMP cannot start it)."""
    label = dict(PRESETS).get(nick, nick)
    settings = (presets or {}).get(nick) or {}
    if "size" in settings and "iterations" in settings:
        return ("%s works at up to %d px with %d iterations (where Working size and Iterations are 0)"
                % (label, settings["size"], settings["iterations"]))
    return "%s: the engine tells its working size and iterations once it runs%s" % (
        label, " (%s)" % note if note else "")


def layer_name(requested, style_name):
    requested = (requested or "").strip()
    return requested or "SWAG: " + style_name


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
