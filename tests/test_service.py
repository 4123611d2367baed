"""`swag serve` over real HTTP: a real service process on an ephemeral port."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import math
import os
import signal
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from swag_core.cli import main

from engine_process import MAX_PIXELS, QUICK, SLOW, b64, png, rgba_content, start_engine


@pytest.fixture(scope="module")
def style(second_painting) -> bytes:
    return second_painting.read_bytes()


@pytest.fixture(scope="module")
def content(photo) -> bytes:
    return png(Image.open(photo).convert("RGB").resize((80, 60)))


def test_health_needs_no_token(engine):
    status, reply = engine.request("GET", "/health", token=None)
    assert status == 200
    assert reply["status"] == "ok" and reply["device"] == "cpu" and reply["version"]


def test_token_file_is_private(engine):
    assert (engine.workdir / "token").stat().st_mode & 0o777 == 0o600
    assert len(engine.token) >= 32


@pytest.mark.parametrize("token", [None, "wrong-token"])
@pytest.mark.parametrize("method, path", [("POST", "/jobs"), ("GET", "/jobs/0123abcd"),
                                          ("GET", "/jobs/0123abcd/result"), ("DELETE", "/jobs/0123abcd")])
def test_jobs_need_the_token(engine, content, style, method, path, token):
    body = {"content": b64(content), "style": b64(style), "options": QUICK} if method == "POST" else None
    status, reply = engine.request(method, path, body, token=token)
    assert status == 401
    assert "token" in reply["error"]


def _truncated_png(content: bytes) -> bytes:
    return content[: len(content) // 2]


def _png(width: int, height: int, depth: int, color_type: int, pixel_data: bytes) -> bytes:
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixel_data)) + chunk(b"IEND", b"")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image, with a few bytes of pixel data: refused before
    any decoding (decoding it would fail, or take gigabytes)."""
    return _png(width, height, 8, 2, b"\0" * 64)


