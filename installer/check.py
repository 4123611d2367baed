"""`install.py --check`: every part from GIMP's folders to a real stylisation through the engine
service, each reported PASS or FAIL, with what to do for each FAIL."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from . import autostart, engine_token, plugin_files
from .engine_env import PYPI, PYTORCH_CUDA_INDEX_WINDOWS, neutral_cwd, run_python
from .fileops import POSIX, InstallError, mode_of
from .locations import LINUX, WINDOWS, GimpFolder, engine_token_file

ENGINE_START_TIMEOUT = 180  # seconds: importing torch on a cold disk can be slow
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Report:
    def __init__(self, rerun: str):
        self.rerun = rerun  # the command that installs again, for fixes
        self.failures = 0

    def passed(self, part: str, detail: str) -> None:
        print(f"PASS  {part}: {detail}", flush=True)

    def failed(self, part: str, problem: str, fix: str) -> None:
        self.failures += 1
        print(f"FAIL  {part}: {problem}\n      fix: {fix}", flush=True)

    def skipped(self, part: str, why: str) -> None:
        print(f"SKIP  {part}: {why}", flush=True)


def _check_files(report: Report, repo: Path, target: GimpFolder) -> None:
    part = f"plug-in for {target.label}"
    expected = plugin_files.expected_files(repo, target)
    missing = [path for path in expected if not path.is_file()]
    if missing:
        report.failed(part, f"{missing[0]} is missing", f"run `{report.rerun}`")
        return
    entry = plugin_files.entry_point(target)
    if POSIX and not mode_of(entry) & 0o100:
        report.failed(part, f"{entry} is not executable, so GIMP skips it without a message",
                      f"`chmod 755 {entry}` (or run `{report.rerun}`), then restart GIMP")
        return
    changed = [path for path, (source, _) in expected.items() if path.read_bytes() != source.read_bytes()]
    if changed:
        report.failed(part, f"{changed[0]} differs from this copy of the project", f"run `{report.rerun}` to upgrade")
        return
    report.passed(part, f"{entry} present and executable")


def _check_config(report: Report, target: GimpFolder, system: str) -> dict | None:
    part = f"config for {target.label}"
    path = plugin_files.plugin_folder(target) / plugin_files.CONFIG
    try:
        config = plugin_files.read_config(target)
    except InstallError as exc:
        report.failed(part, str(exc), f"run `{report.rerun}`")
        return None
    if POSIX and mode_of(path) & 0o077:
        report.failed(part, f"{path} is readable by other users (mode {mode_of(path):o})", f"`chmod 600 {path}`")
        return None
    if not Path(config["engine_python"]).is_file():
        report.failed(part, f"its engine Python {config['engine_python']} does not exist",
                      f"run `{report.rerun}` (add --python PATH to use an existing environment)")
        return None
    if target.sandboxed:
        problem = engine_token.copy_problem(plugin_files.plugin_folder(target), config,
                                            engine_token_file(system, os.environ, Path.home()))
        if problem:
            report.failed(part, f"{problem}: a {target.where} GIMP cannot reach the engine",
                          f"run `{report.rerun}`, which puts a copy of the engine's token beside the plug-in")
            return None
    report.passed(part, f"{path} (engine {config['engine_python']}, {config['engine_url']})")
    return config


def _check_sandbox_engine(report: Report, target: GimpFolder, config: dict, system: str) -> None:
    """A sandboxed GIMP cannot start the engine (its Python is outside the sandbox) nor restart
    it: one must run on its own, at the config's URL. Asked through the installed plug-in's own
    client, so that it is the engine that GIMP will reach (no proxy, and its token proved)."""
    part = f"engine for {target.label}"
    if autostart.running(os.environ, Path.home()):
        report.passed(part, f"the systemd user service {autostart.UNIT} runs it")
        return
    folder = plugin_files.plugin_folder(target)
    try:
        with _client_module(folder) as client:
            answer = client.EngineClient.from_config(str(folder)).health()
    except Exception as exc:  # the client's EngineError (a stranger holds the port), or anything else
        report.failed(part, str(exc), "see docs/install.md ('GIMP in a sandbox')")
        return
    if answer:
        report.passed(part, f"an engine answers at {config['engine_url']}; keep it running while you use GIMP")
        return
    at_login = f", or have it start at login: `{report.rerun} --autostart`" if system == LINUX else ""
    report.failed(part, f"a {target.where} GIMP cannot start the engine itself, and none answers at "
                        f"{config['engine_url']}",
                  f"start it outside GIMP and keep it running: `{config['engine_python']} -m swag_core serve "
                  f"--idle-timeout 0`{at_login}")


def _engine_info(python: Path) -> tuple:
    """(it worked, the output of `swag info` or its last error line): one start of the engine's
    Python answers both whether it imports torch and the engine, and which device it sees."""
    return run_python(python, ["-m", "swag_core", "info"])


def _check_device(report: Report, info: str, wanted: str, nvidia: bool, system: str) -> None:
    part = "device"
    seen = re.search(r"^device \(auto\): (\S+)", info, re.MULTILINE)
    if not seen:
        report.failed(part, "`swag info` did not name a device", f"run `{report.rerun}` to repair the engine")
        return
    device = seen.group(1)
    cuda_line = next((line.strip() for line in info.splitlines() if "CUDA" in line), "")
    index = PYTORCH_CUDA_INDEX_WINDOWS if system == WINDOWS else PYPI
    cuda_fix = (f"update the NVIDIA driver until `nvidia-smi` works, and install torch with CUDA: "
                f"`{report.rerun} --torch-index-url {index}`; to use the CPU on purpose: `{report.rerun} --device cpu`")
    if wanted in ("cuda", "gpu") and not device.startswith("cuda") and not (wanted == "gpu" and device == "mps"):
        report.failed(part, f"the config asks for {wanted} but the engine finds only {device} ({cuda_line})", cuda_fix)
    elif wanted == "mps" and device != "mps":
        report.failed(part, f"the config asks for mps but the engine finds only {device}",
                      f"MPS needs a Mac with Apple silicon; `{report.rerun} --device cpu`")
    elif wanted == "auto" and nvidia and not device.startswith("cuda"):
        report.failed(part, f"CUDA not found: an NVIDIA GPU is present but the engine's torch cannot use it "
                            f"({cuda_line})", cuda_fix)
    else:
        report.passed(part, f"the engine computes on {device} (config: {wanted})")


class _Engine:
    """`swag serve` on a free loopback port, for the check only; stopped afterwards."""

    def __init__(self, python: Path, config: dict, token_file: Path):
        self.cmd = [str(python), "-m", "swag_core", "serve", "--host", "127.0.0.1", "--port", "0",
                    "--token-file", str(token_file), "--device", config["device"], "--idle-timeout", "600"]
        self.lines: list = []
        self.url = None
        self.ready = threading.Event()
        self.process = None

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            found = re.match(r"ready on (\S+)", line)
            if found and not self.url:
                self.url = found.group(1)
                self.ready.set()
        self.ready.set()  # the engine exited: stop waiting

    def launch(self) -> None:
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        cwd=neutral_cwd(self.cmd[0]))
        threading.Thread(target=self._read, daemon=True).start()

    def wait_ready(self) -> str:
        self.ready.wait(ENGINE_START_TIMEOUT)
        if not self.url:
            tail = " | ".join(self.lines[-3:]) or "no output"
            status = self.process.poll()
            why = f"exit status {status}" if status is not None else f"not ready after {ENGINE_START_TIMEOUT} s"
            raise InstallError(f"`{' '.join(self.cmd)}` did not start ({why}): {tail}")
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def _client_module(folder: Path):
    """The installed plug-in's own client (what GIMP will run), imported from its folder."""
    path = folder / plugin_files.CLIENT
    spec = importlib.util.spec_from_file_location("swag_client", path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("swag_client")
    sys.modules["swag_client"] = module
    sys.path.insert(0, str(folder))  # the client may import its sibling modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(folder))
        if saved is None:
            sys.modules.pop("swag_client", None)
        else:
            sys.modules["swag_client"] = saved


def _test_images(client) -> tuple:
    """A 64x48 gradient to stylise and a 32x32 striped style, as PNG bytes."""
    content = bytes(v for y in range(48) for x in range(64) for v in (x * 4, y * 5, 128))
    style = bytes(v for y in range(32) for x in range(32) for v in ((255, 40, 0) if (x // 4) % 2 else (0, 60, 255)))
    return client.encode_png(64, 48, 3, 8, content), client.encode_png(32, 32, 3, 8, style), content


def _check_stylise(report: Report, folder: Path, url: str | None, log_file: str) -> None:
    part = "stylisation through the service"
    start = time.monotonic()
    try:
        with _client_module(folder) as client:
            content_png, style_png, content = _test_images(client)
            engine = client.EngineClient.from_config(str(folder))
            if url:  # the engine this check started, rather than the configured one
                engine.url = url.rstrip("/")
            out = engine.stylize(content_png, style_png, {"size": 64, "iterations": 2, "seed": 0},
                                 progress=lambda fraction, text: None, should_cancel=lambda: False)
            width, height, channels, bit_depth, raw = client.decode_png(out)
    except Exception as exc:  # the client's EngineError, or anything else: report, never crash
        report.failed(part, f"{type(exc).__name__}: {exc}",
                      f"read the engine's log {log_file} and docs/install.md ('engine will not start')")
        return
    if (width, height, channels, bit_depth) != (64, 48, 3, 8) or raw == content:
        report.failed(part, f"the result is {width}x{height}, {channels} channels, {bit_depth} bit"
                            f"{', unchanged' if raw == content else ''}; expected a changed 64x48 RGB image",
                      "report this as a bug, with the output of --check")
        return
    report.passed(part, f"a 64x48 image stylised in {time.monotonic() - start:.1f} s")


def run_check(targets: list, repo: Path, system: str, nvidia: bool, rerun: str) -> int:
    report = Report(rerun)
    if targets:
        report.passed("GIMP plug-in folders", "; ".join(f"{t.label} {t.plugins}" for t in targets))
    else:
        report.failed("GIMP plug-in folders", "no GIMP 3.x or 2.10 user folder found",
                      "start GIMP once (it creates its folder), then run the installer again; "
                      "or install into a given folder with --plugin-dir DIR")
    configs = []
    for target in targets:
        _check_files(report, repo, target)
        config = _check_config(report, target, system)
        if config:
            configs.append((target, config))
            if target.sandboxed:
                _check_sandbox_engine(report, target, config, system)
    engine_parts = ("engine Python", "device", "engine starts", "stylisation through the service")
    if not configs:
        for part in engine_parts:
            report.skipped(part, "needs an installed plug-in with a readable config (see above)")
        return _summary(report)

    target, config = configs[0]
    python = Path(config["engine_python"])
    folder = plugin_files.plugin_folder(target)
    local = urlsplit(config["engine_url"]).hostname in LOOPBACK
    engine = _Engine(python, config, plugin_files.token_path(target, config)) if local else None
    print(f"      (checking the engine of {target.label}; importing torch takes a few seconds)", flush=True)
    try:
        if engine:
            engine.launch()  # it starts while `swag info` runs: both spend seconds importing torch
        ok, info = _engine_info(python)
        if not ok:
            report.failed("engine Python", f"{python} cannot run the engine: {info}",
                          f"run `{rerun}` to repair it (or give --python PATH of an environment that has it)")
            for part in engine_parts[1:]:
                report.skipped(part, "needs the engine Python (see above)")
            return _summary(report)
        report.passed("engine Python", f"{python}: {', '.join(info.splitlines()[:2])}")
        _check_device(report, info, config["device"], nvidia, system)
        if not engine:
            report.skipped("engine starts", f"the config names a remote engine ({config['engine_url']}); "
                                            f"it must be started on that machine")
            _check_stylise(report, folder, None, config["log_file"])
            return _summary(report)
        try:
            url = engine.wait_ready()
        except InstallError as exc:
            report.failed("engine starts", str(exc), "the engine's last lines above say why; see docs/install.md, "
                                                     "'engine will not start'")
            report.skipped("stylisation through the service", "needs a running engine")
            return _summary(report)
        report.passed("engine starts", f"ready on {url}")
        _check_stylise(report, folder, url, config["log_file"])
    finally:
        if engine:
            engine.stop()
    return _summary(report)


def _summary(report: Report) -> int:
    if report.failures:
        print(f"{report.failures} part(s) FAILED; each FAIL above says what to do.")
        return 1
    print("All parts PASS: restart GIMP and use Filters > Artistic > SWAG Style Transfer...")
    return 0
