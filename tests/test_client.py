"""The GIMP plug-ins' engine client (gimp_plugin/swag_style_transfer/swag_client.py), against a
real `swag serve` that the client starts itself, and under the old Pythons it must run on."""

from __future__ import annotations

import ast
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine_process import ONE_THREAD, QUICK, SLOW, rgba_content

CLIENT_DIR = Path(__file__).resolve().parent.parent / "gimp_plugin" / "swag_style_transfer"
CLIENT_FILE = CLIENT_DIR / "swag_client.py"
sys.path.insert(0, str(CLIENT_DIR))
from swag_client import Cancelled, EngineClient, EngineError, decode_png, encode_png  # noqa: E402

STDLIB_IMPORTS = {"__future__", "base64", "binascii", "hashlib", "hmac", "json", "os", "socket", "struct", "subprocess", "sys", "time", "zlib",
                  "http.client", "urllib.error", "urllib.parse", "urllib.request", "httplib", "urllib2", "urlparse"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(folder: Path, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"engine_python": sys.executable, "engine_url": f"http://127.0.0.1:{_free_port()}",
              "token_file": str(folder / "token"), "device": "cpu", "log_file": str(folder / "engine.log")}
    config.update(overrides)
    (folder / "swag_engine.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(autouse=True)
def no_engine_environment(monkeypatch):
    monkeypatch.delenv("SWAG_ENGINE_URL", raising=False)
    monkeypatch.delenv("SWAG_ENGINE_TOKEN", raising=False)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    return _write_config(tmp_path_factory.mktemp("plugin"))


@pytest.fixture(scope="module")
def started(plugin_dir):
    """The engine, started by the client from the config file; (client, progress texts)."""
    client = EngineClient.from_config(str(plugin_dir))
    texts = []
    with pytest.MonkeyPatch.context() as env:  # the engine inherits the environment
        for name, value in ONE_THREAD.items():
            env.setenv(name, value)
        client.ensure_running(lambda fraction, text: texts.append(text))
    yield client, texts
    client.process.send_signal(signal.SIGTERM)
    assert client.process.wait(30) == 0


@pytest.fixture(scope="module")
def style(second_painting) -> bytes:
    return second_painting.read_bytes()


def _raw(image: Image.Image) -> tuple[int, int, int, int, bytes]:
    return image.width, image.height, len(image.getbands()), 8, image.tobytes()


# -- runs on Python 2.7 and 3.6 ------------------------------------------------------------

def test_source_uses_no_syntax_newer_than_python_3_6_or_2_7():
    tree = ast.parse(CLIENT_FILE.read_text())
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        assert not isinstance(node, (ast.JoinedStr, ast.AnnAssign, ast.Nonlocal, ast.AsyncFunctionDef,
                                     ast.Await, ast.YieldFrom, ast.NamedExpr)), f"{type(node).__name__} at {where}"
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and not node.args.kwonlyargs and not node.args.posonlyargs, where
            assert all(a.annotation is None for a in node.args.args), where
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= STDLIB_IMPORTS, where
        if isinstance(node, ast.ImportFrom):
            assert node.module in STDLIB_IMPORTS, where


def _old_pythons():
    found = []
    for version in ("2.7", "3.6"):
        candidates = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
        candidates += [Path(p) for p in (f"/usr/bin/python{version}",) if Path(p).exists()]
        found.append(pytest.param(candidates[0] if candidates else None, id=f"python{version}"))
    return found


OLD_PYTHON_SCRIPT = r"""
import sys
import swag_client
width, height = 72, 48
raw = bytearray()
for y in range(height):
    for x in range(width):
        raw += bytearray([x * 3 % 256, y * 5 % 256, (x + y) % 256, (x * 7 + y * 11) % 256])
png = swag_client.encode_png(width, height, 4, 8, bytes(raw))
client = swag_client.EngineClient.from_config(sys.argv[1])
style = open(sys.argv[2], "rb").read()
options = {"arch": "resnet50", "size": 64, "iterations": 3, "device": "cpu"}
w, h, channels, bits, out = swag_client.decode_png(client.stylize(png, style, options))
print("%d %d %d %d %s %s" % (w, h, channels, bits, out[3::4] == bytes(raw)[3::4], out != bytes(raw)))
"""


@pytest.mark.parametrize("python", _old_pythons())
def test_client_runs_unchanged_on_old_python(python, started, plugin_dir, second_painting):
    if python is None:
        pytest.skip("this interpreter is not installed here")
    # A proxy that nothing listens on: the client must not use it for the engine on 127.0.0.1.
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR), "http_proxy": f"http://127.0.0.1:{_free_port()}"}
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    done = subprocess.run([str(python), "-c", OLD_PYTHON_SCRIPT, str(plugin_dir), str(second_painting)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["72", "48", "4", "8", "True", "True"]


# -- PNG -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_round_trip(channels, bits):
    raw = np.random.default_rng(channels * bits).integers(0, 256, 13 * 7 * channels * bits // 8, np.uint8).tobytes()
    assert decode_png(encode_png(13, 7, channels, bits, raw)) == (13, 7, channels, bits, raw)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_encoded_png_reads_in_pil(photo, mode):
    image = Image.open(photo).convert(mode).resize((37, 23))
    decoded = Image.open(io.BytesIO(encode_png(*_raw(image))))
    assert decoded.mode == mode and decoded.tobytes() == image.tobytes()


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_decodes_pngs_written_by_pil(photo, mode):
    base = Image.open(photo).convert("RGBA").resize((41, 29))
    if mode == "I;16":  # 16-bit gray, the one 16-bit mode PIL writes
        image = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
        expected = np.asarray(image).astype(">u2").tobytes()
    else:
        image = base.convert(mode)
        expected = image.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    width, height, channels, bits, raw = decode_png(buffer.getvalue())
    assert (width, height, bits) == (41, 29, 16 if mode == "I;16" else 8) and raw == expected


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_the_service_writes_results_as_the_client_encodes_them(photo, mode):
    """The service's PNG writer and the client's (docs/architecture.md, "The wire format"): the
    same pixels give the same bytes."""
    from swag_core.service.wire import png_bytes

    base = Image.open(photo).convert("RGBA").resize((41, 29))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)
        raw, channels, bits = np.asarray(image).astype(">u2").tobytes(), 1, 16
    else:
        image = base.convert(mode)
        raw, channels, bits = image.tobytes(), len(mode), 8
    assert png_bytes(image) == encode_png(41, 29, channels, bits, raw)


def _filtered_png(pixels: np.ndarray, bits: int) -> bytes:
    """A PNG whose row y uses filter type y % 5, written here with numpy from the PNG
    specification (section 9.2), independently of the decoder under test."""
    height, width, channels = pixels.shape
    raw = pixels.astype(">u2" if bits == 16 else np.uint8).reshape(height, -1).view(np.uint8).astype(np.int32)
    step = channels * bits // 8
    rows = []
    for y in range(height):
        x = raw[y]
        up = raw[y - 1] if y else np.zeros_like(x)
        left = np.concatenate([np.zeros(step, np.int32), x[:-step]])
        up_left = np.concatenate([np.zeros(step, np.int32), up[:-step]])
        p = left + up - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        predictor = [np.zeros_like(x), left, up, (left + up) // 2, paeth][y % 5]
        rows.append(bytes([y % 5]) + ((x - predictor) % 256).astype(np.uint8).tobytes())
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    png = bytearray(encode_png(1, 1, channels, bits, bytes(step)))
    return _replace_image_data(bytes(png), width, height, zlib.compress(b"".join(rows)), colour, bits)


def _replace_image_data(png: bytes, width, height, data, colour, bits, interlace=0) -> bytes:
    import struct

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    header = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, interlace)
    return png[:8] + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_decodes_all_five_filter_types(photo, channels, bits):
    photo_pixels = np.asarray(Image.open(photo).convert("RGBA").resize((19, 15)), np.int64)
    pixels = photo_pixels[..., :channels] * (257 if bits == 16 else 1) + (np.arange(19)[None, :, None] if bits == 16 else 0)
    width, height, got_channels, got_bits, raw = decode_png(_filtered_png(pixels, bits))
    expected = pixels.astype(">u2" if bits == 16 else np.uint8).tobytes()
    assert (width, height, got_channels, got_bits) == (19, 15, channels, bits) and raw == expected


def test_decode_refuses_what_it_does_not_read():
    png = encode_png(2, 2, 3, 8, bytes(12))
    with pytest.raises(EngineError, match="interlaced PNG is not supported"):
        decode_png(_replace_image_data(png, 2, 2, zlib.compress(bytes(14)), 2, 8, interlace=1))
    with pytest.raises(EngineError, match="colour type 3"):
        decode_png(_replace_image_data(png, 2, 2, zlib.compress(bytes(6)), 3, 8))
    with pytest.raises(EngineError, match="not a PNG"):
        decode_png(b"GIF89a....")
    with pytest.raises(EngineError, match="truncated"):
        decode_png(_replace_image_data(png, 2, 2, zlib.compress(bytes(5)), 2, 8))


# -- configuration and starting the engine ---------------------------------------------------

def test_no_config_means_no_engine_is_configured(tmp_path):
    with pytest.raises(EngineError, match="no engine is configured for this GIMP .*run python3 installer/install.py"):
        EngineClient.from_config(str(tmp_path))


def test_environment_overrides_the_config(tmp_path, monkeypatch):
    _write_config(tmp_path, engine_url="http://127.0.0.1:1")
    monkeypatch.setenv("SWAG_ENGINE_URL", "http://127.0.0.1:2/")
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", "from-the-environment")
    client = EngineClient.from_config(str(tmp_path))
    assert client.url == "http://127.0.0.1:2" and client._token() == "from-the-environment"


def test_a_relative_token_file_is_beside_the_config(tmp_path):
    """The installer's copy of the token for a GIMP in a sandbox, whatever path the sandbox
    gives the plug-in's folder."""
    (tmp_path / "engine-token").write_text("the-copy\n")
    client = EngineClient.from_config(str(_write_config(tmp_path, token_file="engine-token")))
    assert client.token_file == str(tmp_path / "engine-token") and client._token() == "the-copy"


def test_an_unreadable_token_file_says_to_rerun_the_installer(tmp_path):
    client = EngineClient.from_config(str(_write_config(tmp_path, token_file=str(tmp_path / "missing"))))
    with pytest.raises(EngineError, match="cannot read the engine's token file .*missing .*installer/install.py "
                                          "again .*a copy GIMP can read"):
        client._token()


def test_python_not_visible_from_gimp_says_to_start_the_engine_outside(tmp_path):
    """A Flatpak or Snap GIMP does not see the engine's Python: installing again fixes nothing."""
    python = tmp_path / "not-in-this-sandbox" / "python"
    config = _write_config(tmp_path, engine_python=str(python))
    port = json.loads((config / "swag_engine.json").read_text())["engine_url"].rsplit(":", 1)[1]
    with pytest.raises(EngineError) as error:
        EngineClient.from_config(str(config)).ensure_running()
    message = str(error.value)
    assert f"its Python {python} is not visible from GIMP (a Flatpak or Snap GIMP runs in a sandbox)" in message
    assert f"start the engine outside GIMP with `{python} -m swag_core serve --idle-timeout 0 --port {port}`" \
        in message and "docs/install.md" in message and "\n" not in message


def test_an_engine_url_without_an_engine_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAG_ENGINE_URL", "http://127.0.0.1:8765")
    with pytest.raises(EngineError, match=r"no engine answers at http://127.0.0.1:8765 and none is configured for "
                                          r"GIMP to start: start one with `swag serve --idle-timeout 0`"):
        EngineClient.from_config(str(tmp_path)).ensure_running()


def test_a_remote_engine_that_does_not_answer(tmp_path):
    client = EngineClient("http://192.0.2.1:8765", token="x", engine_python=sys.executable)
    client.health = lambda: None  # nothing answers (without a network timeout in the test)
    with pytest.raises(EngineError, match=r"the engine at http://192.0.2.1:8765 does not answer: start it on that "
                                          r"machine"):
        client.ensure_running()
    assert client.process is None  # an engine on another machine is not started here


def test_port_taken_by_another_program(tmp_path):
    other = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = other.server_address[1]
        client = EngineClient.from_config(str(_write_config(tmp_path, engine_url=f"http://127.0.0.1:{port}")))
        with pytest.raises(EngineError, match="in use by another program .*HTTP 404"):
            client.ensure_running()
    finally:
        other.shutdown()
        other.server_close()


def test_engine_that_cannot_start_shows_its_log(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    client = EngineClient.from_config(str(_write_config(tmp_path, token_file=str(blocker / "token"))))
    with pytest.raises(EngineError) as error:
        client.ensure_running()
    message = str(error.value)
    assert "exited while starting (status 2)" in message and "cannot create the token file" in message
    assert str(tmp_path / "engine.log") in message and "\n" not in message


# -- jobs --------------------------------------------------------------------------------------

def test_starts_the_engine_and_stylises(started, photo, style):
    client, texts = started
    assert client.process is not None and "starting engine" in texts
    content = rgba_content(photo, (80, 56))
    result = client.stylize(encode_png(*_raw(content)), style, QUICK)
    width, height, channels, bits, raw = decode_png(result)
    assert (width, height, channels, bits) == (80, 56, 4, 8)
    assert raw[3::4] == content.tobytes()[3::4]


def test_several_clients_at_once_get_their_own_results(started, plugin_dir, photo, style):
    sizes = [(64, 48), (72, 64), (96, 72)]
    contents = [rgba_content(photo, size).rotate(90 * i, expand=False) for i, size in enumerate(sizes)]
    results = [None] * len(sizes)

    def run(i):
        client = EngineClient.from_config(str(plugin_dir))
        try:
            results[i] = decode_png(client.stylize(encode_png(*_raw(contents[i])), style, QUICK))
        except Exception as exc:  # reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    for content, result in zip(contents, results):
        assert isinstance(result, tuple), result
        assert result[:2] == content.size and result[4][3::4] == content.tobytes()[3::4]


def test_cancel_from_the_plugin(started, photo, style, plugin_dir):
    client, _ = started
    seen = []  # (fraction, text); a job that runs until cancelled shows its iterations for sure
    with pytest.raises(Cancelled):
        client.stylize(encode_png(*_raw(rgba_content(photo, (64, 64)))), style, SLOW,
                       progress=lambda f, text: seen.append((f, text)),
                       should_cancel=lambda: any("iteration" in text for _, text in seen))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    assert client.health()["status"] == "ok"
    deadline = time.monotonic() + 30  # the worker stops within one iteration of the DELETE
    while "cancelled" not in (plugin_dir / "engine.log").read_text().splitlines()[-1]:
        assert time.monotonic() < deadline, "the engine did not cancel the job"
        time.sleep(0.1)


KILLED_PLUGIN_SCRIPT = r"""
import json, sys
import swag_client
swag_client.ABANDON_AFTER = 2  # shorter than the plug-in's, for a quick test
client = swag_client.EngineClient.from_config(sys.argv[1])
poll = client.poll

def poll_and_tell(job_id):  # the test learns the job's id and stage from these lines
    status = poll(job_id)
    print(json.dumps(status))
    sys.stdout.flush()
    return status

client.poll = poll_and_tell
with open(sys.argv[2], "rb") as content, open(sys.argv[3], "rb") as style:
    client.stylize(content.read(), style.read(), json.loads(sys.argv[4]))
"""


def test_a_killed_plugins_job_is_cancelled(started, plugin_dir, photo, second_painting, tmp_path):
    """What GIMP does when the user cancels the progress: it kills the plug-in (SIGKILL), which
    cannot tell the engine. The engine must stop the job when its polls stop."""
    client, _ = started
    content = tmp_path / "content.png"
    content.write_bytes(encode_png(*_raw(rgba_content(photo, (64, 64)))))
    plugin = subprocess.Popen([sys.executable, "-c", KILLED_PLUGIN_SCRIPT, str(plugin_dir), str(content),
                               str(second_painting), json.dumps(SLOW)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(CLIENT_DIR)})
    try:
        for line in plugin.stdout:
            status = json.loads(line)
            if "iteration" in status["stage"]:
                break
        else:
            pytest.fail("the client ended before its job ran: " + plugin.stderr.read()[-2000:])
    finally:
        plugin.kill()
        plugin.wait()
    killed = time.monotonic()
    log = plugin_dir / "engine.log"
    while f"job {status['id']}: cancelled" not in log.read_text():
        assert time.monotonic() - killed < 2 + 4, "the engine did not cancel the job of the killed plug-in"
        time.sleep(0.1)
    assert time.monotonic() - killed > 1, "cancelled before 2 s without a poll"
    reply = client.poll(status["id"])
    assert reply["state"] == "cancelled" and "abandoned by its client" in reply["stage"]


def test_failed_job_is_a_clear_error(started, style):
    client, _ = started
    with pytest.raises(EngineError, match="too small for resnet50"):
        client.stylize(encode_png(8, 8, 3, 8, bytes(192)), style, QUICK)
    with pytest.raises(EngineError, match="unknown option 'colour'"):
        client.stylize(encode_png(64, 64, 3, 8, bytes(64 * 64 * 3)), style, {"colour": 1})


def test_wrong_token_is_a_clear_error(started, plugin_dir, monkeypatch, style):
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", "not-the-token")
    client = EngineClient.from_config(str(plugin_dir))
    with pytest.raises(EngineError, match=r"does not know your engine token \(SWAG_ENGINE_TOKEN\)"):
        client.stylize(encode_png(64, 64, 3, 8, bytes(64 * 64 * 3)), style, QUICK)


@pytest.mark.slow
def test_engine_killed_mid_job_with_two_clients_waiting(tmp_path, monkeypatch, photo, style):
    """SIGKILL while one client's job runs and another's waits: both get a clear error, the next
    job starts a fresh engine, and the engine leaves nothing in its temp folder."""
    folder = _write_config(tmp_path / "plugin")
    engine_tmp = tmp_path / "engine-tmp"
    engine_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(engine_tmp))  # the engines the clients start inherit it
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "torch-cache"))  # see engine_process.TORCH_CACHE
    for name, value in ONE_THREAD.items():
        monkeypatch.setenv(name, value)
    starter = EngineClient.from_config(str(folder))
    starter.ensure_running()
    killed = starter.process
    content = encode_png(*_raw(rgba_content(photo, (64, 64))))
    stages = {"running": [], "queued": []}
    outcomes = {}

    def run(name, options):
        try:
            EngineClient.from_config(str(folder)).stylize(content, style, options,
                                                          progress=lambda f, text: stages[name].append(text))
        except Exception as exc:  # checked below
            outcomes[name] = exc

    def wait_for(name, text):
        deadline = time.monotonic() + 60
        while not any(text in stage for stage in stages[name]):
            assert time.monotonic() < deadline, f"the {name} job never showed {text!r}: {stages[name]}"
            time.sleep(0.05)

    threads = {"running": threading.Thread(target=run, args=("running", SLOW)),
               "queued": threading.Thread(target=run, args=("queued", QUICK))}
    threads["running"].start()
    wait_for("running", "iteration")
    threads["queued"].start()
    wait_for("queued", "waiting for the engine")
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    for thread in threads.values():
        thread.join(30)
        assert not thread.is_alive(), "a client hangs when the engine dies"
    for name in threads:
        assert isinstance(outcomes.get(name), EngineError), outcomes
        assert "the engine stopped answering" in str(outcomes[name]) and "\n" not in str(outcomes[name])

    client = EngineClient.from_config(str(folder))
    width, height, _, _, _ = decode_png(client.stylize(content, style, QUICK))
    try:
        assert (width, height) == (64, 64)
        assert client.process is not None and client.process.pid != killed.pid
    finally:
        client.process.send_signal(signal.SIGTERM)
        assert client.process.wait(30) == 0
    assert list(engine_tmp.iterdir()) == []


