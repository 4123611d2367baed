"""Random filters of several sizes (Ustyuzhaninov et al. 2017), run longer than the fourth
round could: do they draw what the engine's loss does not, Truchet's bands, Kandinsky's lines?

    python benchmarks/multisize.py --out DIR [--device cpu|cuda] [--size 192] [--steps 600]
        [--styles FILE ...]

Each style is synthesised from noise at `--size` over `--steps` Adam steps (the engine's
optimiser) twice: by the engine's own loss with no content term (the baseline: otherwise the
default settings, at one scale, started from noise) and by the filters' Gram matrices alone.
Both are measured (swag_core/research/quality.py) against the noise, so texture 1 is the
style's own; DIR gets sheet.png (rows: styles; columns: the style, the engine, the filters)
and results.csv. docs/quality.md (twentieth round) says what it gave. The filters are not in the
engine.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from quality import IMAGES, _pil, contact_sheet, load  # noqa: E402  (benchmarks/quality.py)
from swag_core.engine.device import Precision, pick_device  # noqa: E402
from swag_core.engine.losses import gram  # noqa: E402
from swag_core.engine.networks import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from swag_core.engine.optimisers import optimise  # noqa: E402
from swag_core.engine.pipeline import stylize  # noqa: E402
from swag_core.imaging import images  # noqa: E402
from swag_core.research import quality  # noqa: E402

STYLES = ("style_pattern_truchet.png", "style_kandinsky_composition8.jpg")
# Ustyuzhaninov et al.'s sizes, 128 filters each (their 1024 filters in all, over eight sizes).
FILTER_SIZES = (3, 5, 7, 11, 15, 23, 37, 55)
FILTERS = 128


class MultiSizeFilters:
    """One layer of random filters per size, ReLU; no padding, so that no zero border enters
    the statistics.
    The convolutions run through the FFT: a 55 x 55 filter costs no more than a 3 x 3 one there,
    whereas as plain convolutions the large filters cost more than all of VGG-19 (the fourth
    round's reason for dropping them on the CPU)."""

    def __init__(self, sizes=FILTER_SIZES, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.weights = [torch.randn(FILTERS, 3, k, k, generator=g) / (3 * k * k) ** 0.5 for k in sizes]
        self.spectra = {}  # (H, W, device) -> the filters' conjugate spectra

    def _spectra(self, h: int, w: int, device) -> list[tuple[int, torch.Tensor]]:
        """Each size that fits an h x w image, with its filters' conjugate spectra."""
        key = (h, w, str(device))
        if key not in self.spectra:
            self.spectra[key] = [(k.shape[-1], torch.fft.rfft2(k.to(device), s=(h, w)).conj())
                                 for k in self.weights if k.shape[-1] <= min(h, w)]
        return self.spectra[key]

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        mean, std = (torch.tensor(v, device=image.device).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        x = (image - mean) / std
        h, w = x.shape[-2:]
        spectrum = torch.fft.rfft2(x)
        # Cross-correlation (what conv2d computes) is the product with the filter's conjugate
        # spectrum; the positions that wrapped around the image are cut, leaving conv2d's "valid".
        return [F.relu(torch.fft.irfft2(torch.einsum("bchw,ochw->bohw", spectrum, s), s=(h, w))[..., :h - k + 1,
                                                                                               :w - k + 1])
                for k, s in self._spectra(h, w, image.device)]


class FilterStyleLoss:
    """Each size's Gram distance to the style's, relative to the target's own size."""

    def __init__(self, filters: MultiSizeFilters, style: torch.Tensor):
        self.filters = filters
        with torch.no_grad():
            self.targets = [gram(f) for f in filters(style)]

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        grams = map(gram, self.filters(image))
        loss = sum((g - t).pow(2).sum() / t.pow(2).sum() for g, t in zip(grams, self.targets))
        return loss / len(self.targets), {}


def run(x: torch.Tensor, loss_fn, steps: int, device: torch.device) -> torch.Tensor:
    # The engine's precision setting; the filters' responses and Gram matrices stay in fp32
    # whatever it is (autocast leaves complex products alone, and `gram` turns it off).
    with Precision("auto", device):
        return optimise(x, loss_fn, "adam", steps, None, lambda i, loss: None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=192, help="the long side synthesised (default 192)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--styles", nargs="+", default=STYLES, help="file names in --images")
    p.add_argument("--images", type=Path, default=IMAGES)
    args = p.parse_args(argv)
    device = pick_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    filters = MultiSizeFilters()
    cells = []
    with open(args.out / "results.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["style", "variant", *quality.MEASURES, "seconds"])
        writer.writeheader()
        for name in args.styles:
            style = load(args.images / name, args.size)
            s = images.to_tensor(style)
            noise = torch.rand(s.shape, generator=torch.Generator().manual_seed(0))
            row = [style]
            for variant in ("engine", "filters"):
                start = time.perf_counter()
                if variant == "engine":  # the style as the content, which the weight 0 ignores
                    result = images.to_tensor(stylize(style, style, device=str(device), init="noise",
                                                      content_weight=0, size=args.size, min_scale=args.size,
                                                      iterations=args.steps, seed=0).convert("RGB"))
                else:
                    result = run(noise.to(device), FilterStyleLoss(filters, s.to(device)), args.steps, device).cpu()
                seconds = time.perf_counter() - start
                m = quality.measure(noise, result, s)
                writer.writerow({"style": name, "variant": variant, **{k: f"{v:.3f}" for k, v in m.items()},
                                 "seconds": f"{seconds:.1f}"})
                out.flush()
                print(f"{name} {variant}: " + " ".join(f"{k} {v:.3f}" for k, v in m.items()) + f" ({seconds:.0f} s)",
                      flush=True)
                row.append(_pil(result))
            cells.append(row)
            contact_sheet(cells, ["style", f"engine, {args.steps} steps", f"filters, {args.steps} steps"]
                          ).save(args.out / "sheet.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
