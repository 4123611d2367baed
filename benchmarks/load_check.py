"""Load check of the engine service: many small jobs from several clients at once, some of them
bad, some failing inside the engine, some cancelled. Every job must end done, failed or
cancelled as expected; a job with no answer, or with the wrong one, is lost (must be 0).

The engine is started the way the GIMP plug-ins start it: by the client, from a config file.

    .venv/bin/python benchmarks/load_check.py [--jobs 40] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gimp_plugin" / "swag_style_transfer"))
from swag_client import Cancelled, EngineClient, EngineError, decode_png, encode_png  # noqa: E402

QUICK = {"arch": "resnet50", "size": 64, "iterations": 3, "device": "cpu"}
# Each group of six jobs: three good ones, a bad option (400), a content image too small for the
# network (fails inside the engine) and one cancelled while it runs.
PLAN = ["good", "bad", "good", "too_small", "good", "cancel"]
EXPECTED = {"good": "done", "bad": "failed", "too_small": "failed", "cancel": "cancelled"}


def _content(photo: Image.Image, i: int) -> Image.Image:
    size = (64 + 8 * (i % 5), 64 + 8 * (i % 3))
    image = photo.resize(size)
    image.putalpha(Image.linear_gradient("L").rotate(90 * (i % 4)).resize(size))
    return image


def _png(image: Image.Image) -> bytes:
    return encode_png(image.width, image.height, len(image.getbands()), 8, image.tobytes())


def run_job(client: EngineClient, kind: str, i: int, photo: Image.Image, style: bytes) -> str:
    """The outcome: done, failed, cancelled, or wrong: ... when the answer is not the right one."""
    content = _content(photo, i)
    options = dict(QUICK)
    if kind == "bad":
        options["smoothing"] = "sideways"
    elif kind == "too_small":
        content = content.resize((8, 8))
    elif kind == "cancel":
        options["iterations"] = 100_000
    stages = []

    def should_cancel():  # a cancel job is cancelled as soon as it runs
        return kind == "cancel" and any(stage != "waiting for the engine" for stage in stages)

    try:
        png = client.stylize(_png(content), style, options, lambda f, stage: stages.append(stage), should_cancel)
        result = decode_png(png)
    except Cancelled:
        return "cancelled"
    except EngineError as exc:
        return "failed" if kind in ("bad", "too_small") else f"wrong: {exc}"
    width, height, _, _, raw = result
    if (width, height) != content.size or raw[3::4] != content.tobytes()[3::4]:
        return "wrong: the result does not match its content image"
    return "done"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    photo = Image.open(ROOT / "tests" / "data" / "coffee.jpg").convert("RGB")
    style = (ROOT / "tests" / "data" / "graffiti.jpg").read_bytes()

    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        config = {"engine_python": sys.executable, "engine_url": f"http://127.0.0.1:{port}",
                  "token_file": f"{folder}/token", "device": "cpu", "log_file": f"{folder}/engine.log"}
        Path(folder, "swag_engine.json").write_text(json.dumps(config))
        starter = EngineClient.from_config(folder)
        started = time.monotonic()
        starter.ensure_running()
        print(f"engine started in {time.monotonic() - started:.1f} s")

        todo: queue.Queue = queue.Queue()
        for i in range(args.jobs):
            todo.put((i, PLAN[i % len(PLAN)]))
        outcomes: dict[int, tuple[str, str]] = {}

        def client_thread():
            client = EngineClient.from_config(folder)
            while True:
                try:
                    i, kind = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcomes[i] = (kind, run_job(client, kind, i, photo, style))
                except Exception as exc:  # anything else is a lost job, reported below
                    outcomes[i] = (kind, f"wrong: {exc.__class__.__name__}: {exc}")

        started = time.monotonic()
        threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, 60 + 20 * args.jobs - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        starter.process.send_signal(signal.SIGTERM)
        engine_status = starter.process.wait(60)

    counts = {"done": 0, "failed": 0, "cancelled": 0}
    lost = []
    for i in range(args.jobs):
        kind, outcome = outcomes.get(i, (PLAN[i % len(PLAN)], "wrong: no answer"))
        if outcome == EXPECTED[kind]:
            counts[outcome] += 1
        else:
            lost.append(f"job {i} ({kind}): {outcome}")
    print(f"{args.jobs} jobs from {args.clients} clients in {elapsed:.1f} s "
          f"({args.jobs / elapsed * 60:.0f} jobs/min); engine exit status {engine_status}")
    print(f"done {counts['done']}, failed {counts['failed']}, cancelled {counts['cancelled']}, lost {len(lost)}")
    for line in lost:
        print(f"  lost: {line}")
    return 0 if not lost and engine_status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
