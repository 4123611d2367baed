# -*- coding: utf-8 -*-
"""The GIMP plug-ins' side of the engine service (`swag serve`, docs/service.md).

Standard library only, and the same file runs on Python 3.6+ (GIMP 3) and Python 2.7 (GIMP
2.10): no f-strings, no annotations, no keyword-only arguments. GIMP's Python has no imaging
library, so the PNG encoding and decoding the API needs is here too (encode_png, decode_png).

    client = EngineClient.from_config(plugin_dir)
    png = client.stylize(content_png, style_bytes, {"preset": "fast"}, progress, should_cancel)
"""

from __future__ import absolute_import, division, print_function

import base64
import binascii
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib

try:  # Python 3
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlparse
    from urllib.request import ProxyHandler, Request, build_opener
except ImportError:  # Python 2.7
    from httplib import HTTPException
    from urllib2 import HTTPError, ProxyHandler, Request, URLError, build_opener
    from urlparse import urlparse

CONFIG_NAME = "swag_engine.json"
INSTALL_HINT = "run python3 installer/install.py"
DEFAULT_PORT = 8765  # swag serve's
HEALTH_TIMEOUT = 5  # seconds; the engine answers on its own threads even while a job runs
REQUEST_TIMEOUT = 30
TRANSFER_TIMEOUT = 600  # sending or fetching an image of up to 100 megapixels
START_TIMEOUT = 180  # the first start imports torch and may compile GPU kernels
POLL_INTERVAL = 0.3
BUSY_TIMEOUT = 600  # how long a job is offered again while the engine answers "busy, retry later"
# The engine cancels a job after this many seconds without a status request from its client. GIMP
# kills a plug-in whose progress the user cancels, before it can tell the engine; its job then
# stops this long after its last poll instead of running on.
ABANDON_AFTER = 10


class EngineError(Exception):
    """The engine cannot do the job; the message is one line for the user."""


class Cancelled(Exception):
    """The user cancelled; the engine was told to drop the job."""


_NETWORK_ERRORS = (URLError, HTTPException, socket.error, socket.timeout, ValueError)


