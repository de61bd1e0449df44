"""`rtrec proxy`: mitmproxy with only the addons a relay needs, feeding one recorder process.

With `workers` > 1 this process only supervises: the recorder process and N relay processes
(`python -m proxy.master`) that listen on the same port with SO_REUSEPORT, so the kernel spreads
connections over them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from mitmproxy import exceptions
from mitmproxy.addons import core, errorcheck, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master
from mitmproxy.options import Options

from handover.config import SHUTDOWN_REASON, RecorderConfig, socket_path
from handover.options import ADDON_OPTIONS
from proxy import mitm_internals
from proxy.addon import Relay
from proxy.recorder_process import RecorderProcess, RecorderStartError

logger = logging.getLogger(__name__)
GOING_AWAY = 1001  # RFC 6455: "an endpoint is going away, such as a server going down"
# Long enough for close frames to reach both peers on a loaded machine; a stop is never held
# up longer than this by peers that do not read.
CLOSE_FLUSH_TIMEOUT_S = 2.0

WORKER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ProxyConfig:
    """`rtrec proxy`'s flags: `CLI_OPTIONS` (tests/test_options.py checks the fields)."""

    listen_host: str
    listen_port: int
    upstream: str
    mode: str
    db: str
    metrics_host: str
    metrics_port: int
    record: str
    pricing: str
    retention_days: int
    queue_size: int
    flush_interval_ms: int
    spill_mb: int
    redact_pii: str
    metric_properties: str
    metric_property_values: str
    observe_calls: str
    raw_relay: str
    workers: int

    def recorder_config(self) -> RecorderConfig:
        return RecorderConfig.of(partial(getattr, self), socket_path(), self.listen_port)

    def mitmproxy_options(self, recorder_socket: str) -> dict[str, Any]:
        mode = f"reverse:{self.upstream}" if self.mode == "reverse" else "regular"
        return {
            "mode": [mode],
            # Connect upstream when the request is in: an unreachable upstream is then an HTTP
            # 502 for the client, not a connection closed without a word.
            "connection_strategy": "lazy",
            "listen_host": self.listen_host,
            "listen_port": self.listen_port,
            **{
                option.mitmproxy_name: getattr(self, option.dest)
                for option in ADDON_OPTIONS
                if option.cli
            },
            "rtrec_recorder_socket": recorder_socket,
        }


class ProxyStartError(Exception):
    """The proxy cannot start with this configuration; the message is one line for the user."""


def check_can_listen(host: str, port: int, flag: str) -> None:
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
    check_can_listen(config.listen_host, config.listen_port, "--listen-host/--listen-port")
    if config.metrics_port:
        if config.metrics_port == config.listen_port:
            raise ProxyStartError(
                f"--metrics-port: {config.metrics_port} is already the --listen-port"
            )
        check_can_listen(config.metrics_host, config.metrics_port, "--metrics-host/--metrics-port")


@contextmanager
def recorder_process(config: ProxyConfig) -> Iterator[RecorderProcess]:
    """The recorder process, launched (call `ready()` before traffic), stopped after the relays."""
    process = RecorderProcess(config.recorder_config())
    process.launch()
    try:
        yield process
    finally:
        process.stop()


def ready(process: RecorderProcess) -> None:
    try:
        process.wait_ready()
    except RecorderStartError as exc:
        raise ProxyStartError(str(exc)) from exc


