"""`rtrec proxy`: mitmproxy in-process with only the addons a relay needs, plus the recorder."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from dataclasses import dataclass
from typing import Any

from mitmproxy import exceptions
from mitmproxy.addons import core, errorcheck, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master
from mitmproxy.options import Options

from proxy.addon import Recorder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyConfig:
    listen_host: str
    listen_port: int
    upstream: str
    mode: str
    db: str
    record: str
    pricing: str
    metrics_host: str
    metrics_port: int
    retention_days: int
    queue_size: int
    flush_interval_ms: int

    def mitmproxy_options(self) -> dict[str, Any]:
        mode = f"reverse:{self.upstream}" if self.mode == "reverse" else "regular"
        return {
            "mode": [mode],
            "listen_host": self.listen_host,
            "listen_port": self.listen_port,
            "rtrec_db": self.db,
            "rtrec_record": self.record,
            "rtrec_pricing": self.pricing,
            "rtrec_metrics_host": self.metrics_host,
            "rtrec_metrics_port": self.metrics_port,
            "rtrec_retention_days": self.retention_days,
            "rtrec_queue_size": self.queue_size,
            "rtrec_flush_interval_ms": self.flush_interval_ms,
        }


class ProxyStartError(Exception):
    """The proxy cannot start with this configuration; the message is one line for the user."""


def _check_can_listen(host: str, port: int, flag: str) -> None:
    """Fail now with one line, rather than later with mitmproxy's multi-line startup report."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ProxyStartError(f"{flag}: cannot listen on {host}:{port}: {exc.strerror}") from exc


def check_listen_addresses(config: ProxyConfig) -> None:
    """The client and metrics addresses are free and distinct."""
    _check_can_listen(config.listen_host, config.listen_port, "--listen-host/--listen-port")
    if config.metrics_port:
        if config.metrics_port == config.listen_port:
            raise ProxyStartError(
                f"--metrics-port: {config.metrics_port} is already the --listen-port"
            )
        _check_can_listen(config.metrics_host, config.metrics_port, "--metrics-host/--metrics-port")


async def run_proxy(config: ProxyConfig, recorder: Recorder | None = None) -> None:
    """Run until SIGINT/SIGTERM; on the way out the recorder flushes every queued record."""
    check_listen_addresses(config)
    master = Master(Options(), with_termlog=False)
    master.addons.add(
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        errorcheck.ErrorCheck(repeat_errors_on_stderr=True),
        recorder or Recorder(),
    )
    try:
        master.options.update(**config.mitmproxy_options())
    except exceptions.OptionsError as exc:
        raise ProxyStartError(str(exc)) from exc
    # What is loaded by now lives as long as the process: keep it out of the collector's full
    # passes, each of which otherwise stops the event loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    logger.info(
        "rtrec proxy on http://%s:%d (%s%s)",
        config.listen_host,
        config.listen_port,
        config.mode,
        f" to {config.upstream}" if config.mode == "reverse" else "",
    )
    if config.mode == "reverse":
        logger.info(
            "point clients at it: OPENAI_BASE_URL=http://%s:%d/v1",
            config.listen_host,
            config.listen_port,
        )
    await master.run()
    logger.info("rtrec proxy stopped; the recorder flushed its queue")
