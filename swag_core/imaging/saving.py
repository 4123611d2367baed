"""Image files out: the checks a command makes on an output path before any work, and an
atomic save. PIL only, no torch: the command line checks its output before the engine loads."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import SwagError


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an output whose format or folder would make the save fail."""
    from PIL import Image

    if path.suffix.lower() not in Image.registered_extensions():
        raise SwagError(f"cannot tell the image format of {path} from its extension; use .png, .jpg, .tif or .webp")
    if not path.parent.exists():
        raise SwagError(f"the output folder {path.parent} does not exist")


def save_image(image, path: Path) -> None:
    """Write atomically: a failed or interrupted save leaves no partial file behind."""
    from PIL import Image

    fmt = Image.registered_extensions()[path.suffix.lower()]
    if fmt == "JPEG" and image.mode in ("RGBA", "LA", "I;16"):
        raise SwagError(f"JPEG cannot hold a {image.mode} image (alpha or 16-bit); write a .png or .tif instead")
    # Not mkstemp: its file is mode 0600 whatever the umask, and os.replace would keep that mode.
    # A new file opened with 0666 gets the mode the user's umask gives every file they write.
    tmp = path.parent / f".swag-{secrets.token_hex(8)}{path.suffix}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
