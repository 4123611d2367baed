"""A real `swag serve` in a subprocess on an ephemeral port, for the service and client tests."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image

# Small and quick: ResNet-50 with random weights, a 64 px working size, a few iterations.
QUICK = {"arch": "resnet50", "size": 64, "iterations": 3, "device": "cpu"}
SLOW = {**QUICK, "iterations": 100_000}  # runs until it is cancelled
# The shared test engine's --max-pixels: 500x500, for which the body limit is 8.6 MiB, so that a
# test body over it is small.
MAX_PIXELS = 250_000
# Test engines compute on one thread: the tests share two cores with the test process (and with
# each other), and torch's threads, spinning while they wait for a busy core, made a tiny job
# take 10 times longer there.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
# Importing torchvision creates torch's per-user compile cache folder, by default in the temp
# folder (torchinductor_USER), shared by every torch program and kept on purpose. Tests point it
# elsewhere, so that "nothing left in the temp folder" checks the engine's own files.
TORCH_CACHE = "torch-cache"


class Engine:
    def __init__(self, process: subprocess.Popen, url: str, workdir: Path):
        self.process, self.url, self.workdir = process, url, workdir
        self.token = (workdir / "token").read_text().strip()
        self.tmpdir = workdir / "tmp"
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port

    def request(self, method: str, path: str, body=None, token: str | None = "", timeout: float = 60):
        """(status, parsed JSON or raw bytes). token "" means the engine's own, None no header."""
        status, _, reply = self.exchange(method, path, body, token, timeout)
        return status, reply

    def exchange(self, method: str, path: str, body=None, token: str | None = "", timeout: float = 60):
        """(status, headers, parsed JSON or raw bytes), as `request`."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.getheader("Content-Type") == "application/json" and data:
            return response.status, response.headers, json.loads(data)
        return response.status, response.headers, data

    def pid_status(self, field: str) -> int:
        """A memory figure of the engine process from /proc (Linux), in KiB: VmRSS, VmHWM..."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def healthy(self) -> bool:
        status, reply = self.request("GET", "/health", token=None)
        return status == 200 and reply["status"] == "ok"

    def submit(self, content: bytes, style: bytes, options: dict, **fields) -> str:
        body = {"content": b64(content), "style": b64(style), "options": options, **fields}
        status, reply = self.request("POST", "/jobs", body)
        assert status == 202, reply
        return reply["id"]

    def wait(self, job_id: str, until=("done", "failed", "cancelled"), timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, reply = self.request("GET", f"/jobs/{job_id}")
            assert status == 200, reply
            if reply["state"] in until:
                return reply
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {until} in {timeout} s: {reply}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def stdout(self) -> str:
        return (self.workdir / "stdout.txt").read_text()


def start_engine(workdir: Path, *args: str) -> Engine:
    """`swag serve --port 0 ...` with its temp folder in workdir/tmp; returns once it is ready."""
    (workdir / "tmp").mkdir(parents=True)
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWAG_ENGINE")}
    env["TMPDIR"] = str(workdir / "tmp")
    env["TORCHINDUCTOR_CACHE_DIR"] = str(workdir / TORCH_CACHE)
    env.update(ONE_THREAD)
    command = [sys.executable, "-m", "swag_core", "serve", "--port", "0", "--device", "cpu",
               "--token-file", str(workdir / "token"), *args]
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = out.read_text()
        if "ready on " in text:
            return Engine(process, text.split("ready on ", 1)[1].split()[0], workdir)
        if process.poll() is not None:
            raise RuntimeError(f"swag serve exited with {process.returncode}: {err.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("swag serve did not get ready in 120 s")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def rgba_content(path: Path, size: tuple[int, int]) -> Image.Image:
    """A real photo at `size` with an alpha channel holding a ramp of every value 0..255."""
    image = Image.open(path).convert("RGB").resize(size)
    ramp = Image.linear_gradient("L").resize(size)
    image.putalpha(ramp)
    return image
