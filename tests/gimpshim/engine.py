"""A port where no engine listens, for the plug-in tests. The running engine they talk to is the
session's (tests/conftest.py)."""

import socket


def free_port() -> int:
    """A port nothing listens on (for "engine unreachable")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
