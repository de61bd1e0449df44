"""Ports on 127.0.0.1 for the servers a test starts: the product's own helper."""

from __future__ import annotations

from rtrec.net import free_port

__all__ = ["free_port"]
