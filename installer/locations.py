"""Where things live on each system: GIMP's user plug-in folders, and this product's own data,
log and token files.

Everything here is a function of (system, environment, home folder), never of the machine it
runs on, so the tests can ask about macOS and Windows from Linux."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Mapping, NamedTuple

APP = "swag-style-transfer"
LINUX, MACOS, WINDOWS = "linux", "macos", "windows"
# GIMPs in these sandboxes cannot start the engine (its Python is outside the sandbox) nor read
# its token file (~/.config is outside a Snap's view, and a Flatpak's unless given the home).
SANDBOXES = ("Flatpak", "Snap")

# GIMP 3 keeps one config folder per minor version (3.0, 3.2, ...); GIMP 2.10 uses "2.10".
_GIMP3_VERSION = re.compile(r"^3\.(\d+)$")
GIMP2_VERSION = "2.10"
# GIMPn_DIRECTORY replaces the whole config folder of that GIMP series (GIMP's own variables).
_OVERRIDES = {"3": "GIMP3_DIRECTORY", "2.10": "GIMP2_DIRECTORY"}


def this_system() -> str:
    if sys.platform == "darwin":
        return MACOS
    if sys.platform.startswith("win"):
        return WINDOWS
    return LINUX


class GimpFolder(NamedTuple):
    """One GIMP installation's user plug-ins folder."""

    series: str  # "3" or "2.10": decides the plug-in's file layout
    version: str  # "3.0", "3.2", "2.10", or "" where the folder serves any version of the series
    where: str  # native, Flatpak, Snap, GIMP3_DIRECTORY, GIMP2_DIRECTORY or --plugin-dir
    plugins: Path

    @property
    def label(self) -> str:
        name = f"GIMP {self.version or self.series}"
        return f"{name} ({self.where})"

    @property
    def sandboxed(self) -> bool:
        return self.where in SANDBOXES


def _xdg(env: Mapping[str, str], name: str, home: Path, default: str) -> Path:
    value = env.get(name)
    # The XDG spec says relative values are invalid and must be ignored.
    return Path(value) if value and Path(value).is_absolute() else home / default


def _windows_appdata(env: Mapping[str, str], home: Path, name: str, default: str) -> Path:
    return Path(env[name]) if env.get(name) else home / default


def config_home(env: Mapping[str, str], home: Path) -> Path:
    """Linux's per-user config folder ($XDG_CONFIG_HOME, by default ~/.config)."""
    return _xdg(env, "XDG_CONFIG_HOME", home, ".config")


def gimp_config_roots(system: str, env: Mapping[str, str], home: Path) -> list[tuple[str, Path]]:
    """(where, folder) pairs; each folder holds GIMP's per-version folders (3.0, 2.10, ...)."""
    if system == MACOS:
        return [("native", home / "Library" / "Application Support" / "GIMP")]
    if system == WINDOWS:
        return [("native", _windows_appdata(env, home, "APPDATA", "AppData/Roaming") / "GIMP")]
    return [
        ("native", config_home(env, home) / "GIMP"),
        ("Flatpak", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"),
        ("Snap", home / "snap" / "gimp" / "current" / ".config" / "GIMP"),
    ]


def _versions(root: Path) -> list[tuple[str, str]]:
    """(series, version) of the GIMP version folders present under root: 3.x by minor version, then 2.10."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        match = _GIMP3_VERSION.match(entry.name)
        if match:
            found.append(((0, int(match.group(1))), "3", entry.name))
        elif entry.name == GIMP2_VERSION:
            found.append(((1, 0), "2.10", entry.name))
    return [(series, version) for _, series, version in sorted(found)]


def find_gimp_folders(system: str, env: Mapping[str, str], home: Path, series: str | None = None) -> list[GimpFolder]:
    """The user plug-in folders of every GIMP 3.x and 2.10 whose config folder exists (GIMP
    creates it on its first start), plus GIMP3_DIRECTORY / GIMP2_DIRECTORY when set.
    `series` ("3" or "2.10") keeps only that series."""
    folders = []
    for where, root in gimp_config_roots(system, env, home):
        for found_series, version in _versions(root):
            # A native GIMP reads its variable instead of the default folder; Flatpak and Snap
            # GIMPs do not see the user's environment, so their folders still count.
            if where == "native" and env.get(_OVERRIDES[found_series]):
                continue
            folders.append(GimpFolder(found_series, version, where, root / version / "plug-ins"))
    for override_series, variable in _OVERRIDES.items():
        if env.get(variable):
            config = Path(env[variable]).expanduser().absolute()
            folders.append(GimpFolder(override_series, "", variable, config / "plug-ins"))
    return [f for f in folders if series is None or f.series == series]


class UserFolders(NamedTuple):
    data: Path  # the engine's default venv
    logs: Path  # the engine's log file


def user_folders(system: str, env: Mapping[str, str], home: Path) -> UserFolders:
    if system == MACOS:
        return UserFolders(home / "Library" / "Application Support" / APP, home / "Library" / "Logs" / APP)
    if system == WINDOWS:
        local = _windows_appdata(env, home, "LOCALAPPDATA", "AppData/Local") / APP
        return UserFolders(local, local)
    return UserFolders(_xdg(env, "XDG_DATA_HOME", home, ".local/share") / APP,
                       _xdg(env, "XDG_STATE_HOME", home, ".local/state") / APP)


def engine_token_file(system: str, env: Mapping[str, str], home: Path) -> Path:
    """The token file `swag serve` uses by default (swag_core.service.server.default_token_file), so
    that an engine started by hand, without --token-file, matches the installed plug-in."""
    if system == WINDOWS:
        base = Path(env.get("APPDATA") or home)
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "swag" / "engine-token"
