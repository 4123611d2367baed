"""Every setting of a stylisation, its presets and its validation.

The command line (`--preserve-colors`), the service (`"preserve_colors"`) and the Python API
(`preserve_colors=`) all use these names, and all reject bad values through `Options.build`
with the same one-line messages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import SwagError
from .networks import ARCHITECTURES
from .smoothing import LAYER_CHOICES, MODES

DEVICES = ("auto", "cpu", "cuda", "mps", "gpu")
PRECISIONS = ("auto", "fp32", "bf16")  # bf16: CUDA only (stylize.py)
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")

# What each preset costs is measured and listed in README.md ("Presets").
PRESETS: dict[str, dict] = {
    # One scale at 256 px: a preview.
    "fast": {"size": 256, "iterations": 80, "scales": 1},
    # One scale at 512 px: the default.
    "balanced": {"size": 512, "iterations": 200, "scales": 1},
    # 512 px, then 1024 px from that result (stylize.MIN_COARSE_SIDE says why not smaller).
    "best": {"size": 1024, "iterations": 400, "scales": 2},
}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class Options:
    arch: str = "resnet50"
    weights: str = "random"  # random | imagenet | path to a state_dict file
    smoothing: str = "softmax"  # softmax | channel | none
    # Calibrated on real photos and paintings with random-weight ResNet-50 (docs/paper.md): at 1
    # the smoothed Gram matrices are ruled by a few peaks and the image hardly changes; at 10
    # colour and texture move 60-75% of the way to the style with the content intact.
    temperature: float = 10.0  # in units of each layer's activation spread (smoothing.py)
    smoothed_layers: str = "all"  # all | deep
    content_weight: float = 1.0
    style_weight: float = 1.0
    # A little smoothness: random-weight networks otherwise leave a pixel-level grain.
    tv_weight: float = 0.03
    iterations: int = PRESETS[DEFAULT_PRESET]["iterations"]  # optimiser evaluations, all scales together
    optimizer: str = "lbfgs"
    init: str = "content"
    size: int = PRESETS[DEFAULT_PRESET]["size"]  # working long side in pixels
    scales: int = PRESETS[DEFAULT_PRESET]["scales"]  # coarse-to-fine steps, each doubling the side
    style_scale: float = 1.0  # style image's long side relative to the working size
    preserve_colors: bool = False
    strength: float = 1.0  # 1 = the stylised image, 0 = the original
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    # A scale above tile_size^2 pixels is optimised in overlapping tiles of this side, one on the
    # device at a time (stylize.py); 0 = never. The presets' sizes stay below it.
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

        choice("arch", ARCHITECTURES)
        choice("smoothing", MODES)
        choice("smoothed_layers", LAYER_CHOICES)
        choice("optimizer", OPTIMIZERS)
        choice("init", INITS)
        choice("device", DEVICES)
        choice("precision", PRECISIONS)
        if not self.weights:
            raise SwagError("weights must be random, imagenet or the path of a state_dict file")
        within("temperature", 1e-3, 1e3)
        for name in ("content_weight", "style_weight", "tv_weight"):
            within(name, 0.0)
        within("iterations", 1, 100_000)
        within("size", 16, 16_384)
        within("scales", 1, 6)
        within("style_scale", 0.1, 4.0)
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
    except (TypeError, ValueError):
        raise SwagError(f"{name} must be {_KIND_WORDS[kind]}, not {value!r}") from None


_KIND_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string"}