def serve(config: ProxyConfig, on_ready: Callable[[], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM; on the way out the recorder writes every queued record.
    `on_ready` runs once everything has started, just before the first client is served."""
    check_listen_addresses(config)
    if config.workers > 1:
        run_workers(config, on_ready)
    else:
        asyncio.run(run_proxy(config, on_ready=on_ready))


async def run_proxy(
    config: ProxyConfig,
    relay: Relay | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """One relay process and its recorder process."""

    def listening() -> None:
        _announce(config)
        if on_ready is not None:
            on_ready()

    with recorder_process(config) as process:
        ready(process)
        await run_relay(config, process.config.socket, relay, listening)
    logger.info("rtrec proxy stopped; the recorder wrote its queue")


async def run_relay(
    config: ProxyConfig,
    recorder_socket: str,
    relay: Relay | None = None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """One relay: mitmproxy's event loop, handing frames to the recorder at `recorder_socket`.
    `on_listening` runs once the listen socket is bound (clients may connect from then on)."""
    master = configured_relay(config, recorder_socket, relay, on_listening)
    # What is loaded by now lives as long as the process: keep it out of the collector's full
    # passes, each of which otherwise stops the event loop for tens of milliseconds.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancellation)
    stop = _Stop(master)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.request)
    await master.run()


def configured_relay(
    config: ProxyConfig,
    recorder_socket: str,
    relay: Relay | None = None,
    on_listening: Callable[[], None] | None = None,
) -> Master:
    """The relay's mitmproxy, its options set and checked, ready to `run()`."""
    relay = relay or Relay()
    master = relay_master(relay, _WhenListening(on_listening))
    # Only where rtrec runs mitmproxy itself: stock `mitmdump -s` keeps mitmproxy's own layer.
    relay.raw_relay_available = mitm_internals.use_raw_relay(relay)
    try:
        # `confdir` too: mitmproxy's TlsConfig loads its certificate store only when that option
        # changes or in its `running` hook, which comes after the listen socket is bound; a
        # request arriving in between would find no store, crash the hook and stop the proxy.
        master.options.update(
            **config.mitmproxy_options(recorder_socket), confdir=master.options.confdir
        )
    except exceptions.OptionsError as exc:
        raise ProxyStartError(str(exc)) from exc
    return master


class _WhenListening:
    """mitmproxy runs the `running` hook after its proxy servers are bound (Master.run): from
    then on a client's connection is accepted."""

    def __init__(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback

    def running(self) -> None:
        if self._callback is not None:
            self._callback()


class _Stop:
    """The first SIGINT/SIGTERM stops listening (a new client is refused rather than accepted
    and cut), closes live WebSockets with 1001 (going away) on both sides, waits for those
    closes to go out, then stops mitmproxy; a second one stops it at once."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.task: asyncio.Task[None] | None = None

    def request(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._close_then_stop())
        else:
            self.master.shutdown()

    async def _close_then_stop(self) -> None:
        try:
            proxyserver = self.master.addons.get("proxyserver")
            await _stop_listening(proxyserver)
            closed = await mitm_internals.close_websockets_and_wait(
                proxyserver, GOING_AWAY, SHUTDOWN_REASON, CLOSE_FLUSH_TIMEOUT_S
            )
            if closed:
                logger.info("closed %d live WebSocket(s) with %d", closed, GOING_AWAY)
        finally:
            self.master.shutdown()


async def _stop_listening(server: proxyserver.Proxyserver) -> None:
    """Close the listen sockets and nothing else: with no mode left, mitmproxy stops its
    servers, whose connections live on (asyncio's `Server.close` leaves them open)."""
    try:
        await server.servers.update([])
    except Exception:  # the stop goes on: clients that connect now are cut as before
        logger.warning("could not stop listening before closing the sessions", exc_info=True)


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """At shutdown mitmproxy cancels the tasks of open connections, and asyncio reports each
    cancelled client handler as an error with a traceback: that is the stop working, not a bug."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        logger.debug("connection handler cancelled at shutdown")
        return
    loop.default_exception_handler(context)


def relay_master(*addons: Any) -> Master:
    """mitmproxy with only what a relay needs (mitmdump loads ~30 addons), plus `addons`."""
    master = Master(Options(), with_termlog=False)
    master.addons.add(
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        errorcheck.ErrorCheck(repeat_errors_on_stderr=True),
        *addons,
    )
    return master


def _announce(config: ProxyConfig) -> None:
    logger.info(
        "rtrec proxy on http://%s:%d (%s%s%s)",
        config.listen_host,
        config.listen_port,
        config.mode,
        f" to {config.upstream}" if config.mode == "reverse" else "",
        f", {config.workers} relay processes" if config.workers > 1 else "",
    )
    if config.mode == "reverse":
        logger.info(
            "point clients at it: OPENAI_BASE_URL=http://%s:%d/v1",
            config.listen_host,
            config.listen_port,
        )


def run_workers(config: ProxyConfig, on_ready: Callable[[], None] | None = None) -> None:
    """Supervise the recorder and `config.workers` relay processes sharing the listen port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ProxyStartError(f"--workers: relay workers need SO_REUSEPORT, which {os.name} lacks")
    with recorder_process(config) as process:
        ready(process)
        relay_config = dataclasses.replace(config, workers=1)
        payload = json.dumps(dataclasses.asdict(relay_config))
        listening, told = os.pipe()
        command = [sys.executable, "-m", "proxy.master", process.config.socket, payload, str(told)]
        relays = [
            subprocess.Popen(command, start_new_session=True, pass_fds=(told,))
            for _ in range(config.workers)
        ]
        os.close(told)
        try:
            _wait_until_listening(listening, relays)
        except BaseException:  # a start-up error, or Ctrl-C: the relays run in their own sessions
            _stop_relays(relays, signal.SIGTERM)
            raise
        finally:
            os.close(listening)
        _announce(config)
        if on_ready is not None:
            on_ready()
        _stop_relays(relays, _wait_for_signal_or_exit(relays))


def _wait_until_listening(pipe: int, relays: list[subprocess.Popen[bytes]]) -> None:
    """Every relay writes one byte to `pipe` once it listens: announce only when all of them
    do, so that the kernel spreads the very first connections over all of them."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    received = 0
    while received < len(relays):
        if not select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise ProxyStartError(
                f"--workers: {len(relays) - received} relay process(es) did not listen within "
                f"{WORKER_START_TIMEOUT_S:.0f} s"
            )
        chunk = os.read(pipe, len(relays))
        if not chunk:  # every relay has closed its end: some exited before they listened
            raise ProxyStartError("--workers: a relay process exited during start-up")
        received += len(chunk)


def _stop_relays(relays: list[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for relay in relays:
        if relay.poll() is None:
            relay.send_signal(sig)
    for relay in relays:
        relay.wait()


def _wait_for_signal_or_exit(relays: list[subprocess.Popen[bytes]]) -> signal.Signals:
    """Block until SIGINT/SIGTERM arrives or a relay exits; the signal to pass on."""
    received: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signal.Signals(signum)))
    while not received:
        if any(relay.poll() is not None for relay in relays):
            logger.error("a relay process exited; stopping the others")
            return signal.SIGTERM
        time.sleep(0.2)
    return received[0]


def _listen_with_reuse_port() -> None:
    """mitmproxy binds with `asyncio.start_server(handler, host, port)` and no way to ask for
    SO_REUSEPORT: relay workers add it, so that every one of them can bind the same port."""
    start_server = asyncio.start_server

    async def reuse_port_server(*args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs.setdefault("reuse_port", True)
        return await start_server(*args, **kwargs)

    asyncio.start_server = reuse_port_server


def worker_main(argv: list[str]) -> int:
    """A relay worker started by `run_workers`: the recorder socket, the JSON config and the
    pipe on which it says it listens."""
    recorder_socket, payload, told = argv
    config = ProxyConfig(**json.loads(payload))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mitmproxy").setLevel(logging.WARNING)
    _listen_with_reuse_port()

    def listening() -> None:
        os.write(int(told), b"1")
        os.close(int(told))

    asyncio.run(run_relay(config, recorder_socket, on_listening=listening))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