# -- proxies and the port ------------------------------------------------------------------------

class _Listener:
    """A TCP listener that records what each connection sends and answers 502: a stand-in for an
    HTTP proxy, which sees the whole request, token and image included."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.seen = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.fixture
def proxy(monkeypatch):
    listener = _Listener()
    monkeypatch.setenv("http_proxy", listener.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    # urllib's urlopen builds its default opener, which reads the proxy settings, once per
    # process, and a plug-in starts with them already set: forget it, so that this process is
    # like a fresh plug-in for any client code that uses urlopen.
    monkeypatch.setattr(urllib.request, "_opener", None)
    yield listener
    listener.close()


def test_an_engine_on_this_computer_is_never_reached_through_a_proxy(started, plugin_dir, proxy, photo, style):
    client = EngineClient.from_config(str(plugin_dir))
    result = decode_png(client.stylize(encode_png(*_raw(rgba_content(photo, (64, 48)))), style, QUICK))
    assert result[:2] == (64, 48)
    assert proxy.seen == [], "the proxy received: %r" % proxy.seen[0][:200]


def test_an_engine_elsewhere_is_reached_through_the_users_proxy(proxy):
    client = EngineClient("http://swag-engine.example:8765", token="the-token")
    with pytest.raises(EngineError, match="HTTP 502"):
        client.health()
    assert len(proxy.seen) == 1 and proxy.seen[0].startswith(b"GET http://swag-engine.example:8765/health?challenge=")
    assert b"the-token" not in proxy.seen[0]


class _Squatter(http.server.BaseHTTPRequestHandler):
    """Another user's program on the engine's port: answers /health like the engine, without the
    proof (or with a made-up one), and records every request it gets."""
    requests = []
    proof = None

    def _any(self):
        self.requests.append((self.command, self.path, self.headers.get("Authorization")))
        answer = {"status": "ok", "version": "0.1.0", "device": "cpu", "presets": {"fast": {"size": 1}}}
        if self.proof:
            answer["proof"] = self.proof
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _any

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("proof", [None, "0" * 64])
def test_a_program_that_took_the_port_first_gets_neither_token_nor_image(tmp_path, proof, style):
    handler = type("Squatter", (_Squatter,), {"requests": [], "proof": proof})
    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    try:
        folder = _write_config(tmp_path, engine_url="http://127.0.0.1:%d" % squatter.server_address[1])
        (tmp_path / "token").write_text("the-users-token\n")
        client = EngineClient.from_config(str(folder))
        with pytest.raises(EngineError, match="does not know your engine token .*another program holds the port"):
            client.stylize(encode_png(64, 64, 3, 8, bytes(64 * 64 * 3)), style, QUICK)
    finally:
        squatter.shutdown()
        squatter.server_close()
    assert [(method, path.split("?")[0], auth) for method, path, auth in handler.requests] == [("GET", "/health", None)]
    assert client.process is None  # and no engine was started in its place


def test_presets_come_only_from_an_engine_that_proves_it_knows_the_token(started, plugin_dir, tmp_path):
    from swag_core.options import PRESETS

    assert EngineClient.from_config(str(plugin_dir)).presets() == PRESETS
    squatter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Squatter", (_Squatter,), {"requests": []}))
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    try:
        folder = _write_config(tmp_path, engine_url="http://127.0.0.1:%d" % squatter.server_address[1])
        (tmp_path / "token").write_text("the-users-token\n")
        with pytest.raises(EngineError, match="does not know your engine token"):
            EngineClient.from_config(str(folder)).presets()
    finally:
        squatter.shutdown()
        squatter.server_close()


def test_a_busy_engine_gets_the_job_again_after_retry_after(started, plugin_dir, photo, style):
    """The engine reads only MAX_READS bodies at once and answers 503 with Retry-After beyond
    them: the client waits as asked and offers the job again."""
    from swag_core.service.server import MAX_READS

    client = EngineClient.from_config(str(plugin_dir))
    token = (plugin_dir / "token").read_text().strip()
    host, port = client._host_port()
    raw, answers = client._raw, []

    def recording(method, path, payload, timeout, auth=True):
        status, body, headers = raw(method, path, payload, timeout, auth)
        answers.append((method, status))
        return status, body, headers

    client._raw = recording
    held = []
    for _ in range(MAX_READS):  # uploads that send their headers and then nothing: they hold the reads
        conn = socket.create_connection((host, port), timeout=10)
        conn.sendall(("POST /jobs HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n"
                      % token).encode())
        held.append(conn)
    result = []
    thread = threading.Thread(target=lambda: result.append(
        client.stylize(encode_png(*_raw(rgba_content(photo, (64, 48)))), style, QUICK)))
    thread.start()
    time.sleep(1.5)
    for conn in held:
        conn.close()
    thread.join(120)
    assert result and decode_png(result[0])[:2] == (64, 48)
    posts = [status for method, status in answers if method == "POST"]
    assert posts[0] == 503 and posts[-1] == 202, answers
