"""Which plug-in files go where, with the modes GIMP requires, and the engine config next to them.

GIMP 3 runs PLUGINS/NAME/NAME.py only when the file is executable and its name matches its
folder; otherwise it skips the plug-in without a word. GIMP 2.10 runs executables directly in
PLUGINS; its plug-in finds the client and the shared modules in a library folder beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import engine_token
from .fileops import FileOps, InstallError
from .locations import GimpFolder

PLUGIN = "swag_style_transfer"
ENTRY_210 = "swag_style_transfer_210.py"
LIB_210 = "swag_style_transfer_210_lib"
CLIENT = "swag_client.py"
CONFIG = "swag_engine.json"
CONFIG_KEYS = ("engine_python", "engine_url", "token_file", "device", "log_file")

EXECUTABLE = 0o755
READABLE = 0o644
PRIVATE = 0o600  # the config names the token file: the user's alone


def sources(repo: Path) -> tuple[Path, list[Path]]:
    """The GIMP 3 entry point and its sibling modules (the client and the shared code) in the repo."""
    folder = repo / "gimp_plugin" / PLUGIN
    entry = folder / f"{PLUGIN}.py"
    if not entry.is_file() or not (folder / CLIENT).is_file() or not (repo / "gimp_plugin" / ENTRY_210).is_file():
        raise InstallError(f"the plug-in sources are incomplete in {repo / 'gimp_plugin'}; run the installer "
                           f"from a complete copy of the project")
    return entry, sorted(p for p in folder.glob("*.py") if p != entry)


def plugin_folder(target: GimpFolder) -> Path:
    """The folder that holds swag_client.py and swag_engine.json for this GIMP."""
    return target.plugins / (PLUGIN if target.series == "3" else LIB_210)


def entry_point(target: GimpFolder) -> Path:
    if target.series == "3":
        return target.plugins / PLUGIN / f"{PLUGIN}.py"
    return target.plugins / ENTRY_210


def owned_paths(target: GimpFolder) -> list[Path]:
    """Everything the installer puts in a plug-ins folder (what --uninstall removes)."""
    if target.series == "3":
        return [target.plugins / PLUGIN]
    return [target.plugins / ENTRY_210, target.plugins / LIB_210]


def expected_files(repo: Path, target: GimpFolder) -> dict[Path, tuple[Path, int]]:
    """{installed path: (source path, mode)} for one GIMP (the config is written separately)."""
    entry, modules = sources(repo)
    entry_source = entry if target.series == "3" else repo / "gimp_plugin" / ENTRY_210
    files = {entry_point(target): (entry_source, EXECUTABLE)}
    for module in modules:
        files[plugin_folder(target) / module.name] = (module, READABLE)
    return files


def config_data(config: dict) -> bytes:
    return (json.dumps({key: config[key] for key in CONFIG_KEYS}, indent=2) + "\n").encode("utf-8")


def install(ops: FileOps, repo: Path, target: GimpFolder, config: dict, token: str | None) -> None:
    """Copy the plug-in into one GIMP's plug-ins folder and write its config, with `token` (the
    engine's) beside it for a GIMP in a sandbox; a module the project no longer ships is removed,
    so an upgrade leaves no stale code behind."""
    files = expected_files(repo, target)
    ops.mkdir(plugin_folder(target))
    for path, (source, mode) in files.items():
        ops.put(path, source.read_bytes(), mode)
    for stale in sorted(plugin_folder(target).glob("*.py")):
        if stale not in files:
            ops.remove(stale)
    ops.put(plugin_folder(target) / CONFIG, config_data(config), PRIVATE)
    engine_token.put_copy(ops, plugin_folder(target), token)


def token_path(target: GimpFolder, config: dict) -> Path:
    """The token file a config names; a relative one is beside the config (engine_token.COPY)."""
    return plugin_folder(target) / config["token_file"]  # an absolute token_file stays as it is


def read_config(target: GimpFolder) -> dict:
    """The installed config of one GIMP; InstallError says what is wrong with it."""
    path = plugin_folder(target) / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InstallError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise InstallError(f"cannot read {path}: {exc}") from None
    missing = [key for key in CONFIG_KEYS if not isinstance(config, dict) or not isinstance(config.get(key), str)]
    if missing:
        raise InstallError(f"{path} lacks {', '.join(missing)}")
    return config
