"""`swag stats`: the activation statistics of the paper's Figure 3, measured by the engine.

For each network, without and with SWAG smoothing, and for each style (loss) layer, the mean
over the images of:
- `max_activation`: the largest activation, max_ik F_ik;
- `activation_entropy`: the normalised entropy of the activations;
- `gram_max`: the largest Gram value, max_ij G_ij (G as the losses compute it, `losses.gram`);
- `gram_entropy`: the normalised entropy of the Gram matrix;
- `linearisation_error`: how far the smoothing is from its first-order expansion, the `shift`
  control (smoothing.linearisation_error; 0 for no smoothing, which is linear). At the
  default temperature it is small on every layer: see docs/paper.md.

Normalised entropy of n non-negative values v: p = v / sum(v) is a probability distribution;
its Shannon entropy -sum p log p divided by log n, so 0 = all the mass on one value, 1 = uniform.
With smoothing the statistics are those of the smoothed values the losses see: the engine's
softmax (engine/smoothing.py) at the engine's default temperature, in units of each image's own
activation spread at that layer (`losses.activation_scale`), so the smoothed values have mean 1.

Networks: random-weight ResNet-50, NoResNet-50, pseudo-ResVGG, pseudo-VGG and VGG-19 (`r-`),
and the pre-trained ones (`p-`) whose ImageNet weights are in the torch cache.
"""

from __future__ import annotations

import csv
import math
from contextlib import ExitStack
from dataclasses import astuple, dataclass, fields
from importlib import resources
from pathlib import Path

NETWORKS = ("resnet50", "noresnet50", "pseudo_resvgg", "pseudo_vgg", "vgg19")
SMOOTHINGS = ("none", "softmax")
# The images the project ships (swag_core/data/README.md): three photos and a painting.
SHIPPED_IMAGES = ("cat.jpg", "astronaut.jpg", "rocket.jpg", "starry_night.jpg")
PLOT_HINT = "install matplotlib for the plot: pip install 'swag-style-transfer[plot]'"


@dataclass(frozen=True)
class Row:
    network: str  # "r-resnet50" (random weights) or "p-resnet50" (ImageNet weights)
    smoothing: str
    layer: str
    depth: int  # loss layers counted from 1
    max_activation: float
    activation_entropy: float
    gram_max: float
    gram_entropy: float
    linearisation_error: float


# The CSV's columns, in this order: network,smoothing,layer,depth,max_activation,...
COLUMNS = tuple(f.name for f in fields(Row))


def normalised_entropy(values):
    """Shannon entropy of values / sum(values) over log(count), in [0, 1]; NaN when all are 0."""
    import torch

    p = values.detach().flatten().float()
    p = p / p.sum()
    return float(torch.special.entr(p).sum() / math.log(p.numel()))  # entr(p) = -p log p, 0 at 0


def layer_statistics(features) -> tuple[float, float, float, float]:
    """(max activation, activation entropy, max Gram value, Gram entropy) of one image's
    (1, C, H, W) activations."""
    from ..engine.losses import gram

    g = gram(features)
    return float(features.max()), normalised_entropy(features), float(g.max()), normalised_entropy(g)


def load_images(paths, size: int):
    """Each image as (1, 3, h, w) RGB with its long side `size`."""
    import torch.nn.functional as F

    from ..imaging import images

    tensors = []
    for path in paths:
        rgb = images.to_tensor(images.open_image(path, "image"))
        h, w = rgb.shape[-2:]
        scale = size / max(h, w)
        target = (max(1, round(h * scale)), max(1, round(w * scale)))
        tensors.append(F.interpolate(rgb, size=target, mode="bicubic", antialias=True).clamp(0, 1))
    return tensors


def networks_to_measure(weights: str | None) -> list[tuple[str, str]]:
    """[(network, weights)]: random ones unless `weights` is imagenet, pre-trained ones that are
    present unless it is random."""
    from ..choices import IMAGENET, RANDOM
    from ..engine.networks import ARCHITECTURES
    from ..engine.weights import imagenet_available
    from ..errors import SwagError

    chosen = []
    if weights in (None, RANDOM):
        chosen += [(name, RANDOM) for name in NETWORKS]
    if weights in (None, IMAGENET):
        chosen += [(name, IMAGENET) for name in NETWORKS if imagenet_available(ARCHITECTURES[name])]
    if not chosen:
        raise SwagError("no ImageNet weights are in the torch cache; fetch them with "
                        "`swag download-weights resnet50 vgg19` or use --weights random")
    return chosen


def measure_network(name: str, weights: str, image_tensors, temperature: float, seed: int) -> list[Row]:
    """The rows of one network: per smoothing and loss layer, the statistics' mean over images."""
    import torch

    from ..choices import RANDOM
    from ..engine.losses import activation_scale
    from ..engine.networks import FeatureExtractor
    from ..engine.smoothing import linearisation_error, smooth
    from ..engine.weights import load_model

    arch, model = load_model(name, weights, seed)
    extractor = FeatureExtractor(arch, model, arch.style_layers)
    sums = {(s, layer): [0.0] * 5 for s in SMOOTHINGS for layer in arch.style_layers}
    with torch.no_grad():
        for image in image_tensors:
            for layer, f in extractor(image).items():
                t = temperature * activation_scale(f)
                smoothed = {"none": (f, 0.0), "softmax": (smooth(f, "softmax", t), linearisation_error(f, t))}
                for s in SMOOTHINGS:
                    values, error = smoothed[s]
                    sums[s, layer] = [a + b for a, b in zip(sums[s, layer], layer_statistics(values) + (error,))]
    label = ("r-" if weights == RANDOM else "p-") + name
    n = len(image_tensors)
    return [Row(label, s, layer, depth, *(v / n for v in sums[s, layer]))
            for s in SMOOTHINGS for depth, layer in enumerate(arch.style_layers, start=1)]


