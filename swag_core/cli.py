"""The `swag` command line (also `python -m swag_core`).

Every failure a user can cause (a missing file, a file that is not an image, a bad option
value, an image too small for the network) ends with one line on stderr and exit status 2,
without a traceback and without an output file.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from importlib import import_module, resources
from pathlib import Path

from . import __version__
from .errors import Cancelled, SwagError
from .networks import ARCHITECTURES
from .losses import LAYER_WEIGHTS, SCALINGS, STYLE_STATS, TEMPERATURE_UNITS
from .networks import POOLINGS
from .options import DEVICES, INITS, OPTIMIZERS, PRECISIONS, PRESETS
from .smoothing import LAYER_CHOICES, MODES

EXIT_USAGE = 2

# Modules that add a subcommand of their own: each has add_command(subparsers), which sets
# `func` on its parser. They import their heavy dependencies inside `func`, so `swag --help` stays quick.
_COMMAND_MODULES: tuple[str, ...] = ("swag_core.stats", "swag_core.service", "swag_core.compare",
                                     "swag_core.bench")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error of the command."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _job_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("stylisation (defaults: the preset's, see README.md)")
    g.add_argument("--preset", choices=PRESETS, help="fast, balanced (default) or best")
    g.add_argument("--arch", choices=ARCHITECTURES, help="network (default vgg19)")
    g.add_argument("--weights", help="random (default), imagenet (from the torch cache) or a state_dict file")
    g.add_argument("--smoothing", choices=MODES, help="SWAG smoothing (shift: its linearised control)")
    g.add_argument("--temperature", type=float, help="softmax temperature")
    g.add_argument("--temperature-unit", choices=TEMPERATURE_UNITS,
                   help="spread: in units of each layer's activation spread; raw: the paper's")
    g.add_argument("--smoothed-layers", choices=LAYER_CHOICES, help="smooth all loss layers or only the deep ones")
    g.add_argument("--pooling", choices=POOLINGS, help="the network's pooling stages")
    g.add_argument("--style-stats", choices=STYLE_STATS, help="Gram matrices or means and covariances")
    g.add_argument("--layer-weights", choices=LAYER_WEIGHTS, help="style layer weights")
    g.add_argument("--loss-scaling", choices=SCALINGS,
                   help="normalised (per layer) or paper (the public SWAG code's weighting)")
    g.add_argument("--size", type=int, help="working long side in pixels")
    g.add_argument("--iterations", type=int, help="optimiser steps, all scales together")
    g.add_argument("--min-scale", type=int, help="the coarsest scale's long side (>= size: one scale)")
    g.add_argument("--content-layer", help="the layer the content term compares (default: the network's)")
    g.add_argument("--content-weight", type=float)
    g.add_argument("--style-weight", type=float)
    g.add_argument("--tv-weight", type=float, help="total variation (smoothness) weight")
    g.add_argument("--chroma-weight", type=float, help="weight of the colour channels' smoothness (against grain)")
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--init", choices=INITS, help="start from the content image or from noise")
    g.add_argument("--style-scale", type=float, help="style image size relative to the working size")
    g.add_argument("--preserve-colors", action="store_true", default=None,
                   help="transfer luminance only, keep the content's colours")
    g.add_argument("--strength", type=float, help="blend with the original: 0..1 (default 1)")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", choices=DEVICES, help="auto: CUDA, then MPS, then CPU")
    g.add_argument("--precision", choices=PRECISIONS)
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


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an output whose format or folder would make the save fail."""
    from PIL import Image

    if path.suffix.lower() not in Image.registered_extensions():
        raise SwagError(f"cannot tell the image format of {path} from its extension; use .png, .jpg, .tif or .webp")
    if not path.parent.exists():
        raise SwagError(f"the output folder {path.parent} does not exist")


def save_image(image, path: Path) -> None:
    """Write atomically: a failed or interrupted save leaves no partial file behind."""
    from PIL import Image

    fmt = Image.registered_extensions()[path.suffix.lower()]
    if fmt == "JPEG" and image.mode in ("RGBA", "LA", "I;16"):
        raise SwagError(f"JPEG cannot hold a {image.mode} image (alpha or 16-bit); write a .png or .tif instead")
    # Not mkstemp: its file is mode 0600 whatever the umask, and os.replace would keep that mode.
    # A new file opened with 0666 gets the mode the user's umask gives every file they write.
    tmp = path.parent / f".swag-{secrets.token_hex(8)}{path.suffix}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _run_stylize(args, content, styles) -> int:
    from .stylize import stylize

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

    from .stylize import pick_device
    from .weights import imagenet_available

    print(f"swag {__version__}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"pillow {PIL.__version__}, numpy {numpy.__version__}")
    device = pick_device("auto")
    print(f"device (auto): {device}")
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
    from .weights import download_imagenet

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
    p.add_argument("arch", nargs="+", choices=[n for n, a in ARCHITECTURES.items() if a.imagenet])
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
