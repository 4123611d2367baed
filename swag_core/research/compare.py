"""`swag compare`: one content and one style image stylised by the paper's variants, side by side
(its Figures 1 and 6), with the measurements that make "SWAG helps" a number (quality.py).

Variants: r-VGG-19, r-ResNet-50 and r-ResNet-50 + SWAG (random weights; the first two without
smoothing, the last with the engine's softmax smoothing), and the same three with ImageNet
weights (p-) when those are in the torch cache. Every other setting is the engine's default
(options.py), with the size and iteration count of the command line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

LABEL_HEIGHT = 16  # px above each tile, for one line of PIL's default font


@dataclass(frozen=True)
class Variant:
    label: str
    arch: str
    weights: str
    smoothing: str


def variants() -> list[list[Variant]]:
    """Rows of variants: random weights, then pre-trained where present."""
    from ..choices import IMAGENET, RANDOM
    from ..engine.networks import ARCHITECTURES
    from ..engine.weights import imagenet_available

    def row(prefix: str, weights: str) -> list[Variant]:
        return [Variant(f"{prefix}-VGG-19", "vgg19", weights, "none"),
                Variant(f"{prefix}-ResNet-50", "resnet50", weights, "none"),
                Variant(f"{prefix}-ResNet-50 + SWAG", "resnet50", weights, "softmax")]

    rows = [row("r", RANDOM)]
    if all(imagenet_available(ARCHITECTURES[name]) for name in ("vgg19", "resnet50")):
        rows.append(row("p", IMAGENET))
    return rows


def grid(tiles: list[list[tuple[str, "Image.Image"] | None]], height: int):
    """Labelled tiles in rows, each scaled to `height`; None leaves a cell empty. A column is as
    wide as its widest tile or label."""
    from PIL import Image, ImageDraw

    scaled = [[None if t is None else (t[0], t[1].convert("RGB").resize(
        (max(1, round(t[1].width * height / t[1].height)), height), Image.Resampling.LANCZOS)) for t in r]
        for r in tiles]
    columns = max(len(r) for r in scaled)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [max((max(r[c][1].width, round(measure.textlength(r[c][0])) + 6)
                   for r in scaled if c < len(r) and r[c] is not None), default=0) for c in range(columns)]
    out = Image.new("RGB", (sum(widths), len(scaled) * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(out)
    for i, r in enumerate(scaled):
        y = i * (height + LABEL_HEIGHT)
        for c, tile in enumerate(r):
            if tile is not None:
                x = sum(widths[:c])
                draw.text((x + 3, y + 2), tile[0], fill="black")
                out.paste(tile[1], (x, y + LABEL_HEIGHT))
    return out


def _working_size(image, size: int):
    """The image with its long side at most `size`, as the engine works on it."""
    from PIL import Image, ImageOps

    return ImageOps.contain(image, (size, size), Image.Resampling.LANCZOS) if max(image.size) > size else image


def _run(args) -> int:
    from ..engine.pipeline import stylize
    from ..imaging import images
    from ..imaging.saving import check_output_path, save_image
    from ..options import Options
    from .quality import measure

    out = Path(args.out)
    check_output_path(out)
    opts = Options.build(None, size=args.size, iterations=args.iterations)  # validates them
    content = images.open_image(args.content, "content")
    style = images.open_image(args.style, "style")
    # Measured at the working size: what the optimisation saw, and cheap at any content size.
    content_t, style_t = images.to_tensor(_working_size(content, opts.size)), images.style_tensor(style)
    print(f"{opts.size} px, {opts.iterations} iterations from {opts.min_scale} px, temperature "
          f"{opts.temperature:g}, weights content {opts.content_weight:g} / style {opts.style_weight:g}")
    print(f"{'variant':<24} {'colour':>7} {'texture':>8} {'structure':>9} {'layout':>6} {'grain':>6} {'seconds':>8}")
    rows = []
    for row in variants():
        results = []
        for v in row:
            start = time.perf_counter()
            result = stylize(content, style, arch=v.arch, weights=v.weights, smoothing=v.smoothing,
                             size=opts.size, iterations=opts.iterations)
            seconds = time.perf_counter() - start
            m = measure(content_t, images.to_tensor(_working_size(result, opts.size)), style_t)
            print(f"{v.label:<24} {m['colour']:>7.3f} {m['texture']:>8.3f} {m['structure']:>9.3f} "
                  f"{m['layout']:>6.3f} {m['grain']:>6.2f} {seconds:>8.1f}", flush=True)
            results.append((v.label, result))
        rows.append(results)
    first = [("content", content), ("style", style)]
    image = grid([first + rows[0]] + [[None, None] + r for r in rows[1:]], content_t.shape[-2])
    save_image(image, out)
    print(f"wrote {out} ({image.width}x{image.height})")
    return 0


def add_command(subparsers) -> None:
    p = subparsers.add_parser("compare", help="stylise with VGG-19, ResNet-50 and ResNet-50 + SWAG, side by side",
                              description="Stylise CONTENT with STYLE through r-VGG-19, r-ResNet-50 and r-ResNet-50 "
                              "+ SWAG (and their pre-trained twins when present), write one labelled "
                              "grid and print how far each result moved toward the style.")
    p.add_argument("content", help="the image to stylise")
    p.add_argument("style", help="the style image")
    p.add_argument("--out", required=True, help="the grid image to write (.png, .jpg...)")
    p.add_argument("--size", type=int, help="working long side in pixels (default: the engine's)")
    p.add_argument("--iterations", type=int, help="optimiser evaluations per variant (default: the engine's)")
    p.set_defaults(func=_run)