class EngineClient(object):
    def __init__(self, url, token=None, token_file=None, engine_python=None, device="auto", log_file=None):
        self.url = url.rstrip("/")
        self.token, self.token_file = token, token_file
        self.engine_python, self.device, self.log_file = engine_python, device, log_file
        self.process = None  # the engine this client started, if it did

    @classmethod
    def from_config(cls, plugin_dir):
        """Settings from swag_engine.json in plugin_dir (the installer writes it);
        SWAG_ENGINE_URL and SWAG_ENGINE_TOKEN in the environment win. A relative token_file is
        beside the config: the installer puts a copy of the engine's token there for a GIMP in a
        sandbox, which cannot read the engine's own file (docs/install.md)."""
        path = os.path.join(plugin_dir, CONFIG_NAME)
        config = {}
        if os.path.exists(path):
            try:
                with open(path) as f:
                    config = json.load(f)
            except (IOError, OSError, ValueError) as exc:
                raise EngineError("cannot read %s (%s): %s" % (path, exc, INSTALL_HINT))
        url = os.environ.get("SWAG_ENGINE_URL") or config.get("engine_url")
        if not url:
            raise EngineError("no engine is configured for this GIMP (no %s): %s" % (path, INSTALL_HINT))
        token_file = config.get("token_file")
        if token_file and not os.path.isabs(token_file):
            token_file = os.path.join(plugin_dir, token_file)
        return cls(url, token=os.environ.get("SWAG_ENGINE_TOKEN") or None,
                   token_file=token_file, engine_python=config.get("engine_python"),
                   device=config.get("device") or "auto", log_file=config.get("log_file"))

    # -- the job -------------------------------------------------------------------------

    def stylize(self, content_png, style_bytes, options, progress=None, should_cancel=None, init_png=None):
        """The stylised image as PNG bytes. Starts the engine if it is not running. `init_png`:
        the image the engine starts from instead of the content (the previous animation frame)."""
        progress = progress or (lambda fraction, text: None)
        should_cancel = should_cancel or (lambda: False)
        self.ensure_running(progress)
        job_id = self.submit(content_png, style_bytes, options, progress, should_cancel, init_png)
        while True:
            if should_cancel():
                self.cancel(job_id)
                raise Cancelled("cancelled")
            status = self.poll(job_id)
            state = status.get("state")
            if state == "done":
                break
            if state == "failed":
                raise EngineError(status.get("error") or "the engine could not stylise the image")
            if state == "cancelled":
                raise Cancelled("the job was cancelled in the engine")
            text = "waiting for the engine" if state == "queued" else status.get("stage") or state
            progress(float(status.get("progress") or 0.0), text)
            time.sleep(POLL_INTERVAL)
        result = self.fetch(job_id)
        self.cancel(job_id)  # frees the result in the engine at once; it would expire anyway
        return result

    def submit(self, content_png, style_bytes, options, progress=None, should_cancel=None, init_png=None):
        """The new job's id. While the engine answers 503 (it is receiving other images, or its
        queue is full), the job is offered again after the wait the engine asks for."""
        payload = {"content": _b64(content_png), "style": _b64(style_bytes), "options": options,
                   "abandon_after": ABANDON_AFTER}
        if init_png is not None:
            payload["init"] = _b64(init_png)
        deadline = time.time() + BUSY_TIMEOUT
        while True:
            status, body, headers = self._call("POST", "/jobs", payload, TRANSFER_TIMEOUT)
            if status != 503 or time.time() > deadline:
                return _json(body, status, 202)["id"]
            if should_cancel and should_cancel():
                raise Cancelled("cancelled")
            if progress:
                progress(0.0, "waiting for the engine")
            time.sleep(_retry_after(headers))

    def poll(self, job_id):
        status, body, _ = self._call("GET", "/jobs/" + job_id)
        return _json(body, status, 200)

    def cancel(self, job_id):
        """Cancel a queued or running job (a finished one is dropped with its result)."""
        status, body, _ = self._call("DELETE", "/jobs/" + job_id)
        if status not in (200, 404):
            raise EngineError(_error_text(body, status))

    def fetch(self, job_id):
        status, body, _ = self._call("GET", "/jobs/%s/result" % job_id, timeout=TRANSFER_TIMEOUT)
        if status != 200:
            raise EngineError(_error_text(body, status))
        return body

    # -- starting the engine -------------------------------------------------------------

    def health(self):
        """The engine's /health answer, or None when nothing listens at the URL.

        The answer must prove that the engine knows this client's token (an HMAC of a fresh
        random challenge) before the token is ever sent: another user of this computer could
        have taken the port first, and would otherwise receive the token and the user's image."""
        challenge = binascii.hexlify(os.urandom(16)).decode("ascii")
        try:
            status, body, _ = self._raw("GET", "/health?challenge=" + challenge, None, HEALTH_TIMEOUT, auth=False)
        except _NETWORK_ERRORS as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout):
                raise EngineError("something at %s accepts connections but does not answer like the SWAG "
                                  "engine: the port is in use by another program; close it or change "
                                  "engine_url in %s" % (self.url, CONFIG_NAME))
            return None
        try:
            answer = json.loads(body.decode("utf-8"))
            if status == 200 and answer.get("status") == "ok":
                if not _proves(answer.get("proof"), self._token(), challenge):
                    raise EngineError("the program answering at %s does not know your engine token (%s): another "
                                      "user's engine or another program holds the port, or your token changed; stop "
                                      "that program or restart the engine, or change engine_url in %s"
                                      % (self.url, self._token_source(), CONFIG_NAME))
                return answer
        except (ValueError, AttributeError):
            pass
        raise EngineError("the port of %s is in use by another program (it answered HTTP %d, not like the "
                          "SWAG engine); close it or change engine_url in %s" % (self.url, status, CONFIG_NAME))

    def presets(self):
        """{preset: its settings} as the running engine reports them; None when no engine
        answers (or one too old to say). Taken from health(), so only from an engine that proved
        it knows the token: EngineError when another program answers at the URL."""
        answer = self.health()
        return answer.get("presets") if answer else None

    def start(self):
        """Start the engine, unless the one this client started is still starting; returns at
        once. Call it when health() is None. EngineError says why GIMP cannot start it."""
        if self.process is not None and self.process.poll() is None:
            return
        host, port = self._host_port()
        problem = self._why_not_startable(host, port)
        if problem:
            raise EngineError(problem)
        self._start(host, port)

    def ensure_running(self, progress=None):
        """Start the engine unless it answers already, and wait until it is ready."""
        if self.health() is not None:
            return
        progress = progress or (lambda fraction, text: None)
        progress(0.0, "starting engine")
        self.start()
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            # Health first: another plug-in may have started the engine at the same moment, and
            # then ours exits because the port is taken, which is fine.
            if self.health() is not None:
                return
            code = self.process.poll()
            if code is not None:
                raise EngineError("the engine exited while starting (status %d): %s" % (code, self._log_tail()))
            progress(0.0, "starting engine")
            time.sleep(0.25)
        raise EngineError("the engine did not become ready within %d s: %s" % (START_TIMEOUT, self._log_tail()))

    def _why_not_startable(self, host, port):
        """Why this client cannot start the engine that does not answer at its URL, or None. The
        three cases need different fixes: the message names the one that applies."""
        if not _is_loopback(host):
            return ("the engine at %s does not answer: start it on that machine (docs/service.md), or "
                    "check engine_url in %s and SWAG_ENGINE_URL" % (self.url, CONFIG_NAME))
        # An engine started by hand must keep running: the plug-in cannot restart it.
        serve = "serve --idle-timeout 0" + ("" if port == DEFAULT_PORT else " --port %d" % port)
        if not self.engine_python:
            return ("no engine answers at %s and none is configured for GIMP to start: start one with "
                    "`swag %s`, or %s" % (self.url, serve, INSTALL_HINT))
        if not os.path.isfile(self.engine_python):
            return ("no engine answers at %s and GIMP cannot start it: its Python %s is not visible from "
                    "GIMP (a Flatpak or Snap GIMP runs in a sandbox); start the engine outside GIMP with "
                    "`%s -m swag_core %s` (docs/install.md, 'GIMP in a sandbox'), or %s if it was removed"
                    % (self.url, self.engine_python, self.engine_python, serve, INSTALL_HINT))
        return None

    def _start(self, host, port):
        python = self.engine_python
        args = [python, "-m", "swag_core", "serve", "--host", host, "--port", str(port), "--device", self.device]
        if self.token_file:
            args += ["--token-file", self.token_file]
        kwargs = {}
        if os.name == "nt":
            # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP: no console window, and it outlives GIMP.
            kwargs["creationflags"] = 0x00000008 | 0x00000200
        elif sys.version_info[0] >= 3:
            kwargs["start_new_session"] = True
        else:
            kwargs["preexec_fn"] = os.setsid
        log = open(self.log_file or os.devnull, "wb")  # one engine run per log
        devnull = open(os.devnull, "rb")
        try:
            self.process = subprocess.Popen(args, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                                            close_fds=os.name != "nt", **kwargs)
        except OSError as exc:
            raise EngineError("cannot start the engine %s (%s): %s" % (python, exc, INSTALL_HINT))
        finally:
            log.close()
            devnull.close()

    def _log_tail(self, lines=3):
        if not self.log_file:
            return "no log file is configured"
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4000))
                text = f.read().decode("utf-8", "replace")
        except (IOError, OSError):
            return "its log %s cannot be read" % self.log_file
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return "%s (log: %s)" % (" | ".join(tail) or "the log is empty", self.log_file)

    def _host_port(self):
        parsed = urlparse(self.url)
        return parsed.hostname or "127.0.0.1", parsed.port or DEFAULT_PORT

    # -- HTTP ----------------------------------------------------------------------------

    def _token(self):
        if self.token:
            return self.token
        try:
            with open(self.token_file or "") as f:
                return f.read().strip()
        except (IOError, OSError) as exc:
            raise EngineError("cannot read the engine's token file %s (%s): %s again (for a GIMP in a "
                              "sandbox it puts a copy GIMP can read beside the plug-in), or set "
                              "SWAG_ENGINE_TOKEN" % (self.token_file, exc, INSTALL_HINT))

    def _token_source(self):
        return "SWAG_ENGINE_TOKEN" if self.token else "from %s" % self.token_file

    def _raw(self, method, path, payload, timeout, auth=True):
        """(status, body bytes, headers); network failures raise the library's own errors."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = Request(self.url + path, data=data)
        request.get_method = lambda: method  # Python 2's Request has no method argument
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", "Bearer " + self._token())
        try:
            response = _opener(self._host_port()[0]).open(request, timeout=timeout)
        except HTTPError as exc:
            try:
                return exc.code, exc.read(), exc.info()
            finally:
                exc.close()
        try:
            return response.getcode(), response.read(), response.info()
        finally:
            response.close()

    def _call(self, method, path, payload=None, timeout=REQUEST_TIMEOUT):
        try:
            status, body, headers = self._raw(method, path, payload, timeout)
        except _NETWORK_ERRORS as exc:
            raise EngineError("the engine stopped answering (%s): %s" % (getattr(exc, "reason", exc),
                                                                          self._log_tail()))
        if status == 401:
            raise EngineError("the engine refused the token: restart the engine, or check "
                              "SWAG_ENGINE_TOKEN and the token file %s" % self.token_file)
        return status, body, headers


def _is_loopback(host):
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _opener(host):
    """urllib without proxies for an engine on this computer: with http_proxy set and no_proxy
    unset (common on company and university machines), urllib would send requests for 127.0.0.1,
    with the token and the user's image, to the proxy. An engine elsewhere is reached the way
    the user's proxy settings say."""
    return build_opener(ProxyHandler({})) if _is_loopback(host) else build_opener()


