"""The mitmproxy addon: relays Realtime WebSockets untouched and queues what they carry for storage.

Loads into `rtrec proxy` and into stock mitmproxy run from rtrec's environment:
`mitmdump -q -s proxy/addon.py --mode reverse:https://api.openai.com`.
"""

from __future__ import annotations

import json
import logging
import time

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

import protocol
from handover import wire
from handover.config import SHUTDOWN_REASON, RecorderConfig, socket_path
from handover.ids import uuid7
from handover.options import ADDON_OPTIONS
from handover.sender import Sender
from protocol import apis, calls
from protocol.pricing import PricingError, price_table
from protocol.redact import api_key, key_fingerprint, redact_url, split_subprotocols
from proxy import call_relay, mitm_internals
from proxy.frame_boundaries import FrameBoundaries
from proxy.recorder_process import RecorderProcess, RecorderStartError, database_problem
from proxy.tags import SessionTags, session_tags

logger = logging.getLogger(__name__)
MIB = 1024 * 1024
# At shutdown the relay waits for the recorder to acknowledge what it handed over, what waits on
# disk included (up to `--spill-mb`, committed at 10-20k voice messages/s): as long as the
# recorder keeps acknowledging, up to 20 s (compose stops after 30: 2 s of close frames first,
# then the recorder exits with nothing left to write); a recorder that acknowledges nothing for
# 5 s (its database locked) is not waited for any longer.
SHUTDOWN_DRAIN_S = 20.0
SHUTDOWN_QUIET_S = 5.0
TAGS_KEY = "rtrec_tags"
# Distinct unrecorded path shapes the relay names; past these they are all `other`.
MAX_UNRECORDED_SHAPES = 50


class _Live:
    """A recorded WebSocket on the relay: its hand-over number and the next message's seq. The
    raw relay adds, per direction (server, client), whether bytes were not handed over since
    (the next chunk handed over must then start a message)."""

    __slots__ = ("gaps", "number", "seq")

    def __init__(self, number: int) -> None:
        self.number = number
        self.seq = 0
        self.gaps = [False, False]