def _noise_png(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG of random samples: about the largest file that many pixels make."""
    return _png(width, height, 16, 6, b"".join(b"\0" + os.urandom(8 * width) for _ in range(height)))


BAD_REQUESTS = {
    # name: (body built from (content, style), expected status, words of the message)
    "malformed JSON": (lambda c, s: b'{"content": "', 400, "not valid JSON"),
    "not an object": (lambda c, s: b"[1, 2]", 400, "JSON object"),
    "unknown field": (lambda c, s: {"content": b64(c), "style": b64(s), "colour": 1}, 400, "unknown field 'colour'"),
    "missing style": (lambda c, s: {"content": b64(c)}, 400, "style image is missing"),
    "bad base64": (lambda c, s: {"content": "not base64 !!", "style": b64(s)}, 400, "content is not valid base64"),
    "not an image": (lambda c, s: {"content": b64(c), "style": b64(b"just some text")}, 400,
                     "style is not an image file"),
    "damaged image": (lambda c, s: {"content": b64(_truncated_png(c)), "style": b64(s)}, 400, "content"),
    "unknown option": (lambda c, s: {"content": b64(c), "style": b64(s), "options": {"colour": 2}}, 400,
                       "unknown option 'colour'"),
    "bad option value": (lambda c, s: {"content": b64(c), "style": b64(s), "options": {"iterations": "many"}},
                         400, "iterations must be a whole number"),
    "unknown network": (lambda c, s: {"content": b64(c), "style": b64(s), "options": {"arch": "alexnet"}},
                        400, "arch must be one of"),
    "unknown preset": (lambda c, s: {"content": b64(c), "style": b64(s), "options": {"preset": "ultra"}},
                       400, "unknown preset 'ultra'"),
    "options not an object": (lambda c, s: {"content": b64(c), "style": b64(s), "options": []}, 400,
                              "options must be a JSON object"),
    "bad style weights": (lambda c, s: {"content": b64(c), "style": [b64(s), b64(s)], "style_weights": [1]},
                          400, "style_weights must be a list of numbers of 0 or more, one per style image"),
    "negative style weight": (lambda c, s: {"content": b64(c), "style": [b64(s), b64(s)], "style_weights": [1, -1]},
                              400, "style_weights must be a list of numbers of 0 or more"),
    "style weights all zero": (lambda c, s: {"content": b64(c), "style": b64(s), "style_weights": [0]},
                               400, "not all 0"),
    "NaN is not JSON": (lambda c, s: b'{"content": "", "style": "", "abandon_after": NaN}', 400,
                        "NaN is not a JSON number"),
    "JSON nested too deeply": (lambda c, s: b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    "not UTF-8": (lambda c, s: b'{"content": "\xff"}', 400, "not UTF-8"),
    "integer too large for a float option": (lambda c, s: {"content": b64(c), "style": b64(s),
                                                          "options": {"temperature": 10**400}},
                                             400, "too large"),
    "preset not a string": (lambda c, s: {"content": b64(c), "style": b64(s), "options": {"preset": [1]}},
                            400, "preset must be one of"),
    "no style image": (lambda c, s: {"content": b64(c), "style": []}, 400, "give at least one style image"),
    "style too large, content fine": (lambda c, s: {"content": b64(c), "style": b64(_png_header_only(20_000, 20_000))},
                                      413, "the style image is 20000x20000"),
    "too many pixels": (lambda c, s: {"content": b64(_png_header_only(12_000, 9_000)), "style": b64(s)}, 413,
                        "12000x9000"),
    "init too many pixels": (lambda c, s: {"content": b64(c), "style": b64(s),
                                            "init": b64(_png_header_only(12_000, 9_000))}, 413,
                             "the init image is 12000x9000"),
    "damaged init": (lambda c, s: {"content": b64(c), "style": b64(s), "init": b64(_truncated_png(c))}, 400,
                     "init is damaged or truncated"),
    "body too large": (lambda c, s: {"content": "A" * (10 * 2**20), "style": b64(s)}, 413, "at most 9 MiB"),
    **{f"abandon_after {value!r}": (lambda c, s, value=value: {"content": b64(c), "style": b64(s), "abandon_after": value},
                                    400, "abandon_after must be a number of seconds above 0")
       for value in ("soon", 0, -1.5, True)},
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_request_is_refused_with_a_clear_error(engine, content, style, name):
    build, expected, words = BAD_REQUESTS[name]
    status, reply = engine.request("POST", "/jobs", build(content, style))
    assert status == expected, reply
    assert words in reply["error"] and "\n" not in reply["error"]
    assert engine.healthy()


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/jobs/0123abcd", 404), ("GET", "/jobs/0123abcd/result", 404), ("DELETE", "/jobs/0123abcd", 404),
    ("GET", "/nothing-here", 404), ("GET", "/jobs", 405), ("DELETE", "/jobs/0123abcd/result", 405)])
def test_unknown_jobs_and_endpoints(engine, method, path, status):
    code, reply = engine.request(method, path)
    assert code == status and reply["error"]


@pytest.mark.parametrize("method, path, allow", [
    ("TRACE", "/health", "GET"), ("OPTIONS", "/jobs", "POST"), ("PUT", "/jobs/0123abcd", "GET, DELETE"),
    ("PATCH", "/jobs/0123abcd/result", "GET"), ("BREW", "/health", "GET"), ("POST", "/health", "GET")])
def test_methods_outside_the_api_get_405_with_allow_and_json(engine, method, path, allow):
    status, headers, reply = engine.exchange(method, path, b"{}", token=None)
    assert status == 405 and headers["Allow"] == allow
    assert headers["Content-Type"] == "application/json" and f"takes {allow.replace(', ', ' or ')}" in reply["error"]


def test_head_gets_405_without_a_body(engine):
    status, headers, data = engine.exchange("HEAD", "/health", token=None)
    assert status == 405 and headers["Allow"] == "GET" and data == b""


def test_a_malformed_request_gets_a_json_error(engine):
    with socket.create_connection((engine.host, engine.port), timeout=10) as conn:
        conn.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        answer = conn.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400") and b"Content-Type: application/json" in head
    assert "Bad request" in json.loads(body)["error"]


def test_health_proves_it_knows_the_token_without_sending_it(engine):
    challenge = os.urandom(16).hex()
    status, reply = engine.request("GET", f"/health?challenge={challenge}", token=None)
    expected = hmac.new(engine.token.encode(), b"swag-engine-proof:" + challenge.encode(), hashlib.sha256).hexdigest()
    assert status == 200 and reply["proof"] == expected and engine.token not in json.dumps(reply)
    for bad in ("abc", "X" * 32, challenge + "&challenge=" + challenge):
        status, reply = engine.request("GET", f"/health?challenge={bad}", token=None)
        assert status == 400 and "challenge must be" in reply["error"]


# -- weights over the API: names in --weights-dir only ------------------------------------------

def test_weights_by_name_from_the_weights_folder(engine, content, style):
    job = engine.submit(content, style, {**QUICK, "weights": "resnet50-seed5.pt"})
    assert engine.wait(job)["state"] == "done"


@pytest.mark.parametrize("weights", ["PATH", "/etc/passwd", "/no/such/file.pt", "../weights/foreign.pt",
                                     "resnet50-seed5", ".", "FIFO"])
def test_weights_paths_are_refused_alike_whether_they_exist_or_not(engine, content, style, weights, tmp_path,
                                                                   weights_dir):
    if weights == "PATH":  # a state_dict file that fits, outside the folder
        weights = str(tmp_path / "elsewhere.pt")
        (tmp_path / "elsewhere.pt").write_bytes((weights_dir / "resnet50-seed5.pt").read_bytes())
    elif weights == "FIFO":  # reading it would hang the worker
        weights = str(tmp_path / "fifo")
        os.mkfifo(weights)
    body = {"content": b64(content), "style": b64(style), "options": {**QUICK, "weights": weights}}
    status, reply = engine.request("POST", "/jobs", body)
    assert status == 400, reply
    assert reply["error"].startswith("weights must be random, imagenet or the name of a file in the engine's "
                                     "weights folder (foreign.pt, resnet50-seed5.pt, runs-code.pt), not ")


def test_weights_files_are_never_unpickled_beyond_tensors(engine, content, style, weights_dir):
    job = engine.submit(content, style, {**QUICK, "weights": "runs-code.pt"})
    reply = engine.wait(job)
    assert reply["state"] == "failed" and "cannot read weights file" in reply["error"]
    assert not (weights_dir.parent / "unpickled-marker").exists()


def test_a_fifo_as_weights_file_is_an_error_not_a_hang(tmp_path):
    from swag_core.errors import SwagError
    from swag_core.engine.weights import load_model

    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_model("resnet50", str(fifo))
        except SwagError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():  # blocked opening the FIFO: open its other end so that the thread ends
        with open(fifo, "wb"):
            pass
        pytest.fail("loading weights from a FIFO hangs")
    assert outcome and "is not a regular file" in outcome[0]


def test_without_a_weights_folder_only_random_and_imagenet(tmp_path, content, style):
    from swag_core.service.server import HTTPProblem, Service

    service = Service("token", "cpu", MAX_PIXELS)
    try:
        assert service.checked_options({"weights": "imagenet"})[1]["weights"] == "imagenet"
        with pytest.raises(HTTPProblem, match="this engine has no weights folder .*--weights-dir"):
            service.checked_options({"weights": str(tmp_path)})
    finally:
        service.jobs.close()


# -- limits -----------------------------------------------------------------------------------

def _start_upload(engine, length: int, token: str | None, sent: int) -> socket.socket:
    """A POST /jobs that declares `length` bytes of body and sends only `sent` of them."""
    conn = socket.create_connection((engine.host, engine.port), timeout=10)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    conn.sendall(f"POST /jobs HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {length}\r\n\r\n".encode())
    conn.sendall(b"A" * sent)
    return conn


def _answer(conn: socket.socket) -> tuple[int, dict, dict]:
    response = http.client.HTTPResponse(conn)
    response.begin()
    return response.status, dict(response.getheaders()), json.loads(response.read())


@pytest.mark.parametrize("case", ["unauthenticated", "too large"])
def test_a_refused_upload_is_answered_before_its_body_is_read(engine, case):
    """The client sends the headers and 64 KiB of a much longer body, then waits: the answer
    must come without the service waiting for (or reading) the rest."""
    token, length = ("wrong", 5 * 2**20) if case == "unauthenticated" else (engine.token, 50 * 2**20)
    with _start_upload(engine, length, token, 64 * 1024) as conn:
        status, headers, reply = _answer(conn)
    assert status == (401 if case == "unauthenticated" else 413), reply
    assert engine.healthy()


def test_the_body_limit_holds_content_init_and_style_of_the_largest_image(engine):
    """An animation frame's job sends three images; each of --max-pixels pixels of 16-bit RGBA
    noise, which does not compress, they still fit the body limit that --max-pixels gives."""
    side = math.isqrt(MAX_PIXELS)
    body = {name: b64(_noise_png(side, side)) for name in ("content", "init", "style")}
    status, reply = engine.request("POST", "/jobs", {**body, "options": QUICK})
    assert status == 202, reply
    assert engine.request("DELETE", f"/jobs/{reply['id']}")[0] == 200


def test_bodies_read_at_once_are_bounded_and_the_rest_get_503(engine, content, style):
    from swag_core.service.server import MAX_READS

    body = json.dumps({"content": b64(content), "style": b64(style), "options": QUICK}).encode()
    slow = [_start_upload(engine, len(body), engine.token, 100) for _ in range(MAX_READS)]
    try:
        time.sleep(0.5)  # both are being read
        status, headers, reply = engine.exchange("POST", "/jobs", body)
        assert status == 503 and headers["Retry-After"] == "1" and "try again" in reply["error"]
    finally:
        for conn in slow:
            conn.close()
    deadline = time.monotonic() + 10
    while (status := engine.exchange("POST", "/jobs", body)[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.1)  # the closed uploads free their places as soon as the service sees them end
    assert status == 202


def test_connections_are_bounded_and_the_rest_get_503(engine):
    from swag_core.service.server import MAX_CONNECTIONS

    idle = [socket.create_connection((engine.host, engine.port), timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.5)
        status, headers, reply = engine.exchange("GET", "/health", token=None)
        assert status == 503 and headers["Retry-After"] == "1" and "connections" in reply["error"]
    finally:
        for conn in idle:
            conn.close()
    deadline = time.monotonic() + 10
    while engine.exchange("GET", "/health", token=None)[0] == 503:
        assert time.monotonic() < deadline, "the service did not recover after the connections closed"
        time.sleep(0.1)


def test_queued_jobs_hold_their_files_and_their_bytes_are_bounded(monkeypatch, content, style):
    """A waiting job holds the image files as sent, not decoded images; the queue refuses a job
    whose files would take it over its byte bound (a job is always taken when none waits)."""
    from swag_core.service import jobs as jobs_module
    from swag_core.service.server import Service

    release = threading.Event()
    monkeypatch.setattr(jobs_module, "stylize", lambda *a, **k: release.wait(30) and None)
    service = Service("token", "cpu", MAX_PIXELS)
    service.jobs.max_queued_bytes = 2 * (len(content) + len(style))
    try:
        def job():
            return service.parse_job({"content": b64(content), "style": b64(style), "options": QUICK})

        first = job()
        assert first.content == content and first.styles == [style]
        service.jobs.submit(first)  # runs (and blocks) at once
        deadline = time.monotonic() + 10
        while service.jobs.get(first.id).state != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        service.jobs.submit(job())
        service.jobs.submit(job())
        with pytest.raises(jobs_module.QueueFull, match="2 jobs waiting"):
            service.jobs.submit(job())
    finally:
        release.set()
        service.jobs.close()


def test_small_job_end_to_end_keeps_size_and_alpha(engine, photo, style):
    original = rgba_content(photo, (90, 60))
    job = engine.submit(png(original), style, QUICK)
    assert engine.wait(job) == {"id": job, "state": "done", "progress": 1.0, "stage": "done", "error": None}
    status, data = engine.request("GET", f"/jobs/{job}/result")
    assert status == 200
    result = Image.open(io.BytesIO(data))
    assert result.size == (90, 60) and result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == original.getchannel("A").tobytes()
    change = np.abs(np.asarray(result.convert("RGB"), float) - np.asarray(original.convert("RGB"), float)).mean()
    assert change > 1.0, "the result is the content image: nothing was stylised"


def test_a_failing_job_is_marked_failed_and_the_service_carries_on(engine, style):
    tiny = png(Image.new("RGB", (8, 8), "red"))  # too small for ResNet-50: fails inside the job
    job = engine.submit(tiny, style, QUICK)
    reply = engine.wait(job)
    assert reply["state"] == "failed" and "too small" in reply["error"]
    status, result = engine.request("GET", f"/jobs/{job}/result")
    assert status == 409 and "too small" in result["error"]
    assert engine.healthy()


def test_cancel_queued_and_running_jobs(engine, content, style):
    running = engine.submit(content, style, SLOW)
    queued = engine.submit(content, style, QUICK)
    reply = engine.wait(running, until=("running",))
    status, result = engine.request("GET", f"/jobs/{running}/result")
    assert status == 409 and "running" in result["error"]

    assert engine.request("DELETE", f"/jobs/{queued}")[1]["state"] == "cancelled"
    deadline = time.monotonic() + 60
    while "iteration" not in reply["stage"] and time.monotonic() < deadline:  # well into the work
        reply = engine.wait(running, until=("running",))
    status, reply = engine.request("DELETE", f"/jobs/{running}")
    assert status == 200
    started = time.monotonic()
    assert engine.wait(running, timeout=30)["state"] == "cancelled"
    assert time.monotonic() - started < 10
    assert engine.request("GET", f"/jobs/{running}/result")[0] == 409
    assert engine.healthy()


def test_jobs_nobody_asks_about_are_cancelled(engine, content, style):
    """abandon_after: a queued or running job without a status request for that long is cancelled
    (its client was killed); a job whose client keeps asking runs to the end."""
    submitted = time.monotonic()
    running = engine.submit(content, style, SLOW, abandon_after=2)
    forgotten = engine.submit(content, style, QUICK, abandon_after=2)
    asked = engine.submit(content, style, QUICK, abandon_after=2)
    # Only `asked` is asked about (every 0.1 s). It starts when `running` stops, and that only
    # happens when the service cancels it: SLOW runs until then.
    engine.wait(asked, until=("running", "done"), timeout=30)
    waited = time.monotonic() - submitted
    assert 2 <= waited < 2 + 4, waited  # slack: the service looks once a second, then one iteration
    assert engine.wait(asked)["state"] == "done"
    for job in (running, forgotten):
        reply = engine.request("GET", f"/jobs/{job}")[1]
        assert reply["state"] == "cancelled", reply
        assert reply["stage"] == "cancelled: abandoned by its client (no status request for 2 s)"
    log = (engine.workdir / "stderr.txt").read_text()
    assert f"job {running}: cancelled" in log  # it ran and was stopped
    assert f"job {forgotten}:" not in log  # cancelled while it waited: it never ran


def test_jobs_run_one_at_a_time_in_submission_order(engine, photo, style):
    sizes = [(64, 48), (72, 56), (88, 64)]
    jobs = [engine.submit(png(Image.open(photo).convert("RGB").resize(s)), style, QUICK) for s in sizes]
    rank = {"queued": 0, "running": 1, "done": 2}
    deadline = time.monotonic() + 120
    while True:
        # Read the last job first: states only move forward, so reading later jobs earlier can
        # never make a correct order look wrong.
        states = {job: engine.request("GET", f"/jobs/{job}")[1]["state"] for job in reversed(jobs)}
        ranks = [rank[states[job]] for job in jobs]
        assert ranks == sorted(ranks, reverse=True), f"a later job ran first: {ranks}"
        assert ranks.count(1) <= 1, "two jobs ran at once"
        if ranks == [2, 2, 2]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for job, size in zip(jobs, sizes):
        status, data = engine.request("GET", f"/jobs/{job}/result")
        assert status == 200 and Image.open(io.BytesIO(data)).size == size


def test_deleting_a_finished_job_frees_its_result(engine, content, style):
    job = engine.submit(content, style, QUICK)
    engine.wait(job)
    assert engine.request("DELETE", f"/jobs/{job}")[0] == 200
    assert engine.request("GET", f"/jobs/{job}")[0] == 404


def test_sigterm_during_a_job_stops_cleanly(tmp_path, content, style):
    engine = start_engine(tmp_path)
    job = engine.submit(content, style, SLOW)
    engine.wait(job, until=("running",))
    started = time.monotonic()
    assert engine.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 20
    assert "stopped by SIGTERM" in engine.stdout()
    assert list(engine.tmpdir.iterdir()) == []


@pytest.mark.slow
def test_idle_timeout_exits(tmp_path):
    engine = start_engine(tmp_path, "--idle-timeout", "1")
    assert engine.process.wait(timeout=20) == 0
    assert "stopped after 1 s idle" in engine.stdout()


def test_refuses_a_non_loopback_address_without_allow_remote(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "add --allow-remote" in capsys.readouterr().err


def test_a_busy_port_is_a_clear_error(engine, tmp_path, capsys):
    argv = ["serve", "--port", str(engine.port), "--device", "cpu", "--token-file", str(tmp_path / "token")]
    assert main(argv) == 2
    assert f"port {engine.port} on 127.0.0.1 is in use by another program" in capsys.readouterr().err


def test_finished_jobs_are_bounded_by_age_count_and_bytes():
    from swag_core.service.jobs import DONE, Job, JobQueue

    queue = JobQueue(max_results=3, max_result_bytes=250, keep_seconds=60)
    now = time.monotonic()

    def finished(age: float, size: int) -> str:
        job = Job(None, None, None, None, {}, state=DONE, result=b"x" * size, finished_at=now - age)
        queue._jobs[job.id] = job
        return job.id

    try:
        too_old, first, second, third, fourth = finished(120, 1), finished(50, 100), finished(40, 100), \
            finished(30, 100), finished(20, 10)
        # 120 s is past the 60 s kept; then four are one over the count: the oldest goes.
        assert [queue.get(j) is not None for j in (too_old, first, second, third, fourth)] == \
            [False, False, True, True, True]
        big = finished(10, 200)  # one over the count again, and then 310 bytes: two more go
        assert [queue.get(j) is not None for j in (second, third, fourth, big)] == [False, False, True, True]
    finally:
        queue.close()


def test_openapi_lists_every_option():
    import json
    from pathlib import Path

    from swag_core.choices import (DEVICES, INITS, LAYER_CHOICES, LAYER_WEIGHTS, MODES, OPTIMIZERS, POOLINGS,
                                   PRECISIONS, SCALINGS, STYLE_STATS, TEMPERATURE_UNITS)
    from swag_core.engine.networks import ARCHITECTURES
    from swag_core.options import PRESETS, Options

    spec = json.loads((Path(__file__).parent.parent / "docs" / "openapi.json").read_text())
    options = spec["components"]["schemas"]["Options"]["properties"]
    assert set(options) == set(Options.names()) | {"preset"}
    choices = {"arch": ARCHITECTURES, "device": DEVICES, "preset": PRESETS, "precision": PRECISIONS,
               "smoothing": MODES, "smoothed_layers": LAYER_CHOICES, "optimizer": OPTIMIZERS, "init": INITS,
               "temperature_unit": TEMPERATURE_UNITS, "pooling": POOLINGS, "style_stats": STYLE_STATS,
               "layer_weights": LAYER_WEIGHTS, "loss_scaling": SCALINGS}
    assert {name: options[name]["enum"] for name in choices} == {name: list(c) for name, c in choices.items()}
