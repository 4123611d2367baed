"""`swag serve`: the engine as a long-lived local HTTP service, which the GIMP plug-ins talk to.

GIMP's own Python cannot import torch, and loading a network and warming a device takes seconds,
so the engine runs in its own process and keeps its networks loaded between jobs. The API is
described in docs/service.md and docs/openapi.json. Requests are handled on threads
(http.server's ThreadingHTTPServer); the jobs themselves run one at a time on the job queue's
worker (jobs.py). Everything is checked before a job is queued, so a bad request gets a 400 at
once; the image's pixel count is read from its header before anything is decoded.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import ipaddress
import json
import math
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from . import __version__
from .errors import SwagError
from .options import DEVICES, PRESETS, Options

TOKEN_ENV = "SWAG_ENGINE_TOKEN"
DEFAULT_PORT = 8765
DEFAULT_MAX_PIXELS = 100_000_000
# A 100-megapixel 16-bit RGBA layer is 800 MB of samples; a PNG of noise hardly compresses and
# base64 adds a third: about 1070 MB, plus the style image.
DEFAULT_MAX_BODY_MB = 1536
FIELDS = ("content", "style", "style_weights", "options", "abandon_after", "init")


class HTTPProblem(Exception):
    """A request the service refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def add_command(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the engine as a local service for the GIMP plug-ins",
                              description="Run the engine as an HTTP service (API: docs/service.md).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--token-file", help=f"file holding the access token, created (mode 0600) when absent; "
                                        f"{TOKEN_ENV} in the environment wins (default {default_token_file()})")
    p.add_argument("--idle-timeout", type=float, default=600.0,
                   help="exit after this many seconds without requests or jobs (default 600; 0 = never)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="device for jobs that do not name one (default auto: CUDA, then MPS, then CPU)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than loopback (other computers can then reach the engine; "
                        "the token is still required)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"largest image accepted, in pixels (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB,
                   help=f"largest request body accepted, in MiB (default {DEFAULT_MAX_BODY_MB})")
    p.set_defaults(func=_cmd_serve)


def default_token_file() -> Path:
    if os.name == "nt":
        base = Path(os.environ.get("APPDATA") or Path.home())
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "swag" / "engine-token"


def load_token(token_file: Path) -> str:
    """The token from the environment, else from the file, else a new random one written to
    the file, readable by its owner only."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    try:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        if exc.filename != os.fspath(token_file):  # the folder's path has a file in it
            raise SwagError(f"cannot create the token file {token_file}: {exc.filename} is not a folder") from None
        return _read_token(token_file)
    except OSError as exc:
        raise SwagError(f"cannot create the token file {token_file}: {exc.strerror}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def _read_token(token_file: Path) -> str:
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SwagError(f"cannot read the token file {token_file}: {exc.strerror}") from None
    if not token:
        raise SwagError(f"the token file {token_file} is empty; delete it and a new token is made")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Service:
    """What the request handlers share: the token, the limits, the job queue, the device."""

    def __init__(self, token: str, device: str, max_pixels: int, max_body: int):
        from .jobs import JobQueue  # imports torch: only when serving

        self.token, self.device = token, device
        self.max_pixels, self.max_body = max_pixels, max_body
        self.jobs = JobQueue()
        self.last_request = time.monotonic()

    def authorised(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def idle_for(self) -> float:
        if self.jobs.busy():
            return 0.0
        return time.monotonic() - max(self.last_request, self.jobs.last_finished)

    def parse_job(self, body: bytes):
        """A queued-ready Job from a POST /jobs body, or HTTPProblem 400/413 saying what is wrong."""
        from .images import open_image
        from .jobs import Job

        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPProblem(400, f"the body is not valid JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise HTTPProblem(400, "the body must be a JSON object with content, style and options")
        unknown = sorted(set(payload) - set(FIELDS))
        if unknown:
            raise HTTPProblem(400, f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}")
        for name in ("content", "style"):
            if name not in payload:
                raise HTTPProblem(400, f"the {name} image is missing")
        preset, options = self.checked_options(payload.get("options"))
        styles = payload["style"] if isinstance(payload["style"], list) else [payload["style"]]
        if not styles:
            raise HTTPProblem(400, "style is an empty list: give at least one style image")
        weights = payload.get("style_weights")
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(styles)
                                    or not all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                               for w in weights)):
            raise HTTPProblem(400, "style_weights must be a list of numbers, one per style image")
        abandon_after = payload.get("abandon_after")
        if abandon_after is not None and (not isinstance(abandon_after, (int, float)) or isinstance(abandon_after, bool)
                                          or not 0 < abandon_after < math.inf):  # NaN fails too
            raise HTTPProblem(400, f"abandon_after must be a number of seconds above 0, e.g. 10, not {abandon_after!r}")
        # Every image's size is checked before any of them is decoded.
        files = [self.checked_file(payload["content"], "content")] + [self.checked_file(s, "style") for s in styles]
        init = payload.get("init")
        init_file = self.checked_file(init, "init") if init is not None else None
        try:
            images = [open_image(data, what) for data, what in zip(files, ["content"] + ["style"] * len(styles))]
            init_image = open_image(init_file, "init") if init_file is not None else None
        except SwagError as exc:
            raise HTTPProblem(400, str(exc)) from None
        return Job(images[0], images[1:], weights, preset, options, abandon_after, init_image)

    def checked_options(self, options) -> tuple[str | None, dict]:
        """(preset, settings) of a job's options, validated as the command line validates them."""
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise HTTPProblem(400, "options must be a JSON object, e.g. {\"preset\": \"fast\"}")
        options = dict(options)
        preset = options.pop("preset", None)
        if preset is not None and not isinstance(preset, str):
            raise HTTPProblem(400, f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        options.setdefault("device", self.device)
        try:
            Options.build(preset, **options)
        except SwagError as exc:
            raise HTTPProblem(400, str(exc)) from None
        return preset, options

    def checked_file(self, value, what: str) -> bytes:
        """The image file in a base64 field, once its header says it is an image within the pixel limit."""
        if not isinstance(value, str):
            raise HTTPProblem(400, f"{what} must be a base64 string holding an image file")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPProblem(400, f"{what} is not valid base64 ({exc})") from None
        try:
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                width, height = header.size
        except UnidentifiedImageError:
            raise HTTPProblem(400, f"{what} is not an image file (PNG, JPEG, TIFF or WebP expected)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise HTTPProblem(400, f"{what} is a damaged image file ({exc})") from None
        if width * height > self.max_pixels:
            raise HTTPProblem(413, f"the {what} image is {width}x{height} ({width * height:,} pixels); the engine "
                                   f"accepts at most {self.max_pixels:,} (swag serve --max-pixels)")
        return data


_JOB_PATH = re.compile(r"^/jobs/([0-9a-f]+)(/result)?$")


class Handler(BaseHTTPRequestHandler):
    server_version = f"swag/{__version__}"
    service: Service  # set on the class made for each server
    _body_read = False

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        self.service.last_request = time.monotonic()
        self._body_read = False
        try:
            status, reply = self._route()
        except HTTPProblem as exc:
            status, reply = exc.status, {"error": str(exc)}
        except Exception as exc:  # a bug: answer 500, keep serving
            self.log_error("%s %s failed: %r", self.command, self.path, exc)
            status, reply = 500, {"error": f"internal error in the engine ({exc.__class__.__name__}); see its log"}
        self._drain()
        if isinstance(reply, bytes):
            self._send(status, reply, "image/png")
        else:
            self._send(status, json.dumps(reply).encode(), "application/json")

    def _route(self):
        path = self.path.split("?", 1)[0]
        if path == "/health" and self.command == "GET":
            # The presets' settings, for a dialog that shows what "the preset's" size and iterations are.
            return 200, {"status": "ok", "version": __version__, "device": self.service.device, "presets": PRESETS}
        match = _JOB_PATH.match(path)
        if path == "/jobs":
            allowed = ("POST",)
        elif match:
            allowed = ("GET",) if match[2] else ("GET", "DELETE")
        else:
            raise HTTPProblem(404, f"no such endpoint: {path} (see docs/service.md)")
        if self.command not in allowed:
            raise HTTPProblem(405, f"{path} takes {' or '.join(allowed)}, not {self.command}")
        if not self.service.authorised(self.headers.get("Authorization")):
            raise HTTPProblem(401, "missing or wrong token: send Authorization: Bearer TOKEN "
                                   "(the token is in the engine's token file)")
        if path == "/jobs":
            return self._submit()
        jobs = self.service.jobs
        job = jobs.cancel(match[1]) if self.command == "DELETE" else jobs.get(match[1])
        if job is None:
            raise HTTPProblem(404, f"no job {match[1]} (finished jobs are kept for a limited time)")
        if not match[2]:
            if self.command == "GET":
                job.last_polled = time.monotonic()  # its client is still waiting for it (abandon_after)
            return 200, job.status()
        if job.state == "done":
            return 200, job.result
        reason = f"failed: {job.error}" if job.state == "failed" else job.state
        raise HTTPProblem(409, f"job {job.id} has no result: it is {reason}")

    def _submit(self):
        from .jobs import QueueFull

        job = self.service.parse_job(self._read_body())
        try:
            self.service.jobs.submit(job)
        except QueueFull as exc:
            raise HTTPProblem(503, str(exc)) from None
        return 202, {"id": job.id}

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HTTPProblem(411, "send the body with a Content-Length header") from None
        if length < 0:
            raise HTTPProblem(400, "negative Content-Length")
        return length

    def _read_body(self) -> bytes:
        length = self._content_length()
        if length > self.service.max_body:
            raise HTTPProblem(413, f"the request is {length / 2**20:.1f} MiB; the engine accepts at most "
                                   f"{self.service.max_body / 2**20:.0f} MiB (swag serve --max-body-mb)")
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) != length:
            raise HTTPProblem(400, "the body is shorter than its Content-Length")
        return body

    def _drain(self):
        """Read and drop a body the request was refused before reading: closing a socket with
        unread data makes the kernel reset the connection, and the client would lose the answer."""
        if self._body_read or "Content-Length" not in self.headers:
            return
        try:
            left = self._content_length()
            while left > 0:
                chunk = self.rfile.read(min(left, 2**20))
                if not chunk:
                    break
                left -= len(chunk)
        except (HTTPProblem, OSError):
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client went away; nothing to tell it

    def log_message(self, format, *args):
        """Only refusals and errors go to the log: the plug-ins poll several times a second."""

    def log_error(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Fail when another program holds the port, instead of sharing it (Windows would allow that).
    allow_reuse_address = os.name != "nt"


def _make_server(host: str, port: int, service: Service) -> _Server:
    handler = type("BoundHandler", (Handler,), {"service": service, "timeout": 120})
    server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
    try:
        return server_class((host, port), handler)
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise SwagError(f"port {port} on {host} is in use by another program; stop it or use --port") from None
        raise SwagError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _cmd_serve(args) -> int:
    if not _is_loopback(args.host) and not args.allow_remote:
        raise SwagError(f"--host {args.host} would let other computers reach the engine; "
                        "add --allow-remote if that is what you want")
    if args.max_pixels < 1 or args.max_body_mb <= 0:
        raise SwagError("--max-pixels and --max-body-mb must be positive")
    from .stylize import pick_device

    device = str(pick_device(args.device))  # fails now, not at the first job, if the device is missing
    token = load_token(Path(args.token_file).expanduser() if args.token_file else default_token_file())
    service = Service(token, device, args.max_pixels, int(args.max_body_mb * 2**20))
    try:
        server = _make_server(args.host, args.port, service)
    except SwagError:
        service.jobs.close()
        raise
    # Every image's pixel count is checked against --max-pixels before it is decoded (decode_image),
    # so PIL's own, fixed guard against decompression bombs is not needed.
    Image.MAX_IMAGE_PIXELS = None
    stop, reason = threading.Event(), ["stopped"]

    def on_signal(signum, frame):
        reason[0] = f"stopped by {signal.Signals(signum).name}"
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ready on http://{host}:{server.server_address[1]}", flush=True)
    while not stop.wait(min(1.0, args.idle_timeout / 4) if args.idle_timeout > 0 else 1.0):
        service.jobs.cancel_abandoned()
        if args.idle_timeout > 0 and service.idle_for() > args.idle_timeout:
            reason[0] = f"stopped after {args.idle_timeout:g} s idle"
            break
    server.shutdown()
    server.server_close()
    service.jobs.close()
    print(reason[0], flush=True)
    return 0
