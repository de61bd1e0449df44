"""Ports on 127.0.0.1 for the servers rtrec, its tests and its benchmarks start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick); bind it soon, it is not reserved."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
