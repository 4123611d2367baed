"""A real `swag serve` for the plug-in tests (through tests/engine_process.py, which the service's
own tests use), and a port where no engine listens."""

import contextlib
import socket
from pathlib import Path

from engine_process import start_engine


@contextlib.contextmanager
def running_engine(workdir: Path):
    """Yields (url, token) of a running engine; stops it (and waits) afterwards."""
    engine = start_engine(workdir, "--idle-timeout", "0")
    try:
        yield engine.url, engine.token
    finally:
        engine.stop()


def free_port() -> int:
    """A port nothing listens on (for "engine unreachable")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