def _proves(proof, token, challenge):
    """Whether `proof` is the engine's answer to `challenge` for `token` (swag_core.service.server.proof)."""
    expected = hmac.new(token.encode("utf-8"), ("swag-engine-proof:" + challenge).encode("ascii"),
                        hashlib.sha256).hexdigest()
    try:
        return hmac.compare_digest(proof.encode("ascii"), expected.encode("ascii"))
    except (AttributeError, UnicodeError, TypeError):  # no proof, or not a string
        return False


def _retry_after(headers):
    """Seconds to wait before offering a job again: the engine's Retry-After, within 1 to 30."""
    try:
        return min(30, max(1, int(headers.get("Retry-After") or 1)))
    except ValueError:
        return 1


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _error_text(body, status):
    try:
        return json.loads(body.decode("utf-8"))["error"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "the engine answered HTTP %d" % status


def _json(body, status, expected):
    if status != expected:
        raise EngineError(_error_text(body, status))
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        raise EngineError("the engine sent an answer that is not JSON (HTTP %d)" % status)


# -- PNG -----------------------------------------------------------------------------------

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)
_CHANNELS = dict((v, k) for k, v in _COLOUR_TYPES.items())


def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(width, height, channels, bit_depth, raw_bytes):
    """A PNG of raw samples: rows top to bottom, channels interleaved, 16-bit samples big-endian."""
    if channels not in _COLOUR_TYPES or bit_depth not in (8, 16):
        raise ValueError("encode_png takes 1 to 4 channels of 8 or 16 bits, not %r of %r" % (channels, bit_depth))
    stride = width * channels * bit_depth // 8
    if len(raw_bytes) != stride * height:
        raise ValueError("%dx%d with %d channels of %d bits is %d bytes, not %d"
                         % (width, height, channels, bit_depth, stride * height, len(raw_bytes)))
    view = memoryview(raw_bytes)
    # Filter type 0 on every row: quick to write here and quick to read with zlib alone.
    rows = b"".join(b"\x00" + view[y * stride:(y + 1) * stride].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[channels], 0, 0, 0)
    data = zlib.compress(rows, 1)  # level 1: the PNG only crosses the loopback interface
    idat = b"".join(_chunk(b"IDAT", data[i:i + 2 ** 24]) for i in range(0, len(data), 2 ** 24))
    return _SIGNATURE + _chunk(b"IHDR", header) + idat + _chunk(b"IEND", b"")


