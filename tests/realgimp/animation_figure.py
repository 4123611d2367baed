#!/usr/bin/env python3
"""The animation figure and figures of docs/batch.md, made by the real GIMP 3 (chroot.py) with
the batch script, from frames made of the bundled photo swag_core/data/cat.jpg:

    python tests/realgimp/animation_figure.py          # as root; about 15 minutes on two CPU cores
    python tests/realgimp/animation_figure.py --study  # the engine alone; about 12 minutes

Two clips, 120 ms a frame:
- "light": eight frames, 160x120 px, of a still shot across which a band of light sweeps; written
  to docs/figures/animation-frames.gif, the frames the project ships;
- "pan": five frames, 128x96 px, of a camera panning 12 px a frame (made here, not shipped).

gimp_plugin/batch/stylize_folder.py stylises them with the bundled painting
swag_core/data/starry_night.jpg, preset fast, animation=True, in one GIMP run: each clip as an
animation (each frame starts from half of the previous frame's stylisation carried onto it), and
each of its frames as a one-frame GIF of its own, so that both go through the same GIF export.
docs/figures/animation.gif shows the light clip before and after, side by side.

It prints how much the result changes from one frame to the next (mean absolute difference,
0..255): for the light clip, the whole frame; for the pan, each frame against the one before
shifted by the pan, so that a result that moves with the picture changes little. And, for the
light clip, how far the last frame's result is from the last frame, against how far the first
one's is from the first: paint that thickened from frame to frame would show there.

--study compares what an animation frame could start from, with the engine directly (the options
the filter sends for the fast preset), on six frames of the light clip at 128x96: the frame
itself; the previous frame's result; the frame plus what stylising changed in the previous frame;
the frame plus half of that (what the filter does, swag_pixels.carried).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageSequence, ImageStat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]
import chroot  # noqa: E402
from engine_process import start_engine  # noqa: E402

DELAY, STEP = 120, 12
OPTIONS = "preset='fast'"
FIGURES = ROOT / "docs" / "figures"


def photo(size) -> Image.Image:
    return Image.open(ROOT / "swag_core" / "data" / "cat.jpg").convert("RGB").resize(size, Image.LANCZOS)


def light_clip() -> list[Image.Image]:
    still = np.asarray(photo((214, 142)).crop((27, 11, 187, 131)), dtype=np.float32)  # 160x120
    x = np.arange(still.shape[1], dtype=np.float32)
    frames = []
    for k in range(8):
        gain = 0.7 + 0.6 * np.exp(-((x - (-20 + 28 * k)) / 28) ** 2)  # a band of light, left to right
        frames.append(Image.fromarray(np.clip(still * gain[None, :, None], 0, 255).round().astype(np.uint8)))
    return frames


def pan_clip() -> list[Image.Image]:
    wide = photo((192, 128))
    return [wide.crop((k * STEP, 16, k * STEP + 128, 112)) for k in range(5)]


def save_gif(frames: list[Image.Image], path: Path) -> None:
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=DELAY, loop=0, optimize=False)


def gif_frames(path: Path) -> list[Image.Image]:
    return [frame.convert("RGB") for frame in ImageSequence.Iterator(Image.open(path))]


def change(frames: list[Image.Image], shift: int = 0) -> float:
    """Mean absolute difference between each frame and the previous one moved left by `shift`."""
    width, height = frames[0].size
    diffs = [sum(ImageStat.Stat(ImageChops.difference(frame.crop((0, 0, width - shift, height)),
                                                      previous.crop((shift, 0, width, height)))).mean) / 3
             for previous, frame in zip(frames, frames[1:])]
    return sum(diffs) / len(diffs)


def distance(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def install(gimp_config: Path, home: Path, url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--plugin-dir",
                    str(gimp_config / "plug-ins"), "--python", sys.executable, "--engine-url", url, "--gimp", "3"],
                   check=True, capture_output=True, env=env)


def stylise(clips: dict) -> dict:
    """{clip: (the animation's frames, the frames stylised each on its own)}."""
    root = chroot.ensure_chroot()
    with tempfile.TemporaryDirectory(prefix="swag-animation-") as tmp:
        tmp = Path(tmp)
        io = tmp / "io"
        (io / "in").mkdir(parents=True)
        io.chmod(0o755)
        shutil.copytree(ROOT / "gimp_plugin" / "batch", io / "batch")
        shutil.copy(ROOT / "swag_core" / "data" / "starry_night.jpg", io / "style.jpg")
        for name, frames in clips.items():
            save_gif(frames, io / "in" / f"{name}.gif")
            for k, frame in enumerate(frames):
                frame.save(io / "in" / f"{name}-frame{k}.gif")
        engine = start_engine(tmp / "engine", "--idle-timeout", "0")
        try:
            install(tmp / "gimpcfg", tmp / "home", engine.url)
            code = ("import sys; sys.path.insert(0, '/io/batch'); import stylize_folder\n"
                    "stylize_folder.run('/io/in', '/io/style.jpg', '/io/out', %s, animation=True)\n" % OPTIONS)
            result = chroot.run_gimp_batch(root, code, io, tmp / "gimpcfg", timeout=7200,
                                           env={"SWAG_ENGINE_URL": engine.url, "SWAG_ENGINE_TOKEN": engine.token})
        finally:
            engine.stop()
        print(result.stdout, end="")
        if result.returncode != 0:
            raise SystemExit(result.stderr[-3000:])
        return {name: (gif_frames(io / "out" / f"{name}.gif"),
                       [gif_frames(io / "out" / f"{name}-frame{k}.gif")[0] for k in range(len(frames))])
                for name, frames in clips.items()}


def study() -> None:
    from swag_core import stylize

    style = Image.open(ROOT / "swag_core" / "data" / "starry_night.jpg")
    frames = [frame.resize((128, 96), Image.LANCZOS) for frame in light_clip()[:6]]

    def as_array(image):
        return np.asarray(image, dtype=np.float32)

    starts = {
        "the frame itself": None,
        "the previous result": lambda frame, previous, result: result,
        "the frame + the previous change": lambda frame, previous, result: frame + (result - previous),
        "the frame + half the previous change": lambda frame, previous, result: frame + (result - previous) / 2,
    }
    for name, start in starts.items():
        results = []
        for k, frame in enumerate(frames):
            init = None
            if start is not None and k:
                pixels = start(as_array(frame), as_array(frames[k - 1]), as_array(results[-1]))
                init = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
            results.append(stylize(frame, style, preset="fast", arch="vgg19", smoothing="softmax", strength=1.0,
                                   preserve_colors=False, seed=0, device="auto", init_image=init))
        distances = " ".join(f"{distance(r, f):.1f}" for r, f in zip(results, frames))
        print(f"{name}: frame-to-frame change {change(results):.1f}; distance from the frame, frame by frame: "
              f"{distances}", flush=True)


def main() -> int:
    if sys.argv[1:] == ["--study"]:
        study()
        return 0
    clips = {"light": light_clip(), "pan": pan_clip()}
    save_gif(clips["light"], FIGURES / "animation-frames.gif")
    results = stylise(clips)
    before, (after, _) = clips["light"], results["light"]
    width, height = before[0].size
    pairs = []
    for frame, stylised in zip(before, after):
        pair = Image.new("RGB", (2 * width + 8, height), "white")
        pair.paste(frame, (0, 0))
        pair.paste(stylised, (width + 8, 0))
        pairs.append(pair)
    save_gif(pairs, FIGURES / "animation.gif")
    for name, shift in (("light", 0), ("pan", STEP)):
        animation, alone = results[name]
        print(f"{name}: frame-to-frame change (0..255{', along the pan' if shift else ''}): the frames "
              f"{change(clips[name], shift):.1f}, the animation {change(animation, shift):.1f}, each frame on its "
              f"own {change(alone, shift):.1f}")
    animation, alone = results["light"]
    first, last = before[0], before[-1]
    print(f"light: distance of the result from its frame (0..255), first frame / last frame: the animation "
          f"{distance(animation[0], first):.1f} / {distance(animation[-1], last):.1f}, each frame on its own "
          f"{distance(alone[0], first):.1f} / {distance(alone[-1], last):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
