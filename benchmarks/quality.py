"""The quality benchmark: every variant of the engine on the benchmark's pairs, measured
(swag_core/research/quality.py) beside two baselines, with a contact sheet to look at.

    python benchmarks/quality.py --out DIR [--size 256] [--iterations N] [--seeds 0 1 2]
        [--pairs diagonal|all] [--variant NAME:key=value,key=value ...] [--against NAME]

A variant is a name and the engine settings it changes (the fields of swag_core.Options, for
example `vgg-avg:arch=vgg19,pooling=avg`); `default` is the engine as shipped. Pairs come from
benchmarks/images (content_*.jpg x style_*): `diagonal` pairs the i-th content with the i-th
style (every image once), `all` takes every combination. Each content is brought to `--size`
(its long side), so the output is the working size itself and the measures see the engine's
own pixels. DIR gets results.csv (one row per pair, seed and variant), sheet.png (rows: pairs,
first seed; columns: content, style, the baselines, the variants) and table.md (what is
printed).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from swag_core import SwagError  # noqa: E402
from swag_core.engine.pipeline import stylize  # noqa: E402
from swag_core.imaging import images  # noqa: E402
from swag_core.options import Options  # noqa: E402
from swag_core.research import quality  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, body = text.partition(":")
    settings = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = value.strip()
    try:
        Options.build(**settings)  # a bad setting fails here, before any work
    except SwagError as exc:
        raise SystemExit(f"variant {text!r}: {exc}") from None
    return name, settings


def pairs(kind: str, folder: Path = IMAGES) -> list[tuple[Path, Path]]:
    contents = sorted(folder.glob("content_*"))
    styles = sorted(p for p in folder.glob("style_*"))
    if not contents or not styles:
        raise SystemExit(f"no content_* / style_* images in {folder}")
    if kind == "all":
        return [(c, s) for c in contents for s in styles]
    n = max(len(contents), len(styles))
    return [(contents[i % len(contents)], styles[i % len(styles)]) for i in range(n)]


def load(path: Path, long_side: int | None = None) -> Image.Image:
    image = images.open_image(path).convert("RGB")
    if long_side:
        scale = long_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    return image


def summary(rows: list[dict], name: str) -> dict:
    out = {"variant": name, "runs": len(rows)}
    for m in quality.MEASURES + ("seconds",):
        values = [r[m] for r in rows if m in r]
        if values:
            out[m] = (statistics.fmean(values), statistics.pstdev(values))
    return out


def table(summaries: list[dict]) -> str:
    columns = ["variant", "runs", *quality.MEASURES, "seconds"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for s in summaries:
        cells = [f"{s[m][0]:.3f} ± {s[m][1]:.3f}" if m in s else "" for m in quality.MEASURES]
        seconds = f"{s['seconds'][0]:.1f}" if "seconds" in s else ""
        lines.append(f"| {s['variant']} | {s['runs']} | " + " | ".join(cells) + f" | {seconds} |")
    return "\n".join(lines)


def wins(rows: list[dict], name: str, against: str, tolerance: float = 0.05) -> tuple[int, int]:
    """Pairs (and seeds) where `name` transfers more texture than `against` with a structure no
    more than `tolerance` lower."""
    by_key = {(r["content"], r["style"], r["seed"]): r for r in rows if r["variant"] == against}
    won = total = 0
    for r in rows:
        if r["variant"] != name or (r["content"], r["style"], r["seed"]) not in by_key:
            continue
        other = by_key[r["content"], r["style"], r["seed"]]
        total += 1
        won += r["texture"] > other["texture"] and r["structure"] >= other["structure"] - tolerance
    return won, total


def contact_sheet(cells: list[list[Image.Image]], labels: list[str], thumb: int = 192) -> Image.Image:
    pad, top = 4, 18
    sheet = Image.new("RGB", (len(labels) * (thumb + pad) + pad, len(cells) * (thumb + pad) + top + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(labels):
        draw.text((pad + j * (thumb + pad), 3), label[:30], fill="black")
    for i, row in enumerate(cells):
        for j, im in enumerate(row):
            im = im.copy()
            im.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
            sheet.paste(im, (pad + j * (thumb + pad), top + i * (thumb + pad)))
    return sheet


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=256, help="working long side (default 256)")
    p.add_argument("--iterations", type=int, help="default: the preset's")
    p.add_argument("--preset", default="balanced")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--pairs", choices=("diagonal", "all"), default="diagonal")
    p.add_argument("--limit", type=int, help="only N pairs, evenly spread over the set")
    p.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (repeatable)")
    p.add_argument("--against", help="count the pairs where each variant beats this one on texture")
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=Path, default=IMAGES)
    args = p.parse_args(argv)
    variants = [parse_variant(v) for v in (args.variant or ["default:"])]
    chosen = pairs(args.pairs, args.images)
    if args.limit and args.limit < len(chosen):  # spread over the set, not its first names
        chosen = [chosen[round(i * len(chosen) / args.limit)] for i in range(args.limit)]
    args.out.mkdir(parents=True, exist_ok=True)

    rows, sheet_rows = [], []
    names = list(quality.BASELINES) + [n for n, _ in variants]
    # Written as the runs finish, so that a long benchmark stopped early keeps what it measured.
    results = open(args.out / "results.csv", "w", newline="")
    writer = csv.DictWriter(results, fieldnames=["variant", "content", "style", "seed", *quality.MEASURES, "seconds"])
    writer.writeheader()
    for content_path, style_path in chosen:
        content = load(content_path, args.size)
        style = load(style_path)
        c, s = images.to_tensor(content), images.style_tensor(style)
        row_images = [content, style]
        for name, baseline in quality.BASELINES.items():
            out = baseline(c, quality.style_at(s, c))
            rows.append({"variant": name, "content": content_path.stem, "style": style_path.stem, "seed": 0,
                         **quality.measure(c, out, s)})
            writer.writerow(rows[-1])
            row_images.append(_pil(out))
        for name, settings in variants:
            for seed in args.seeds:
                start = time.perf_counter()
                # A variant's own settings (its size or iterations too) win over the command's.
                run = {"device": args.device, "seed": seed, "size": args.size, "iterations": args.iterations,
                       **settings}
                result = stylize(content, style, preset=args.preset, **run)
                seconds = time.perf_counter() - start
                m = quality.measure(c, images.to_tensor(result.convert("RGB")), s)
                rows.append({"variant": name, "content": content_path.stem, "style": style_path.stem,
                             "seed": seed, **m, "seconds": seconds})
                writer.writerow(rows[-1])
                results.flush()
                print(f"{content_path.stem} x {style_path.stem} seed {seed} {name}: "
                      + " ".join(f"{k} {v:.3f}" for k, v in m.items()) + f" ({seconds:.0f} s)", flush=True)
                if seed == args.seeds[0]:
                    row_images.append(result.convert("RGB"))
        sheet_rows.append(row_images)
        contact_sheet(sheet_rows, ["content", "style", *names]).save(args.out / "sheet.png")  # after each pair, as results.csv

    report = table([summary([r for r in rows if r["variant"] == n], n) for n in names])
    if args.against:
        report += "\n\n" + "\n".join(
            f"{n} beats {args.against} on texture at equal structure (within 0.05) in "
            f"{w} of {t} runs" for n in names if n != args.against
            for w, t in [wins(rows, n, args.against)] if t)
    print(report)
    (args.out / "table.md").write_text(report + "\n")
    results.close()
    return 0


def _pil(t: torch.Tensor) -> Image.Image:
    return Image.fromarray((t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype("uint8"))


if __name__ == "__main__":
    sys.exit(main())
