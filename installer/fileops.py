"""Every change the installer makes to the disk goes through FileOps, so that --dry-run is
honoured everywhere and a re-run can tell (and say) that nothing needed changing."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

# Windows has no permission bits beyond read-only; comparing modes there would always differ.
POSIX = os.name == "posix"


class InstallError(Exception):
    """A failure the user can fix: the message says what happened and what to do next."""


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class FileOps:
    def __init__(self, dry_run: bool = False, say=print):
        self.dry_run = dry_run
        self.say = say
        self.changes: list[str] = []

    def _change(self, text: str) -> bool:
        """Record a change; returns True when it should really be made."""
        self.changes.append(text)
        self.say(("  would " if self.dry_run else "  ") + text)
        return not self.dry_run

    def mkdir(self, path: Path, mode: int = 0o755) -> None:
        if path.is_dir():
            return
        if path.exists():
            raise InstallError(f"{path} exists and is not a folder; move it away and run the installer again")
        if self._change(f"create folder {path}"):
            path.mkdir(parents=True, mode=mode)

    def put(self, path: Path, data: bytes, mode: int) -> None:
        """Write `data` with permission `mode`, only where the file differs. The write is atomic
        (a temp file in the same folder, then a rename): GIMP never sees half a plug-in, and a
        config with a token path is never readable by others, not even for a moment."""
        same_data = path.is_file() and path.read_bytes() == data
        if same_data:
            if POSIX and mode_of(path) != mode and self._change(f"set mode {mode:o} on {path}"):
                os.chmod(path, mode)
            return
        if not self._change(f"{'update' if path.exists() else 'write'} {path}"):
            return
        self.mkdir(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".swag-", dir=path.parent)  # created with mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def remove(self, path: Path) -> None:
        """Remove a file or a whole folder, if present."""
        if not (path.exists() or path.is_symlink()):
            return
        if not self._change(f"remove {path}"):
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    def remove_if_empty(self, path: Path) -> None:
        if path.is_dir() and not any(path.iterdir()) and self._change(f"remove empty folder {path}"):
            path.rmdir()