def compute(paths, size: int, weights: str | None = None, temperature: float | None = None,
            seed: int | None = None) -> list[Row]:
    """Every row of the table, for the images at `paths` brought to long side `size`.
    `temperature` and `seed` default to the engine's (options.Options)."""
    from ..engine.networks import ARCHITECTURES
    from ..errors import SwagError
    from ..options import Options

    defaults = Options()
    temperature = defaults.temperature if temperature is None else temperature
    seed = defaults.seed if seed is None else seed
    chosen = networks_to_measure(weights)
    tensors = load_images(paths, size)
    need = max(ARCHITECTURES[name].min_size for name, _ in chosen)
    small = [p for p, t in zip(paths, tensors) if min(t.shape[-2:]) < need]
    if small:
        raise SwagError(f"{small[0]} is too narrow at --size {size}: the networks need at least {need} px "
                        "on its short side; use a larger --size")
    return [row for name, w in chosen for row in measure_network(name, w, tensors, temperature, seed)]


def write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(f"{v:.6g}" if isinstance(v, float) else v for v in astuple(row))


def read_csv(path: Path) -> list[Row]:
    with open(path, newline="") as f:
        return [Row(r["network"], r["smoothing"], r["layer"], int(r["depth"]),
                    *(float(r[c]) for c in COLUMNS[4:])) for r in csv.DictReader(f)]


_PANELS = (("max_activation", "largest activation", True), ("activation_entropy", "activation entropy", False),
           ("gram_max", "largest Gram value", True), ("gram_entropy", "Gram entropy", False))


def plot(rows: list[Row], path: Path, title: str) -> bool:
    """Four panels like the paper's Figure 3; False when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    networks = list(dict.fromkeys(r.network for r in rows))
    colours = dict(zip(networks, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for ax, (column, label, log) in zip(axes, _PANELS):
        for network in networks:
            for s in SMOOTHINGS:
                line = sorted((r.depth, getattr(r, column)) for r in rows if r.network == network and r.smoothing == s)
                # The paper stars the smoothed variant of a network (ResNet* = ResNet + SWAG).
                ax.plot(*zip(*line), marker="o", color=colours[network], linestyle="-" if s == "none" else "--",
                        label=network + ("*" if s == "softmax" else ""))
        ax.set_title(label)
        ax.set_xlabel("loss layer (depth)")
        ax.set_xticks(sorted({r.depth for r in rows}))
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.02)
    axes[-1].legend(fontsize=8, loc="lower left", bbox_to_anchor=(1.02, 0))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _print_table(rows: list[Row]) -> None:
    print(f"{'network':<16} {'smoothing':<9} {'layer':<8} {'max act':>9} {'act H':>6} {'max Gram':>10} {'Gram H':>6} "
          f"{'non-linear':>10}")
    for r in rows:
        print(f"{r.network:<16} {r.smoothing:<9} {r.layer:<8} {r.max_activation:>9.3g} {r.activation_entropy:>6.3f} "
              f"{r.gram_max:>10.3g} {r.gram_entropy:>6.3f} {r.linearisation_error:>10.3f}")


def _run(args) -> int:
    from ..errors import SwagError
    from ..options import Options

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SwagError(f"--out {out} is a file; give a folder for stats.csv and stats.png")
    temperature = Options.build(temperature=args.temperature).temperature  # the engine's when not given
    if args.size < 32:
        raise SwagError(f"--size must be at least 32 (the networks down-sample by 32), not {args.size}")
    with ExitStack() as stack:
        data = resources.files("swag_core") / "data"
        paths = args.images or [stack.enter_context(resources.as_file(data / name)) for name in SHIPPED_IMAGES]
        rows = compute(paths, args.size, args.weights, temperature)
    out.mkdir(parents=True, exist_ok=True)
    _print_table(rows)
    write_csv(rows, out / "stats.csv")
    print(f"wrote {out / 'stats.csv'}")
    title = f"{len(paths)} images, long side {args.size} px, softmax temperature {temperature:g} x layer spread"
    if plot(rows, out / "stats.png", title):
        print(f"wrote {out / 'stats.png'}")
    else:
        print(f"no plot: {PLOT_HINT}")
    return 0


def add_command(subparsers) -> None:
    p = subparsers.add_parser("stats", help="activation and Gram statistics per layer (the paper's Figure 3)",
                              description="Per loss layer of each network, without and with SWAG smoothing: the "
                              "largest activation and Gram value and their normalised entropies "
                              "(docs/paper.md defines them).")
    p.add_argument("images", nargs="*", help="images to measure (default: the images the project ships)")
    p.add_argument("--size", type=int, default=256, help="long side the images are brought to (default 256)")
    p.add_argument("--weights", choices=("random", "imagenet"),
                   help="only random or only pre-trained networks (default: random, and pre-trained where present)")
    p.add_argument("--temperature", type=float,
                   help="softmax temperature in units of each layer's spread (default: the engine's)")
    p.add_argument("--out", required=True, help="folder for stats.csv and stats.png (created if missing)")
    p.set_defaults(func=_run)