def decode_png(data):
    """(width, height, channels, bit_depth, raw_bytes) of a non-interlaced 8- or 16-bit gray,
    gray+alpha, RGB or RGBA PNG; raw_bytes as encode_png takes them."""
    if data[:8] != _SIGNATURE:
        raise EngineError("cannot decode the image: it is not a PNG file")
    header, idat, pos = None, [], 8
    while pos + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:pos + 21])
        elif tag == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        elif tag == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise EngineError("cannot decode the image: the PNG has no header")
    width, height, bit_depth, colour_type, _, _, interlace = header
    if interlace:
        raise EngineError("cannot decode the image: interlaced PNG is not supported, only non-interlaced")
    if colour_type not in _CHANNELS or bit_depth not in (8, 16):
        raise EngineError("cannot decode the image: only 8- or 16-bit gray, gray+alpha, RGB and RGBA PNG "
                          "are supported (colour type %d, %d bits)" % (colour_type, bit_depth))
    channels = _CHANNELS[colour_type]
    pixel = channels * bit_depth // 8
    stride = width * pixel
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise EngineError("cannot decode the image: its PNG data is damaged (%s)" % exc)
    if len(raw) < (stride + 1) * height:
        raise EngineError("cannot decode the image: its PNG data is truncated")
    out = bytearray(stride * height)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        filter_type = bytearray(raw[start:start + 1])[0]
        row = bytearray(raw[start + 1:start + 1 + stride])
        if filter_type:
            _unfilter(filter_type, row, previous, pixel)
        out[y * stride:(y + 1) * stride] = row
        previous = row
    return width, height, channels, bit_depth, bytes(out)


def _unfilter(filter_type, row, previous, pixel):
    """Undo one row's PNG filter in place (PNG specification, section 9). A Python loop per
    byte: slow for large images, which is why both ends of the service write filter type 0."""
    n = len(row)
    if filter_type == 1:  # Sub
        for i in range(pixel, n):
            row[i] = (row[i] + row[i - pixel]) & 0xFF
    elif filter_type == 2:  # Up
        for i in range(n):
            row[i] = (row[i] + previous[i]) & 0xFF
    elif filter_type == 3:  # Average
        for i in range(n):
            left = row[i - pixel] if i >= pixel else 0
            row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
    elif filter_type == 4:  # Paeth
        for i in range(n):
            a = row[i - pixel] if i >= pixel else 0
            b = previous[i]
            c = previous[i - pixel] if i >= pixel else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    else:
        raise EngineError("cannot decode the image: unknown PNG filter type %d" % filter_type)
