"""The `swag` command line (also `python -m swag_core`).

Every failure a user can cause (a missing file, a file that is not an image, a bad option
value, an image too small for the network) ends with one line on stderr and exit status 2,
without a traceback and without an output file.
"""

from __future__ import annotations

import argparse
import sys
import threading
from importlib import import_module, resources
from pathlib import Path

from . import __version__
from .choices import (ARCHITECTURE_NAMES, DEVICES, INITS, LAYER_CHOICES, LAYER_WEIGHTS, MODES, OPTIMIZERS, POOLINGS,
                      PRECISIONS, PRETRAINED_ARCHITECTURES, SCALINGS, STYLE_STATS, TEMPERATURE_UNITS)
from .errors import Cancelled, SwagError
from .imaging.saving import check_output_path, save_image
from .options import PRESETS

EXIT_USAGE = 2

# Modules that add a subcommand of their own: each has add_command(subparsers), which sets
# `func` on its parser. They import torch inside `func` only, so `swag --help` stays quick
# (tests/test_layout.py checks that building the parser leaves torch unloaded).
_COMMAND_MODULES: tuple[str, ...] = ("swag_core.research.stats", "swag_core.service.server",
                                     "swag_core.research.compare", "swag_core.bench.command")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of the command."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _job_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("stylisation (defaults: the preset's, see README.md)")
    g.add_argument("--preset", choices=PRESETS, help="fast, balanced (default) or best")
    g.add_argument("--arch", choices=ARCHITECTURE_NAMES, help="network (default vgg19)")
    g.add_argument("--weights", help="random (default), imagenet (from the torch cache) or a state_dict file")
    g.add_argument("--smoothing", choices=MODES, help="SWAG smoothing (shift: its linearised control)")
    g.add_argument("--temperature", type=float, help="softmax temperature")
    g.add_argument("--temperature-unit", choices=TEMPERATURE_UNITS,
                   help="spread: in units of each layer's activation spread; raw: the paper's")
    g.add_argument("--smoothed-layers", choices=LAYER_CHOICES, help="smooth all loss layers or only the deep ones")
    g.add_argument("--pooling", choices=POOLINGS, help="the network's pooling stages")
    g.add_argument("--style-stats", choices=STYLE_STATS,
                   help="the style compared by Gram matrices, means and covariances or sliced distributions")
    g.add_argument("--layer-weights", choices=LAYER_WEIGHTS, help="style layer weights")
    g.add_argument("--loss-scaling", choices=SCALINGS,
                   help="normalised (per layer) or paper (the public SWAG code's weighting)")
    g.add_argument("--size", type=int, help="working long side in pixels")
    g.add_argument("--iterations", type=int, help="optimiser steps, all scales together")
    g.add_argument("--min-scale", type=int, help="the coarsest scale's long side (>= size: one scale)")
    g.add_argument("--content-layer", help="the layer the content term compares (default: the network's)")
    g.add_argument("--content-weight", type=float)
    g.add_argument("--style-weight", type=float)
    g.add_argument("--patch-weight", type=float,
                   help="pull each region towards the style's most similar one: its shapes and strokes (0 = off)")
    g.add_argument("--pixel-weight", type=float,
                   help="match the style's small patches of pixels at up to three scales: its flat areas and crisp "
                        "edges (0 = off)")
    g.add_argument("--layout-weight", type=float,
                   help="lay the photo's large light and dark areas under the result: 1 = where the photo has them, "
                        "0 = the style's (default 0.5)")
    g.add_argument("--tv-weight", type=float, help="total variation (smoothness) weight")
    g.add_argument("--chroma-weight", type=float, help="weight of the colour channels' smoothness (against grain)")
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--init", choices=INITS, help="start from the content image or from noise")
    g.add_argument("--style-scale", type=float, help="style image size relative to the working size")
    g.add_argument("--style-octaves", type=int,
                   help="match the style on the image and on it halved 1, 2, ... times (default 3; 1: the image only)")
    g.add_argument("--full-resolution", action="store_true", default=None,
                   help="on an image larger than the working size, paint its fine detail at its own size too "
                        "(slower) instead of keeping the photo's")
    g.add_argument("--preserve-colors", action="store_true", default=None,
                   help="transfer luminance only, keep the content's colours")
    g.add_argument("--strength", type=float, help="blend with the original: 0..1 (default 1)")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", choices=DEVICES, help="auto: CUDA, then MPS, then CPU")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="auto: TF32 on CUDA, bf16 on a CPU with bf16 instructions, else fp32")
    g.add_argument("--tile-size", type=int, help="optimise larger scales in tiles of this side (0 = never)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


_NOT_SETTINGS = {"command", "content", "style", "output", "style_weights", "quiet", "preset", "func"}


def _settings(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}


class _ProgressBar:
    """A one-line progress bar on stderr, when stderr is a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, p):
        if not self.enabled:
            return
        filled = int(p.fraction * 30)
        loss = f" loss {p.loss:.4g}" if p.loss is not None else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {p.fraction:4.0%} {p.stage}{loss}\033[K")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")


def _run_stylize(args, content, styles) -> int:
    from .engine.pipeline import stylize

    output = Path(args.output)
    check_output_path(output)
    bar = _ProgressBar(not args.quiet)
    try:
        result = stylize(content, styles, style_weights=args.style_weights, preset=args.preset,
                         progress=bar, cancel=threading.Event(), **_settings(args))
    finally:
        bar.close()
    save_image(result, output)
    print(f"wrote {output} ({result.width}x{result.height} {result.mode})")
    return 0


def _cmd_stylize(args) -> int:
    return _run_stylize(args, args.content, args.style)


def _cmd_demo(args) -> int:
    data = resources.files("swag_core") / "data"
    with resources.as_file(data / "cat.jpg") as content, resources.as_file(data / "starry_night.jpg") as style:
        return _run_stylize(args, content, [style])


def _cmd_info(args) -> int:
    import numpy
    import PIL
    import torch
    import torchvision

    from .engine.device import network_precision, pick_device
    from .engine.networks import ARCHITECTURES
    from .engine.weights import imagenet_available

    print(f"swag {__version__}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"pillow {PIL.__version__}, numpy {numpy.__version__}")
    device = pick_device("auto")
    print(f"device (auto): {device}")
    print(f"precision (auto): {network_precision('auto', device)} for the network")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            print(f"  cuda:{i} {props.name}, {props.total_memory / 2**30:.1f} GiB")
    else:
        print(f"  CUDA: not available (torch built for CUDA {torch.version.cuda or 'none'})")
    print(f"torch cache: {torch.hub.get_dir()}")
    present = [name for name, arch in ARCHITECTURES.items() if imagenet_available(arch)]
    print(f"pre-trained (imagenet) weights present: {', '.join(present) if present else 'none'}")
    return 0


def _cmd_download_weights(args) -> int:
    from .engine.weights import download_imagenet

    for name in args.arch:
        print(f"{name}: {download_imagenet(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swag", description="SWAG style transfer (Wang, Li, Vasconcelos, CVPR 2021).")
    parser.add_argument("--version", action="version", version=f"swag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("stylize", help="stylise an image with one or more style images")
    p.add_argument("content", help="the image to stylise")
    p.add_argument("style", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, help="output image (.png keeps alpha and 16 bits)")
    p.add_argument("--style-weights", type=float, nargs="+", help="blend weights, one per style image")
    _job_options(p)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser("demo", help="stylise the bundled photo with the bundled painting")
    p.add_argument("-o", "--output", default="swag-demo.png", help="output image (default swag-demo.png)")
    _job_options(p)
    p.set_defaults(func=_cmd_demo, style_weights=None)

    p = sub.add_parser("info", help="versions, the device that would be used, pre-trained weights present")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("download-weights", help="fetch torchvision's ImageNet weights into the torch cache")
    p.add_argument("arch", nargs="+", choices=PRETRAINED_ARCHITECTURES)
    p.set_defaults(func=_cmd_download_weights)

    for name in _COMMAND_MODULES:
        import_module(name).add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SwagError as exc:
        print(f"swag {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Cancelled:
        print(f"swag {args.command}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"swag {args.command}: interrupted", file=sys.stderr)
        return 130