class Relay:
    """Hands every Realtime (`/realtime`) and GPT-Live (`/live/sessions`) WebSocket over for
    recording; never changes, delays or drops a frame, and relays any other WebSocket unrecorded.

    The hooks only hand raw frames over (`handover/wire.py`); a recorder process parses,
    meters and writes them (`recorder/main.py`), off this event loop.
    """

    def __init__(self) -> None:
        self.sender: Sender | None = None
        self.recorder_process: RecorderProcess | None = None
        self.sessions: dict[str, _Live] = {}
        self._next_number = 0
        self._unrecorded_shapes: set[str] = set()  # logged once each
        # `rtrec proxy` sets this when mitmproxy builds rtrec's raw layer (mitm_internals);
        # under stock `mitmdump -s` every WebSocket goes through mitmproxy's own layer.
        self.raw_relay_available = False

    def load(self, loader: Loader) -> None:
        for option in ADDON_OPTIONS:
            loader.add_option(
                option.mitmproxy_name, option.type, option.default, option.help, option.choices
            )

    def configure(self, updated: set[str]) -> None:
        """Check the options as `rtrec proxy` checks its flags; the recorder process opens the
        store when the proxy starts."""
        opts = ctx.options
        for option in ADDON_OPTIONS:
            if option.mitmproxy_name not in updated:  # checked when it was set
                continue
            try:
                option.validate(getattr(opts, option.mitmproxy_name))
            except ValueError as exc:
                raise exceptions.OptionsError(f"{option.mitmproxy_name}: {exc}") from exc
        if "rtrec_pricing" in updated:
            try:
                price_table(opts.rtrec_pricing or None)
            except PricingError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        # A relay given a recorder's socket never opens the store: whoever started that
        # recorder checked the URL. Otherwise ask the recorder program (no SQLAlchemy here).
        if "rtrec_db" in updated and not opts.rtrec_recorder_socket:
            problem = database_problem(opts.rtrec_db)
            if problem is not None:
                raise exceptions.OptionsError(problem)

    def recorder_config(self, socket_path: str) -> RecorderConfig:
        opts = ctx.options
        return RecorderConfig.of(
            lambda name: getattr(opts, f"rtrec_{name}"), socket_path, opts.listen_port
        )

    def running(self) -> None:
        if self.sender is not None:
            return
        path = ctx.options.rtrec_recorder_socket
        if not path:  # loaded into stock mitmproxy: run our own recorder process
            process = RecorderProcess(self.recorder_config(socket_path()))
            try:
                process.start()
            except RecorderStartError as exc:
                logger.error("recorder not started, nothing is recorded: %s", exc)
                return
            self.recorder_process = process
            path = process.config.socket
        self.sender = Sender(path, spill_limit_bytes=ctx.options.rtrec_spill_mb * MIB)
        if not self.sender.connect():
            logger.error("recorder not reachable at %s; retrying in the background", path)

    def done(self) -> None:
        now = time.time()
        if self.sender is not None:
            for live in self.sessions.values():
                self.sender.close(live.number, ts=now, code=None, reason=SHUTDOWN_REASON)
            self.sender.drain(timeout_s=SHUTDOWN_DRAIN_S, quiet_s=SHUTDOWN_QUIET_S)
            self.sender.shutdown()
            self.sender = None
        self.sessions.clear()
        if self.recorder_process is not None:
            self.recorder_process.stop()
            self.recorder_process = None

    def request(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        if _recorded_upgrade(request):
            # The client's session tags are rtrec's business: the upstream never sees them.
            tags = session_tags(request.headers, request.path)
            flow.metadata[TAGS_KEY] = tags
            request.path = tags.path
            for name in tags.tag_headers:
                request.headers.pop(name, None)
        else:
            call_relay.mark_call_request(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        request, response = flow.request, flow.response
        if call_relay.is_call_request(flow):
            self._call_answered(flow)
            return
        if response is None or not _recorded_upgrade(request):
            return
        if response.status_code == 101:
            if self.raw_relay_available and ctx.options.rtrec_raw_relay == "on":
                flow.metadata[mitm_internals.RAW_RELAY_KEY] = True
            return
        self._upgrade_failed(flow, response.status_code, response.reason or None)
        logger.warning(
            "upstream refused the upgrade of %s with HTTP %d",
            redact_url(request.path),
            response.status_code,
        )

    def error(self, flow: http.HTTPFlow) -> None:
        """The upstream failed a recorded upgrade before answering (unreachable, TLS)."""
        if flow.response is not None or flow.error is None or flow.websocket is not None:
            return
        if call_relay.is_call_request(flow):
            self._call_answered(flow, error=flow.error.msg)
            return
        if not _recorded_upgrade(flow.request):
            return
        reason = flow.error.msg
        logger.warning("upstream unreachable for %s: %s", redact_url(flow.request.path), reason)
        self._upgrade_failed(flow, 502, reason)
        # An OpenAI-shaped JSON error instead of mitmproxy's HTML page, where rtrec can send it.
        proxyserver = ctx.master.addons.get("proxyserver")
        mitm_internals.answer_failed_connect(proxyserver, flow, unreachable_response(flow, reason))

    def _call_answered(self, flow: http.HTTPFlow, error: str | None = None) -> None:
        """Hand a call-control request and its answer over; the flow itself is left as it is."""
        if self.sender is None:
            return
        try:
            notice = call_relay.call_notice(flow, ctx.options.rtrec_record, error)
        except Exception:
            logger.exception("could not hand a call request over; traffic is unaffected")
            return
        self.sender.notice(wire.CALL, **notice)

    def _upgrade_failed(self, flow: http.HTTPFlow, status: int, reason: str | None) -> None:
        if self.sender is None:
            return
        request, peer = flow.request, flow.client_conn.peername
        self.sender.notice(
            wire.UPGRADE_FAILED,
            status=status,
            reason=reason,
            path=redact_url(request.path),
            upstream=f"{request.scheme}://{request.host}:{request.port}",
            client_addr=f"{peer[0]}:{peer[1]}" if peer else None,
        )

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        try:
            if _recorded_upgrade(flow.request):
                self._start_session(flow)
            else:
                self._unrecorded(flow)
        except Exception:
            logger.exception("could not open a session record; traffic is unaffected")

    def _unrecorded(self, flow: http.HTTPFlow) -> None:
        """A WebSocket rtrec does not understand: relayed all the same, counted, logged once."""
        shape = apis.path_shape(flow.request.path)
        if shape not in self._unrecorded_shapes:
            if len(self._unrecorded_shapes) >= MAX_UNRECORDED_SHAPES:
                shape = "other"
            else:
                self._unrecorded_shapes.add(shape)
                logger.warning("relaying a WebSocket to %s without recording it", shape)
        if self.sender is not None:
            self.sender.notice(wire.UNRECORDED, path=shape)

    def _start_session(self, flow: http.HTTPFlow) -> None:
        if self.sender is None:
            return
        request = flow.request
        headers = {name.lower(): value for name, value in request.headers.items()}
        subprotocols = split_subprotocols(headers.get("sec-websocket-protocol", ""))
        peer = flow.client_conn.peername
        key = api_key(headers, subprotocols, request.path)
        fingerprint = key_fingerprint(key)
        tags: SessionTags | None = flow.metadata.get(TAGS_KEY)
        api = apis.recorded_api(request.path, protocol.is_beta(headers, subprotocols))
        self._next_number += 1
        live = self.sessions[flow.id] = _Live(self._next_number)
        # Every ephemeral key is new: one series for all of them keeps cardinality bounded.
        ephemeral = key is not None and key.startswith("ek_")
        self.sender.open(
            live.number,
            id=uuid7(),
            started_at=time.time(),
            api=api,
            path=redact_url(request.path),
            record_mode=ctx.options.rtrec_record,
            # GPT-Live names its model in the first client frame (`session.start`), not the URL.
            model=None if api == apis.API_LIVE else protocol.model_from_path(request.path),
            upstream=f"{request.scheme}://{request.host}:{request.port}",
            client_addr=f"{peer[0]}:{peer[1]}" if peer else None,
            key_fingerprint=fingerprint,
            properties=tags.properties if tags else (),
            replay_of=tags.replay_of if tags else None,
            rate_limit_key="ephemeral" if ephemeral else fingerprint or "none",
            call_id=calls.sideband_call_id(request.path),
            raw=bool(flow.metadata.get(mitm_internals.RAW_RELAY_KEY)),
            # The recorder inflates permessage-deflate itself when it parses raw chunks.
            extensions=_response_header(flow, "Sec-WebSocket-Extensions"),
        )

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        live = self.sessions.get(flow.id)
        if live is None or flow.websocket is None or self.sender is None:
            return
        messages = flow.websocket.messages
        message = messages[-1]
        seq = live.seq
        live.seq = seq + 1
        self.sender.message(
            live.number,
            seq,
            message.from_client,
            message.is_text,
            message.timestamp,
            message.content,
        )
        # Keep only the newest message: stock addons may still read messages[-1] after us.
        del messages[:-1]

    def raw_received(
        self, flow: http.HTTPFlow, from_client: bool, chunk: bytes, frames: FrameBoundaries
    ) -> None:
        """From the raw relay: one chunk of one direction, relayed already. Handed over as is,
        numbered with the relay's seq of the first message it ends; after a drop from the next
        message's first frame on, so the recorder can parse again."""
        live = self.sessions.get(flow.id)
        sender = self.sender
        if live is None or sender is None:
            return
        number, seq, now, ended = live.number, live.seq, time.time(), frames.ended
        live.seq = seq + ended
        # Kept until the recorder commits it: a restarted recorder gets it again (the sender's).
        complete = frames.between_messages
        if not live.gaps[from_client]:
            if sender.raw(number, from_client, now, chunk, seq, False, ended, complete):
                return
            sender.dropped_raw(number, from_client, ended, len(chunk))
            live.gaps[from_client] = True
            return
        start, skipped = frames.message_start, frames.ended_before_start
        if start is not None and sender.raw(
            number,
            from_client,
            now,
            chunk[start:] if start else chunk,
            seq + skipped,
            True,
            ended - skipped,
            complete,
        ):
            sender.dropped_raw(number, from_client, skipped, start)
            live.gaps[from_client] = False
            return
        sender.dropped_raw(number, from_client, ended, len(chunk))

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        live = self.sessions.pop(flow.id, None)
        if live is None or flow.websocket is None or self.sender is None:
            return
        websocket = flow.websocket
        closed_by = {True: "client", False: "server"}.get(websocket.closed_by_client)  # type: ignore[arg-type]
        if flow.metadata.get(mitm_internals.CLOSED_BY_PROXY_KEY):
            closed_by = None  # neither peer: rtrec's shutdown sent both peers the close frame
        self.sender.close(
            live.number,
            ts=time.time(),
            code=websocket.close_code,
            reason=websocket.close_reason,
            by=closed_by,
        )


def unreachable_response(flow: http.HTTPFlow, reason: str) -> http.Response:
    """502 with a body like OpenAI's errors, so that SDKs show why: host and cause, no secret."""
    target = f"{flow.request.host}:{flow.request.port}"
    error = {"type": "upstream_unreachable", "message": f"rtrec could not reach {target}: {reason}"}
    return http.Response.make(
        502,
        json.dumps({"error": error}),
        {"Content-Type": "application/json", "Connection": "close"},
    )


def _response_header(flow: http.HTTPFlow, name: str) -> str | None:
    return flow.response.headers.get(name) if flow.response is not None else None


def _recorded_upgrade(request: http.Request) -> bool:
    """A WebSocket upgrade request to a Realtime or GPT-Live endpoint: the ones rtrec records."""
    upgrade = request.headers.get("upgrade", "").lower() == "websocket"
    return upgrade and apis.recorded_api(request.path, beta=False) is not None


addons = [Relay()]
