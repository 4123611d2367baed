"""Every setting of a stylisation, its presets and its validation.

The command line (`--preserve-colors`), the service (`"preserve_colors"`) and the Python API
(`preserve_colors=`) all use these names, and all reject bad values through `Options.build`
with the same one-line messages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .choices import (ARCHITECTURE_NAMES, DEVICES, INITS, LAYER_CHOICES, LAYER_WEIGHTS, MODES, OPTIMIZERS, POOLINGS,
                      PRECISIONS, SCALINGS, STYLE_STATS, TEMPERATURE_UNITS)
from .errors import SwagError

# What each preset costs is measured and listed in README.md ("Presets"). Every preset runs the
# pyramid from `min_scale` up to its size; `iterations` are shared out over its scales
# (engine/scales.py).
# Most of the iterations run at the coarse scales, where they are cheap (docs/quality.md, ninth
# round). Counted from the finest, `best`'s scales get the steps that `balanced`'s get, and it
# has two scales more.
PRESETS: dict[str, dict] = {
    "fast": {"size": 256, "iterations": 150},  # a preview
    "balanced": {"size": 512, "iterations": 260},  # the default
    "best": {"size": 1024, "iterations": 560},
}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class Options:
    """Defaults chosen on the quality benchmark (docs/quality.md says what each one did)."""

    arch: str = "vgg19"
    weights: str = "random"  # random | imagenet | path to a state_dict file
    smoothing: str = "softmax"  # softmax | shift | channel | none (engine/smoothing.py)
    temperature: float = 10.0
    temperature_unit: str = "spread"  # spread: in units of each layer's activation spread; raw
    smoothed_layers: str = "all"  # all | deep
    pooling: str = "avg"  # avg | max (engine/networks.py)
    style_stats: str = "sliced"  # sliced | meancov | gram (engine/losses.py)
    layer_weights: str = "equal"  # equal (the paper's) | shallow (256, 64, 16, 4, 1)
    loss_scaling: str = "normalised"  # normalised | paper (the public SWAG code's)
    # The layer whose activations the content term compares; empty = the network's own (engine/networks.py).
    content_layer: str = ""
    content_weight: float = 0.03  # from the working size up; coarser scales keep less (engine/scales.py content_share)
    style_weight: float = 1.0
    tv_weight: float = 0.0
    chroma_weight: float = 0.01
    iterations: int = PRESETS[DEFAULT_PRESET]["iterations"]  # optimiser steps, all scales together
    optimizer: str = "adam"
    init: str = "content"
    size: int = PRESETS[DEFAULT_PRESET]["size"]  # working long side in pixels
    # The coarsest scale's long side; the scales grow from it by sqrt(2) up to `size`. A value
    # of `size` or more runs the working size alone. From 128 px, as crowsonkb's engine: what of
    # the subject the small scales lose comes back with the photo's detail that each later scale
    # starts from (engine/pipeline.py; docs/quality.md, eighth round).
    min_scale: int = 128
    style_scale: float = 1.0  # style image's long side relative to each scale's
    # The style statistics are also matched on the image halved 1, 2, ... times (octaves - 1 more
    # passes of the network), so that its filters see the style's larger shapes (engine/losses.py).
    style_octaves: int = 3
    # Each position of the middle style layer, on the halved octaves, pulled towards its most
    # similar style position (engine/losses.py): draws a pattern's shapes, not only the style's
    # statistics; 0 = off (the paper's loss).
    patch_weight: float = 0.1
    # The distribution of the image's 7 x 7 pixel patches matched to the style's, on the image
    # and on it halved once and twice, each halving at least 64 px long (engine/losses.py): the
    # style's flat areas and crisp edges rather than speckle; 0 = off (the paper's loss). Shared
    # by the octaves matched: 0.8 an octave at the working size, as when five octaves shared 4
    # (docs/quality.md, thirtieth round).
    pixel_weight: float = 2.4
    # The photo's large light and dark areas laid under the result, and its overall tone moved
    # towards the photo's: 1 = the photo's, 0 = where the style's terms left them
    # (engine/tones.py). The random network's content term holds the photo's outlines, not its
    # masses (docs/quality.md, thirty-second and thirty-sixth rounds).
    layout_weight: float = 0.5
    # On a layer larger than the working size, one more scale at the layer's own size (tiled
    # above tile_size) paints its fine detail, instead of adding the photo's own detail back.
    # Costs about (layer pixels / working pixels) times the last scale's time.
    full_resolution: bool = False
    preserve_colors: bool = False
    strength: float = 1.0  # 1 = the stylised image, 0 = the original
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    # A scale above tile_size^2 pixels (not counting its margin, engine/pipeline.py MARGIN) is
    # optimised in overlapping tiles of this side, one on the device at a time; 0 = never. The
    # presets' sizes stay below it.
    tile_size: int = 1024

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, preset: str | None = None, **settings) -> "Options":
        """Options from a preset (default: balanced) and explicit settings, which win.
        Settings that are None are left to the preset."""
        preset = preset or DEFAULT_PRESET
        if preset not in PRESETS:
            raise SwagError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        unknown = sorted(set(settings) - set(cls.names()))
        if unknown:
            raise SwagError(f"unknown option {unknown[0]!r}; options are {', '.join(cls.names())}")
        values = {**PRESETS[preset], **{k: v for k, v in settings.items() if v is not None}}
        return cls(**{k: _coerce(k, v) for k, v in values.items()}).validated()

    def validated(self) -> "Options":
        def choice(name, allowed):
            if getattr(self, name) not in allowed:
                raise SwagError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")

        def within(name, low, high=None):
            v = getattr(self, name)
            if v < low or (high is not None and v > high):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise SwagError(f"{name} must be {bound}, not {v}")

        choice("arch", ARCHITECTURE_NAMES)
        choice("smoothing", MODES)
        choice("smoothed_layers", LAYER_CHOICES)
        choice("temperature_unit", TEMPERATURE_UNITS)
        choice("pooling", POOLINGS)
        choice("style_stats", STYLE_STATS)
        choice("layer_weights", LAYER_WEIGHTS)
        choice("loss_scaling", SCALINGS)
        choice("optimizer", OPTIMIZERS)
        choice("init", INITS)
        choice("device", DEVICES)
        choice("precision", PRECISIONS)
        if not self.weights:
            raise SwagError("weights must be random, imagenet or the path of a state_dict file")
        within("temperature", 1e-3, 1e3)
        for name in ("content_weight", "style_weight", "patch_weight", "pixel_weight", "tv_weight", "chroma_weight"):
            within(name, 0.0)
        within("iterations", 1, 100_000)
        within("size", 16, 16_384)
        within("min_scale", 16, 16_384)
        within("style_scale", 0.1, 4.0)
        within("style_octaves", 1, 6)
        within("layout_weight", 0.0, 1.0)
        within("strength", 0.0, 1.0)
        within("seed", 0, 2**63 - 1)
        within("tile_size", 0, 16_384)
        return self


_TYPES = {f.name: f.type for f in dataclasses.fields(Options)}


def _coerce(name: str, value):
    """Accept what JSON and argparse give (strings for numbers, 0/1 for booleans) and say
    clearly when a value has the wrong type."""
    kind = _TYPES[name]
    try:
        if kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            v = float(value)
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError
            return v
        if not isinstance(value, str):
            raise ValueError
        return value
    except OverflowError:  # an integer too large for a float
        raise SwagError(f"{name} is too large a number") from None
    except (TypeError, ValueError):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise SwagError(f"{name} must be {_KIND_WORDS[kind]}, not {shown}") from None


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string"}
