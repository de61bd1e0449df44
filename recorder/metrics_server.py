"""The `/metrics` (Prometheus text or OpenMetrics, negotiated) and `/healthz` endpoint."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

Health = Callable[[], str | None]
"""Returns None while healthy, else the reason it is not."""
Detail = Callable[[], str]
"""What else `/healthz` says either way (a recorder restart, messages it lost)."""


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics: " + format, *args)


def make_app(
    registry: CollectorRegistry, health: Health, detail: Detail | None = None
) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            body = encoder(registry)
            start_response("200 OK", [("Content-Type", content_type)])
            return [body]
        if path == "/healthz":
            problem = health()
            status = "200 OK" if problem is None else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            extra = detail() if detail is not None else ""
            text = (problem or "ok") + (f"; {extra}" if extra else "")
            return [text.encode() + b"\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return app


class MetricsServer:
    """Serves the app from a daemon thread, off mitmproxy's event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Health,
        detail: Detail | None = None,
    ):
        self._server = make_server(
            host,
            port,
            make_app(registry, health, detail),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rtrec-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
