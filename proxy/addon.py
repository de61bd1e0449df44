"""The mitmproxy addon: relays Realtime WebSockets untouched and queues what they carry for storage.

Loads into `rtrec proxy` and into stock mitmproxy run from rtrec's environment:
`mitmdump -q -s proxy/addon.py --mode reverse:https://api.openai.com`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url

from proxy import protocol
from proxy.metrics import Metrics
from proxy.metrics_server import MetricsServer
from proxy.observe import observe
from proxy.pricing import PricingError, price_table
from proxy.redact import api_key, key_fingerprint, redact_url, split_subprotocols
from proxy.session import RECORD_MODES, SessionRecorder
from proxy.tags import SessionTags, session_tags
from storage.db import DEFAULT_DB_URL, DatabaseURLError, make_engine, upgrade
from storage.ids import uuid7
from storage.records import EventRecord, Record, SessionOpened
from storage.writer import Writer

logger = logging.getLogger(__name__)
TAGS_KEY = "rtrec_tags"


class Recorder:
    """Records every `/realtime` WebSocket; never changes, delays or drops a frame."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.metrics = Metrics(registry or CollectorRegistry())
        self.writer: Writer | None = None
        self.sessions: dict[str, SessionRecorder] = {}
        self.prices = price_table(None)
        self._metrics_server: MetricsServer | None = None
        self._rolling_back = False
        self.metrics.watch(lambda: self.writer.depth if self.writer else 0, self._active_by_model)

    def load(self, loader: Loader) -> None:
        loader.add_option("rtrec_db", str, DEFAULT_DB_URL, "SQLAlchemy URL of the store.")
        loader.add_option(
            "rtrec_record",
            str,
            "full",
            "What to record: full (events, text, audio), text (no audio), metadata (no content).",
            choices=RECORD_MODES,
        )
        loader.add_option(
            "rtrec_pricing", str, "", "TOML file that overrides or adds model prices."
        )
        loader.add_option(
            "rtrec_metrics_host", str, "127.0.0.1", "Where /metrics and /healthz listen."
        )
        loader.add_option("rtrec_metrics_port", int, 9464, "Metrics port; 0 turns it off.")
        loader.add_option(
            "rtrec_retention_days", int, 0, "Delete sessions older than this; 0 keeps all."
        )
        loader.add_option(
            "rtrec_queue_size", int, 100_000, "Messages buffered before the recorder drops."
        )
        loader.add_option(
            "rtrec_flush_interval_ms", int, 250, "Longest a record waits before its commit."
        )

        # mitmproxy undoes a refused update by configuring again with the previous values: the
        # ones the recorder already runs on. Opening a store for them (the default ./rtrec.db at
        # start) would create a stray file and hide the real error behind a second one.
        loader.master.options.errored.connect(self._options_refused)

    def _options_refused(self, exc: Exception) -> None:
        self._rolling_back = True

    def configure(self, updated: set[str]) -> None:
        if self._rolling_back:
            self._rolling_back = False
            return
        opts = ctx.options
        if opts.rtrec_queue_size < 1:
            raise exceptions.OptionsError("rtrec_queue_size must be at least 1")
        if opts.rtrec_flush_interval_ms < 1:
            raise exceptions.OptionsError("rtrec_flush_interval_ms must be at least 1")
        if not 0 <= opts.rtrec_metrics_port <= 65535:
            raise exceptions.OptionsError("rtrec_metrics_port must be between 0 and 65535")
        if opts.rtrec_retention_days < 0:
            raise exceptions.OptionsError("rtrec_retention_days must be 0 or more")
        if "rtrec_pricing" in updated:
            if opts.rtrec_pricing and not os.path.isfile(opts.rtrec_pricing):
                raise exceptions.OptionsError(f"pricing file {opts.rtrec_pricing} not found")
            try:
                self.prices = price_table(opts.rtrec_pricing or None)
            except PricingError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        if updated & {
            "rtrec_db",
            "rtrec_queue_size",
            "rtrec_flush_interval_ms",
            "rtrec_retention_days",
        }:
            self._open_store(opts.rtrec_db)

    def _open_store(self, url: str) -> None:
        try:
            engine = make_engine(url)
            upgrade(engine)
        except DatabaseURLError as exc:
            raise exceptions.OptionsError(str(exc)) from exc
        except Exception as exc:
            # Driver errors span lines (hints, SQLAlchemy's "Background on this error at").
            reason = str(getattr(exc, "orig", None) or exc)
            reason = "; ".join(line.strip() for line in reason.splitlines() if line.strip())
            shown = make_url(url).render_as_string(hide_password=True)
            raise exceptions.OptionsError(f"cannot prepare database {shown}: {reason}") from exc
        if self.writer is not None:
            self.writer.close()
        self.writer = Writer(
            engine,
            queue_size=ctx.options.rtrec_queue_size,
            flush_interval_s=ctx.options.rtrec_flush_interval_ms / 1000,
            observer=self.metrics,
            retention_days=ctx.options.rtrec_retention_days,
        )
        self.writer.start()
        logger.info("recording to %s", engine.url.render_as_string(hide_password=True))

    def running(self) -> None:
        port = ctx.options.rtrec_metrics_port
        if port and self._metrics_server is None:
            try:
                self._metrics_server = MetricsServer(
                    ctx.options.rtrec_metrics_host, port, self.metrics.registry, self.health
                )
            except OSError as exc:
                logger.error("metrics endpoint not started on port %d: %s", port, exc)
                return
            self._metrics_server.start()
            logger.info("metrics at http://%s:%d/metrics", ctx.options.rtrec_metrics_host, port)

    def done(self) -> None:
        now = time.time()
        for state in list(self.sessions.values()):
            self._submit([state.close(now, None, "proxy shut down", None)])
        self.sessions.clear()
        if self.writer is not None:
            self.writer.close()
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None

    def health(self) -> str | None:
        """None while the writer is alive and the database reachable, else why not."""
        if self.writer is None or not self.writer.alive:
            return "recorder writer is not running"
        if self.writer.failing_since is not None:
            return f"database unavailable for {time.monotonic() - self.writer.failing_since:.0f}s"
        return None

    def request(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        if request.headers.get("upgrade", "").lower() != "websocket":
            return
        if protocol.is_realtime_path(request.path):
            # The client's session tags are rtrec's business: the upstream never sees them.
            tags = session_tags(request.headers, request.path)
            flow.metadata[TAGS_KEY] = tags
            request.path = tags.path
            for name in tags.tag_headers:
                request.headers.pop(name, None)

    def response(self, flow: http.HTTPFlow) -> None:
        request, response = flow.request, flow.response
        if response is None or response.status_code == 101:
            return
        if request.headers.get("upgrade", "").lower() != "websocket":
            return
        if protocol.is_realtime_path(request.path):
            self.metrics.upgrade_failures.labels(status=str(response.status_code)).inc()
            logger.warning(
                "upstream refused the upgrade of %s with HTTP %d",
                redact_url(request.path),
                response.status_code,
            )

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        try:
            if protocol.is_realtime_path(flow.request.path):
                self._start_session(flow)
        except Exception:
            logger.exception("could not open a session record; traffic is unaffected")

    def _start_session(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        headers = {name.lower(): value for name, value in request.headers.items()}
        subprotocols = split_subprotocols(headers.get("sec-websocket-protocol", ""))
        peer = flow.client_conn.peername
        key = api_key(headers, subprotocols, request.path)
        tags: SessionTags | None = flow.metadata.get(TAGS_KEY)
        opened = SessionOpened(
            id=uuid7(),
            started_at=datetime.fromtimestamp(time.time(), UTC),
            api="beta" if protocol.is_beta(headers, subprotocols) else "ga",
            path=redact_url(request.path),
            record_mode=ctx.options.rtrec_record,
            model=protocol.model_from_path(request.path),
            upstream=f"{request.scheme}://{request.host}:{request.port}",
            client_addr=f"{peer[0]}:{peer[1]}" if peer else None,
            key_fingerprint=key_fingerprint(key),
            properties=tags.properties if tags else (),
            replay_of=tags.replay_of if tags else None,
        )
        # Every ephemeral key is new: one series for all of them keeps cardinality bounded.
        ephemeral = key is not None and key.startswith("ek_")
        self.sessions[flow.id] = SessionRecorder(
            opened,
            record_mode=opened.record_mode,
            prices=self.prices,
            rate_limit_key="ephemeral" if ephemeral else opened.key_fingerprint or "none",
        )
        self._submit([opened])
        self.metrics.sessions.labels(model=opened.model or "unknown").inc()
        logger.debug("session %s opened on %s", opened.id, opened.path)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        state = self.sessions.get(flow.id)
        if state is None or flow.websocket is None:
            return
        messages = flow.websocket.messages
        message = messages[-1]
        direction = "client" if message.from_client else "server"
        try:
            records: Sequence[Record] = state.on_message(
                message.from_client, message.content, message.is_text, message.timestamp
            )
        except Exception:
            logger.exception("could not interpret a %s message; it was relayed as is", direction)
            self.metrics.parse_errors.labels(direction=direction).inc()
            records = [self._unparsed_event(state, message.from_client, message.content)]
        self._submit(records)
        try:
            observe(self.metrics, state.model or "unknown", state.rate_limit_key, records)
        except Exception:
            logger.exception("could not update metrics for a %s message", direction)
        event_type = records[0].type if isinstance(records[0], EventRecord) else "invalid"
        self.metrics.events.labels(direction, protocol.metric_event_type(event_type)).inc()
        self.metrics.event_bytes.labels(direction).inc(len(message.content))
        # Keep only the newest message: stock addons may still read messages[-1] after us.
        del messages[:-1]

    @staticmethod
    def _unparsed_event(state: SessionRecorder, from_client: bool, content: bytes) -> EventRecord:
        seq = state.seq
        state.seq += 1
        return EventRecord(
            session_id=state.id,
            seq=seq,
            ts=datetime.now(UTC),
            direction="client" if from_client else "server",
            type=protocol.INVALID,
            size_bytes=len(content),
        )

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        state = self.sessions.pop(flow.id, None)
        if state is None or flow.websocket is None:
            return
        websocket = flow.websocket
        closed_by = {True: "client", False: "server"}.get(websocket.closed_by_client)  # type: ignore[arg-type]
        now = time.time()
        self._submit([state.close(now, websocket.close_code, websocket.close_reason, closed_by)])
        started = state.opened.started_at.timestamp()
        self.metrics.session_duration.labels(model=state.model or "unknown").observe(now - started)

    def _submit(self, records: Sequence[Record]) -> None:
        if self.writer is None:
            self.metrics.dropped_records(
                "no_writer", sum(isinstance(r, EventRecord) for r in records)
            )
            return
        self.writer.submit(records)

    def _active_by_model(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in list(self.sessions.values()):
            model = state.model or "unknown"
            counts[model] = counts.get(model, 0) + 1
        return counts


addons = [Recorder()]
