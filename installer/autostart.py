"""`install.py --autostart` (Linux): the engine as a systemd user service that starts at login and
keeps running (`--idle-timeout 0`), for a GIMP that cannot start it itself (Flatpak, Snap). The
plug-in starts the engine only where it can see the engine's Python, and restarts nothing: an
engine that it did not start must stay up on its own.

The unit runs `ENGINE_PYTHON -m swag_core serve` on the config's URL with the engine's default
token file, whose copies the sandboxed plug-ins hold. Its output goes to the journal
(`journalctl --user -u swag-engine`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from .fileops import FileOps, InstallError
from .locations import config_home

UNIT = "swag-engine.service"
DEFAULT_PORT = 8765  # swag serve's


def unit_file(env: Mapping[str, str], home: Path) -> Path:
    return config_home(env, home) / "systemd" / "user" / UNIT


def _quote(arg: str) -> str:
    """One ExecStart= argument, quoted as systemd reads it (systemd.syntax: quotes and
    backslashes; % and $ are specifiers and variables, doubled to stay literal)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if any(c in arg for c in ' \t"\'\\'):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def unit_text(python: Path, engine_url: str, device: str) -> str:
    url = urlsplit(engine_url)
    command = [str(python), "-m", "swag_core", "serve", "--host", url.hostname, "--port",
               str(url.port or DEFAULT_PORT), "--device", device, "--idle-timeout", "0"]
    return ("[Unit]\n"
            "Description=SWAG Style Transfer engine for GIMP (swag serve)\n"
            "\n"
            "[Service]\n"
            f"ExecStart={' '.join(_quote(a) for a in command)}\n"
            # Not the home folder: `-m swag_core` would import a swag_core folder found there first.
            f"WorkingDirectory={python.parent}\n"
            "Restart=on-failure\n"
            "RestartSec=10\n"
            "\n"
            "[Install]\n"
            "WantedBy=default.target\n")


def _systemctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True)


def enable(ops: FileOps, python: Path, engine_url: str, device: str, env: Mapping[str, str], home: Path) -> None:
    """Write the unit, enable it and (re)start the engine with it."""
    by_hand = f"`{python} -m swag_core serve --idle-timeout 0` at login (docs/install.md)"
    if not shutil.which("systemctl"):
        raise InstallError(f"--autostart needs systemd (no systemctl here); start the engine another way: {by_hand}")
    changes = len(ops.changes)
    ops.put(unit_file(env, home), unit_text(python, engine_url, device).encode("utf-8"), 0o644)
    changed = len(ops.changes) > changes
    if ops.dry_run:
        print(f"  would run: systemctl --user enable --now {UNIT}")
        return
    steps = [("daemon-reload",), ("enable", UNIT), ("restart", UNIT)] if changed else [("enable", "--now", UNIT)]
    for step in steps:
        result = _systemctl(*step)
        if result.returncode != 0:
            why = (result.stderr or result.stdout).strip().splitlines()
            raise InstallError(f"`systemctl --user {' '.join(step)}` failed ({why[-1] if why else result.returncode}); "
                               f"run the installer from your desktop session, or start the engine with {by_hand}")
    print(f"  the engine runs as the systemd user service {UNIT} (log: journalctl --user -u {UNIT})")


def disable(ops: FileOps, env: Mapping[str, str], home: Path) -> None:
    """Stop and remove the unit, if the installer set it up."""
    path = unit_file(env, home)
    if not path.is_file():
        return
    if not ops.dry_run and shutil.which("systemctl"):
        _systemctl("disable", "--now", UNIT)  # already stopped or unknown to systemd: nothing to undo
    ops.remove(path)
    if not ops.dry_run and shutil.which("systemctl"):
        _systemctl("daemon-reload")


def running(env: Mapping[str, str], home: Path) -> bool:
    """The unit is installed and systemd says the engine runs."""
    return (unit_file(env, home).is_file() and shutil.which("systemctl") is not None
            and _systemctl("is-active", "--quiet", UNIT).returncode == 0)
