"""`swag serve`: the engine as a long-lived local HTTP service, which the GIMP plug-ins talk to.

GIMP's own Python cannot import torch, and loading a network and warming a device takes seconds,
so the engine runs in its own process and keeps its networks loaded between jobs. The API is
described in docs/service.md and docs/openapi.json. Requests are handled on threads
(http.server's ThreadingHTTPServer); the jobs themselves run one at a time on the job queue's
worker (jobs.py). Everything is checked before a job is queued, so a bad request gets a 400 at
once; the image's pixel count is read from its header before anything is decoded.

Memory is bounded at every step (docs/service.md, "Limits"): the number of connections, the
size of a body, the number of bodies read at once, the bytes of queued jobs (their image files,
not decoded images) and of kept results. A request that is refused is answered before its body
is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from .. import __version__
from ..choices import DEVICES, IMAGENET, RANDOM
from ..errors import SwagError
from ..options import PRESETS, Options

TOKEN_ENV = "SWAG_ENGINE_TOKEN"
DEFAULT_PORT = 8765
DEFAULT_MAX_PIXELS = 100_000_000
FIELDS = ("content", "style", "style_weights", "options", "abandon_after", "init")
# Connections handled at once, each on its own thread; more are answered 503 by the listening thread.
MAX_CONNECTIONS = 32
# Request bodies read and checked at once; a POST beyond them is answered 503 before its body is read.
MAX_READS = 2
# After answering a request whose body it did not read, the service drops what the client still
# sends for at most this long (see Handler._linger).
LINGER_SECONDS = 2.0
PROOF_PREFIX = b"swag-engine-proof:"
_CHALLENGE = re.compile(r"[0-9a-f]{32,128}")


def body_limit(max_pixels: int) -> int:
    """The largest request body, from the largest image: room for three image files of
    `max_pixels` pixels (the content, an init image of the same size, as animation frames send,
    and a style) at 8 bytes a pixel (16-bit RGBA, uncompressed: a PNG of noise hardly
    compresses), as base64 (4 characters for 3 bytes), and 1 MiB for the JSON around them."""
    files = 3 * 8 * max_pixels
    return 4 * math.ceil(files / 3) + 2**20


def proof(token: str, challenge: str) -> str:
    """What the engine answers to /health?challenge=...: the client checks it with its own copy
    of the token, so that it never sends the token to a program that does not already know it
    (another user's program that took the port first)."""
    return hmac.new(token.encode(), PROOF_PREFIX + challenge.encode(), hashlib.sha256).hexdigest()


class HTTPProblem(Exception):
    """A request the service refuses: an HTTP status, a one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _busy(message: str, seconds: int) -> HTTPProblem:
    return HTTPProblem(503, message, {"Retry-After": str(seconds)})


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
                   help=f"largest image accepted, in pixels (default {DEFAULT_MAX_PIXELS:,}); the largest "
                        f"request body follows from it")
    p.add_argument("--weights-dir", help="folder of state_dict files that jobs may name as their weights "
                                         "(by file name; without it, jobs take random or imagenet only)")
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

    def __init__(self, token: str, device: str, max_pixels: int, weights_dir: Path | None = None):
        from .jobs import JobQueue  # imports torch: only when serving

        self.token, self.device, self.weights_dir = token, device, weights_dir
        self.max_pixels, self.max_body = max_pixels, body_limit(max_pixels)
        self.reads = threading.BoundedSemaphore(MAX_READS)
        self.jobs = JobQueue()
        self.last_request = time.monotonic()

    def authorised(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def idle_for(self) -> float:
        if self.jobs.busy():
            return 0.0
        return time.monotonic() - max(self.last_request, self.jobs.last_finished)

    def parse_job(self, payload):
        """A Job ready to queue from a POST /jobs body, or HTTPProblem 400/413 saying what is wrong."""
        from .jobs import Job

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
                                    or not all(_is_number(w) and 0 <= w < math.inf for w in weights)
                                    or not any(weights)):
            raise HTTPProblem(400, "style_weights must be a list of numbers of 0 or more, one per style image, "
                                   "not all 0")
        abandon_after = payload.get("abandon_after")
        if abandon_after is not None and not (_is_number(abandon_after) and 0 < abandon_after < math.inf):
            raise HTTPProblem(400, f"abandon_after must be a number of seconds above 0, e.g. 10, not {abandon_after!r}")
        init = payload.get("init")
        images = [("content", payload["content"]), *(("style", s) for s in styles)]
        if init is not None:
            images.append(("init", init))
        # Every image's size is checked before any of them is decoded.
        files = [self.checked_file(value, name) for name, value in images]
        for data, (name, _) in zip(files, images):
            _check_decodes(data, name)
        init_file = files.pop() if init is not None else None
        return Job(files[0], files[1:], weights, preset, options, abandon_after, init_file)

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
        if isinstance(options.get("weights"), str):
            options["weights"] = self.weights_file(options["weights"])
        try:
            Options.build(preset, **options)
        except SwagError as exc:
            raise HTTPProblem(400, str(exc)) from None
        except OverflowError:  # an integer too large for a float setting
            raise HTTPProblem(400, "a number in options is too large") from None
        return preset, options

    def weights_file(self, name: str) -> str:
        """random, imagenet, or the path of the file called `name` in --weights-dir. A client names
        a file only by matching one listed there, so it can neither reach nor probe other paths."""
        if name in (RANDOM, IMAGENET):
            return name
        if self.weights_dir is None:
            raise HTTPProblem(400, f"weights must be {RANDOM} or {IMAGENET}: this engine has no weights folder "
                                   f"(start swag serve with --weights-dir FOLDER to offer weights files)")
        try:
            names = sorted(e.name for e in os.scandir(self.weights_dir) if e.is_file())
        except OSError:
            names = []
        if name not in names:
            offered = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
            raise HTTPProblem(400, f"weights must be {RANDOM}, {IMAGENET} or the name of a file in the engine's "
                                   f"weights folder ({offered}), not {name[:100]!r}")
        return str(self.weights_dir / name)

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
        except Exception as exc:  # noqa: BLE001 - any failure of a decoder on a client's bytes is a bad file
            raise HTTPProblem(400, _undecodable(what, exc)) from None
        if width * height > self.max_pixels:
            raise HTTPProblem(413, f"the {what} image is {width}x{height} ({width * height:,} pixels); the engine "
                                   f"accepts at most {self.max_pixels:,} (swag serve --max-pixels)")
        return data


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_decodes(data: bytes, what: str) -> None:
    """Decode the whole file once, so that a truncated or broken one is a 400 now rather than a
    failed job later; the job keeps the file and decodes it again when it runs."""
    from ..imaging.images import open_image

    try:
        open_image(data, what).close()
    except SwagError as exc:
        raise HTTPProblem(400, str(exc)) from None
    except MemoryError:
        raise HTTPProblem(413, f"the {what} image is too large for the memory the engine has free now; "
                               f"try again later or send a smaller one") from None
    except Exception as exc:  # noqa: BLE001 - a decoder's own bug on odd input: still the file's fault
        raise HTTPProblem(400, _undecodable(what, exc)) from None


def _undecodable(what: str, exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return f"{what} is not an image file (PNG, JPEG, TIFF or WebP expected)"
    detail = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
    return f"{what} is a damaged image file ({detail}); re-save it as PNG or JPEG and try again"


_JOB_PATH = re.compile(r"^/jobs/([0-9a-f]+)(/result)?$")


class Handler(BaseHTTPRequestHandler):
    server_version = f"swag/{__version__}"
    service: Service  # set on the class made for each server
    timeout = 120  # seconds a client may stay silent in the middle of a request
    _body_read = False

    def __getattr__(self, name):
        # http.server calls do_<METHOD>. Every method, in the API or not, goes to _dispatch, so
        # that one outside the API gets 405 with Allow and a JSON body, not a 501 HTML page.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self):
        self.service.last_request = time.monotonic()
        self._body_read = False
        headers = {}
        try:
            status, reply = self._route()
        except HTTPProblem as exc:
            status, reply, headers = exc.status, {"error": str(exc)}, exc.headers
        except Exception as exc:  # a bug: answer 500, keep serving
            self.log_error("%s %s failed: %r", self.command, self.path, exc)
            status, reply = 500, {"error": f"internal error in the engine ({exc.__class__.__name__}); see its log"}
        unread = not self._body_read and ("Content-Length" in self.headers or "Transfer-Encoding" in self.headers)
        if unread:
            self.close_connection = True
        if isinstance(reply, bytes):
            self._send(status, reply, "image/png", headers)
        else:
            self._send(status, json.dumps(reply).encode(), "application/json", headers)
        if unread:
            self._linger()

    def _route(self):
        url = urlsplit(self.path)
        path = url.path
        match = _JOB_PATH.match(path)
        if path == "/health":
            allowed = ("GET",)
        elif path == "/jobs":
            allowed = ("POST",)
        elif match:
            allowed = ("GET",) if match[2] else ("GET", "DELETE")
        else:
            raise HTTPProblem(404, f"no such endpoint: {path[:200]} (see docs/service.md)")
        if self.command not in allowed:
            raise HTTPProblem(405, f"{path} takes {' or '.join(allowed)}, not {self.command[:20]}",
                              {"Allow": ", ".join(allowed)})
        if path == "/health":
            return 200, self._health(url.query)
        if not self.service.authorised(self.headers.get("Authorization")):
            raise HTTPProblem(401, "missing or wrong token: send Authorization: Bearer TOKEN "
                                   "(the token is in the engine's token file)", {"WWW-Authenticate": "Bearer"})
        if path == "/jobs":
            return self._submit()
        jobs = self.service.jobs
        job = jobs.cancel(match[1]) if self.command == "DELETE" else jobs.get(match[1])
        if job is None:
            raise HTTPProblem(404, f"no job {match[1][:40]} (finished jobs are kept for a limited time)")
        if not match[2]:
            if self.command == "GET":
                job.last_polled = time.monotonic()  # its client is still waiting for it (abandon_after)
            return 200, job.status()
        if job.state == "done":
            return 200, job.result
        reason = f"failed: {job.error}" if job.state == "failed" else job.state
        raise HTTPProblem(409, f"job {job.id} has no result: it is {reason}")

    def _health(self, query: str) -> dict:
        """Answered without the token: nothing in it is secret (the presets' settings are the same
        in every copy of the engine). A client trusts it, presets included, only once the proof
        for its challenge checks out."""
        # The presets' settings, for a dialog that shows what "the preset's" size and iterations are.
        reply = {"status": "ok", "version": __version__, "device": self.service.device, "presets": PRESETS}
        challenge = parse_qs(query, keep_blank_values=True).get("challenge")
        if challenge is not None:
            if len(challenge) != 1 or not _CHALLENGE.fullmatch(challenge[0]):
                raise HTTPProblem(400, "challenge must be one string of 32 to 128 lowercase hex digits")
            reply["proof"] = proof(self.service.token, challenge[0])
        return reply

    def _submit(self):
        from .jobs import QueueFull

        length = self._content_length()
        if length > self.service.max_body:
            raise HTTPProblem(413, f"the request is {length / 2**20:.1f} MiB; the engine accepts at most "
                                   f"{self.service.max_body / 2**20:.0f} MiB, which follows from its largest "
                                   f"image (swag serve --max-pixels)")
        if not self.service.reads.acquire(blocking=False):
            raise _busy(f"the engine is receiving {MAX_READS} other requests; try again in a second", 1)
        try:
            job = self.service.parse_job(self._read_json(length))
        finally:
            self.service.reads.release()
        try:
            self.service.jobs.submit(job)
        except QueueFull as exc:
            raise _busy(str(exc), 5) from None
        return 202, {"id": job.id}

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HTTPProblem(411, "send the body with a Content-Length header") from None
        if length < 0:
            raise HTTPProblem(400, "negative Content-Length")
        return length

    def _read_json(self, length: int):
        """The body, parsed. Read into one buffer, and each copy dropped as soon as the next is
        made: a body is at most twice in memory at once."""
        body = bytearray(length)
        got = self.rfile.readinto(body)
        self._body_read = True
        if got != length:
            raise HTTPProblem(400, "the body is shorter than its Content-Length")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPProblem(400, "the body is not valid JSON (it is not UTF-8 text)") from None
        del body
        try:
            return json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            raise HTTPProblem(400, f"the body is not valid JSON ({detail})") from None

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client went away; nothing to tell it

    def _linger(self):
        """Close a connection whose body was not read without losing the answer. The client may
        still be sending that body, and closing a socket with unread data makes the kernel reset
        the connection, which throws the answer away before the client reads it. So: send the
        answer and end our side (FIN), then drop what still comes into one small buffer, for at
        most LINGER_SECONDS; nothing of it is kept."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            sink = bytearray(64 * 1024)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv_into(sink):
                    break
        except OSError:
            pass

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line or header) in JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # what http.server assumes of a request line it cannot read
            self.request_version = "HTTP/1.0"  # so that the answer has a status line and headers
        reason = message or self.responses.get(code, ("error",))[0]
        self._send(code, json.dumps({"error": f"{reason} (HTTP {code})"}).encode(), "application/json")

    def log_message(self, format, *args):
        """Only refusals and errors go to the log: the plug-ins poll several times a second."""

    def log_error(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Fail when another program holds the port, instead of sharing it (Windows would allow that).
    allow_reuse_address = os.name != "nt"
    # Connections the kernel holds until they are accepted (socketserver's default, 5, makes a
    # burst of clients wait a second for each retry of their connection).
    request_queue_size = 2 * MAX_CONNECTIONS

    def __init__(self, *args, **kwargs):
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        if not self._connections.acquire(blocking=False):
            _refuse_connection(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()  # no thread was started to release it
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


def _refuse_connection(request: socket.socket) -> None:
    """A 503 written by the listening thread itself: a connection beyond MAX_CONNECTIONS gets no
    thread of its own, and nothing of its request is read."""
    body = json.dumps({"error": f"the engine has {MAX_CONNECTIONS} connections open; try again in a second"})
    head = ("HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n")
    try:
        request.settimeout(1.0)
        request.sendall((head + body).encode())
    except OSError:
        pass


def _make_server(host: str, port: int, service: Service) -> _Server:
    handler = type("BoundHandler", (Handler,), {"service": service})
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
    if args.max_pixels < 1:
        raise SwagError("--max-pixels must be positive")
    weights_dir = Path(args.weights_dir).expanduser().resolve() if args.weights_dir else None
    if weights_dir is not None and not weights_dir.is_dir():
        raise SwagError(f"--weights-dir {args.weights_dir} is not a folder")
    from ..engine.device import pick_device

    device = str(pick_device(args.device))  # fails now, not at the first job, if the device is missing
    token = load_token(Path(args.token_file).expanduser() if args.token_file else default_token_file())
    service = Service(token, device, args.max_pixels, weights_dir)
    try:
        server = _make_server(args.host, args.port, service)
    except SwagError:
        service.jobs.close()
        raise
    # Every image's pixel count is checked against --max-pixels from its header before it is
    # decoded (Service.checked_file), so PIL's own, fixed guard against decompression bombs is
    # not needed; it would refuse images that --max-pixels allows.
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
