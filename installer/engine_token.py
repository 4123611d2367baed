"""The engine's access token, as the installer handles it: the engine's own token file (the one
`swag serve` uses by default), made here when it is missing so that it can be copied, and a copy
of it beside the plug-in of a GIMP in a Flatpak or Snap sandbox, which cannot read the engine's
file. The config names the copy relative to its own folder, so it is found under whatever path
the sandbox gives the plug-in's folder."""

from __future__ import annotations

import secrets
from pathlib import Path

from .fileops import FileOps, InstallError

COPY = "engine-token"  # beside swag_engine.json
PRIVATE = 0o600


def ensure(ops: FileOps, path: Path) -> str:
    """The engine's token from its file, or a new one written there as `swag serve` makes it
    (swag_core.service.server.load_token: random, URL-safe, readable by its owner only)."""
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise InstallError(f"the engine's token file {path} is empty; delete it and run the installer again")
        return token
    token = secrets.token_urlsafe(32)
    ops.put(path, (token + "\n").encode("ascii"), PRIVATE)
    return token


def put_copy(ops: FileOps, folder: Path, token: str | None) -> None:
    """The copy for a sandboxed GIMP's plug-in folder; none (and none left over) for another."""
    if token is None:
        ops.remove(folder / COPY)
    else:
        ops.put(folder / COPY, (token + "\n").encode("ascii"), PRIVATE)


def copy_problem(folder: Path, config: dict, engine_file: Path) -> str | None:
    """Why a sandboxed GIMP's plug-in cannot use the engine's token, or None."""
    if config["token_file"] != COPY:
        return (f"its config names the token file {config['token_file']}, which GIMP in a sandbox cannot read "
                f"(it needs a copy beside the plug-in)")
    copy = folder / COPY
    if not copy.is_file():
        return f"{copy} is missing"
    if engine_file.is_file() and copy.read_text(encoding="utf-8").strip() != \
            engine_file.read_text(encoding="utf-8").strip():
        return f"{copy} differs from the engine's token {engine_file}, so the engine would refuse the plug-in"
    return None
