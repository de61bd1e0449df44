"""`--observe-calls`: rtrec attaches its own sideband to every call created or accepted through it
(`/v1/realtime?call_id=…` for a Realtime call, `/v1/live/sessions/{id}/attach` for GPT-Live).

Each connection is recorded as a session linked to its call (`call_role = observer`), through the
same hand-over items the relay sends, so it is parsed, priced and metered as any session. A
dropped sideband is attached again; a sideband the service closes normally means the call ended.
A failed attach is a log line and `openai_realtime_observer_attach_failures_total{reason}`:
the call never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from handover import wire
from handover.ids import uuid7
from handover.wire import Item
from protocol import calls
from protocol.redact import key_fingerprint
from recorder.calls import CallState
from recorder.metrics import Metrics

logger = logging.getLogger(__name__)

# Observer sessions are handed to the recorder as relay number 0: relays are numbered from 1.
OBSERVER_RELAY = 0
RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
MAX_ATTEMPTS = 10  # in a row without a successful attach, then the call is left alone
OPEN_TIMEOUT_S = 10.0
END_GRACE_S = 2.0
CALL_ENDED_CODE = 1000  # the service closes a sideband normally when its call is over
API_KEY_VARIABLE = "RTREC_OBSERVER_API_KEY"
_GIVE_UP = {401: "unauthorized", 403: "unauthorized", 404: "unknown_call"}


@dataclass(frozen=True)
class ObserverConfig:
    api_key: str  # RTREC_OBSERVER_API_KEY; only its fingerprint is ever recorded
    open_timeout_s: float = OPEN_TIMEOUT_S


def observer_config(environ: Mapping[str, str]) -> ObserverConfig:
    """The observer's settings; its key only from the environment, never a command line."""
    key = environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise ValueError(f"--observe-calls on needs the API key in {API_KEY_VARIABLE}")
    return ObserverConfig(key)


def observer_path(state: CallState) -> str:
    """The path of the observer's sideband for `state`'s call."""
    path = calls.sideband_path(state.base, state.api, state.call_id)
    # GPT-Live closes a sideband cleanly (1000) when its session ends only if asked to; else the
    # end looks like a drop, and the observer would attach again to a call that is over.
    return path + "?graceful_close=true" if state.api == calls.LIVE else path


def sideband_url(state: CallState) -> str:
    """The sideband of `state`'s call on the upstream the relay used (http(s) → ws(s))."""
    return state.upstream.replace("http", "ws", 1) + observer_path(state)


class CallObserver:
    """One task per observed call; hands its frames to `handle` as relay 0's items."""

    def __init__(
        self,
        config: ObserverConfig,
        handle: Callable[[int, Item], None],
        metrics: Metrics,
        call_ended: Callable[[str, float, str], None],
    ) -> None:
        self.config = config
        self._handle = handle
        self._metrics = metrics
        self._call_ended = call_ended
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._next_session = 0
        self._fingerprint = key_fingerprint(config.api_key)

    def attach(self, state: CallState) -> None:
        """Start watching `state`'s call, unless it is watched already (accept after create)."""
        if state.call_id in self.tasks or state.api not in (calls.GA, calls.LIVE):
            return
        task = asyncio.get_running_loop().create_task(self._watch(state))
        self.tasks[state.call_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(state.call_id, None))

    def detach(self, call_id: str) -> None:
        task = self.tasks.get(call_id)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, state: CallState) -> None:
        attempts, attached_once = 0, False
        while not state.ended:
            try:
                ended = await self._attach_once(state)
                attached_once, attempts = True, 0
                if ended:
                    # A hangup through rtrec may still be on its way, and says more: give it a
                    # moment (it cancels this task, and the call ends as "hung up").
                    closed_at = time.time()
                    await asyncio.sleep(END_GRACE_S)
                    self._call_ended(state.call_id, closed_at, "sideband closed by the service")
                    return
            except InvalidStatus as exc:
                status = exc.response.status_code
                if attached_once and status == 404:  # it was there: the call is over now
                    self._call_ended(state.call_id, time.time(), "call gone")
                    return
                self._failed(state, _GIVE_UP.get(status, "refused"), f"HTTP {status}")
                if status in _GIVE_UP:
                    return
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._failed(state, "unreachable", str(exc) or type(exc).__name__)
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                logger.warning(
                    "observer gave up on call %s after %d attempts", state.call_id, attempts
                )
                return
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(attempts, len(RECONNECT_BACKOFF_S)) - 1])

    def _failed(self, state: CallState, reason: str, detail: str) -> None:
        self._metrics.observer_attach_failures.labels(reason=reason).inc()
        logger.warning(
            "observer could not attach to call %s: %s (%s)", state.call_id, reason, detail
        )

    async def _attach_once(self, state: CallState) -> bool:
        """One sideband connection, recorded as one session; True when the call ended."""
        headers = {"Authorization": f"Bearer {self.config.api_key}"}
        async with connect(
            sideband_url(state),
            additional_headers=headers,
            max_size=None,
            compression=None,
            open_timeout=self.config.open_timeout_s,
            proxy=None,
        ) as ws:
            number = self._open(state)
            code: int | None = None
            reason: str | None = "call ended"
            by: str | None = None
            try:
                await self._relay(ws, number)
                code, reason, by = ws.close_code, ws.close_reason, "server"
            except ConnectionClosed:
                code, reason, by = ws.close_code, ws.close_reason, "server"
            finally:
                # Cancelled (the call was hung up through rtrec): closed by rtrec, not a peer.
                self._item(wire.CLOSE, number, code=code, reason=reason, by=by)
        return code == CALL_ENDED_CODE

    async def _relay(self, ws: ClientConnection, number: int) -> None:
        seq = 0
        async for message in ws:
            is_text = isinstance(message, str)
            body = message.encode() if isinstance(message, str) else bytes(message)
            flags = wire.IS_TEXT if is_text else 0
            self._handle(OBSERVER_RELAY, Item(wire.MESSAGE, flags, number, seq, time.time(), body))
            seq += 1

    def _open(self, state: CallState) -> int:
        self._next_session += 1
        number = self._next_session
        self._item(
            wire.OPEN,
            number,
            id=uuid7(),
            started_at=time.time(),
            api=state.api,  # `ga` or `live`: the names `sessions.api` uses too
            path=observer_path(state),
            record_mode=state.record_mode,
            upstream=state.upstream,
            key_fingerprint=self._fingerprint,
            rate_limit_key=self._fingerprint or "none",
            call_id=state.call_id,
            call_role=calls.OBSERVER,
        )
        return number

    def _item(self, kind: int, number: int, **fields: object) -> None:
        self._handle(OBSERVER_RELAY, Item(kind, 0, number, 0, time.time(), orjson.dumps(fields)))
