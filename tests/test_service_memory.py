"""The service's memory under a storm of uploads it must refuse: it answers each at once, keeps
none of their bodies, and goes on serving."""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from engine_process import QUICK, png, start_engine

UPLOADS = 20
OVERSIZED = 64 * 2**20  # with the token, over the body limit that --max-pixels 250000 gives (8.6 MiB)
UNAUTHENTICATED = 5 * 2**20  # within the body limit, with a wrong token
# The bound on how much the service's peak resident memory may grow during the storm. The
# bodies sent add up to 10 x 64 + 10 x 5 MiB = 690 MiB; reading any of them would show.
PEAK_GROWTH_BOUND_MIB = 32


def _upload(engine, length: int, token: str, outcome: dict) -> None:
    """Send a POST /jobs of `length` bytes as fast as the connection takes it, while reading the
    answer on the same connection; record the status and how much was sent."""
    conn = socket.create_connection((engine.host, engine.port), timeout=30)
    sent = [0]

    def send():
        try:
            conn.sendall(f"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode())
            chunk = b"A" * 2**20
            while sent[0] < length:
                conn.sendall(chunk[:length - sent[0]])
                sent[0] += min(len(chunk), length - sent[0])
        except OSError:
            pass  # the service closed the connection after answering

    sender = threading.Thread(target=send)
    sender.start()
    try:
        response = http.client.HTTPResponse(conn)
        response.begin()
        outcome["status"] = response.status
        outcome["sent when answered"] = sent[0]
    except OSError as exc:
        outcome["status"] = exc
    finally:
        sender.join(30)
        conn.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak memory from Linux's /proc")
def test_twenty_concurrent_oversized_and_unauthenticated_uploads(tmp_path, photo, second_painting):
    engine = start_engine(tmp_path, "--max-pixels", "250000")
    try:
        assert engine.request("POST", "/jobs", b"{}", token="wrong")[0] == 401  # every code path warm
        # Linux: writing 5 to clear_refs sets the peak (VmHWM) to the memory in use now.
        Path(f"/proc/{engine.process.pid}/clear_refs").write_text("5")
        before = engine.pid_status("VmRSS")

        outcomes = [{} for _ in range(UPLOADS)]
        kinds = ["oversized" if i % 2 else "unauthenticated" for i in range(UPLOADS)]
        threads = [threading.Thread(target=_upload, args=(engine, OVERSIZED, engine.token, outcomes[i]))
                   if kind == "oversized" else
                   threading.Thread(target=_upload, args=(engine, UNAUTHENTICATED, "wrong", outcomes[i]))
                   for i, kind in enumerate(kinds)]
        started = time.monotonic()
        for t in threads:
            t.start()
        health = []
        while any(t.is_alive() for t in threads):
            health.append(engine.request("GET", "/health", token=None, timeout=10)[0])
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        peak_growth = (engine.pid_status("VmHWM") - before) / 1024

        print(f"\n{UPLOADS} concurrent refused uploads ({UPLOADS // 2} x {OVERSIZED >> 20} MiB over the limit, "
              f"{UPLOADS // 2} x {UNAUTHENTICATED >> 20} MiB unauthenticated) in {elapsed:.1f} s: peak memory "
              f"grew by {peak_growth:.1f} MiB over {before / 1024:.0f} MiB; {len(health)} health requests "
              f"answered meanwhile")
        expected = {"oversized": 413, "unauthenticated": 401}
        assert [o["status"] for o in outcomes] == [expected[k] for k in kinds], outcomes
        assert health and set(health) == {200}, health
        assert peak_growth < PEAK_GROWTH_BOUND_MIB

        # And it still does its work.
        content = png(Image.open(photo).convert("RGB").resize((64, 48)))
        job = engine.submit(content, second_painting.read_bytes(), QUICK)
        assert engine.wait(job)["state"] == "done"
    finally:
        assert engine.stop() == 0
