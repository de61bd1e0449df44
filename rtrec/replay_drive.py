"""Sending a replay's plan over one WebSocket, and deciding whether it ran as recorded.

A replay that waited in vain for the upstream, was closed early, or drew errors the recording
did not have raises `ReplayError`: its result would compare a broken run with the original.
A replay without the recorded audio (a `--record text` session) cannot draw the answers that
audio drew, so there a wait in vain is a note, not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

import protocol
from rtrec.replay import (
    Overrides,
    Plan,
    ReplayError,
    ToolHook,
    announced_item,
    answer_with_hook,
    error_code,
    function_calls,
    rewrite,
)


class _Listener:
    """Reads the replay's server events: counts the barrier types, collects function calls,
    announced items and error codes, and notes when the upstream closed."""

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.notes: list[str] = []
        self.seen = dict.fromkeys(protocol.REPLAY_BARRIERS, 0)
        self.call_ids: list[str] = []
        self.calls: dict[str, dict[str, Any]] = {}  # the replay's function calls, by call_id
        self.item_ids: list[str] = []
        self.error_codes: list[str] = []
        self.closed: str | None = None  # why the connection ended, once it has
        self.changed = asyncio.Condition()

    async def run(self, websocket: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in websocket:
                await self._note(message)
        except ConnectionClosed:
            pass
        async with self.changed:
            code, reason = websocket.close_code, websocket.close_reason
            self.closed = f"the upstream closed the connection ({code} {reason or ''})".strip()
            self.changed.notify_all()

    async def _note(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        async with self.changed:
            kind = event.get("type")
            if kind in self.seen:
                self.seen[kind] += 1
            for call in function_calls(event):
                self.call_ids.append(str(call["call_id"]))
                self.calls[str(call["call_id"])] = call
            self.item_ids += announced_item(event, self.item_ids)
            if code := error_code(event):
                self.error_codes.append(code)
            self.changed.notify_all()

    async def wait(self, waits: dict[str, int], timeout_s: float, before: str) -> None:
        """Returns once the upstream answered as far as `waits`; else ReplayError."""

        def missing() -> dict[str, int]:
            return {k: n - self.seen[k] for k, n in waits.items() if self.seen[k] < n}

        async with self.changed:
            try:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: not missing() or self.closed is not None),
                    timeout_s,
                )
            except TimeoutError:
                why = f"in {timeout_s:g}s {before} (waited for {_counts(missing())})"
                if not self.lenient:
                    raise ReplayError(f"no answer from the upstream {why}") from None
                self.notes.append(f"no answer {why}")
                return
            if missing():
                raise ReplayError(f"{self.closed} {before}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


async def drive(
    url: str,
    headers: dict[str, str],
    steps: Plan,
    *,
    realtime: bool,
    overrides: Overrides | None = None,
    tool_hook: ToolHook | None = None,
    wait_s: float,
) -> list[str]:
    """Sends the plan over one WebSocket; raises ReplayError when it did not run as recorded,
    returns notes about the waits a replay without audio could not expect to end."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    listener = _Listener(lenient=steps.skipped_audio > 0)
    async with connect(
        url, additional_headers=headers, max_size=None, open_timeout=wait_s
    ) as websocket:
        reader = asyncio.create_task(listener.run(websocket))
        try:
            await _send_all(websocket, listener, steps, realtime, overrides, tool_hook, wait_s)
            await listener.wait(steps.final_waits, wait_s, "for the last answers")
        except ConnectionClosed:
            raise ReplayError(listener.closed or "the upstream closed the connection") from None
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await websocket.close()
    new = Counter(listener.error_codes) - Counter(steps.error_codes)
    if new:
        raise ReplayError(f"the upstream sent errors the recording did not have: {_counts(new)}")
    return listener.notes


async def _send_all(
    websocket: Any,
    listener: _Listener,
    steps: Plan,
    realtime: bool,
    overrides: Overrides | None,
    tool_hook: ToolHook | None,
    wait_s: float,
) -> None:
    sent_at = time.monotonic()
    for index, step in enumerate(steps.steps):
        await listener.wait(step.waits, wait_s, f"before event {index + 1} ({step.event['type']})")
        if realtime:
            await asyncio.sleep(max(0.0, step.delay_s - (time.monotonic() - sent_at)))
        mapping = dict(zip(steps.call_ids, listener.call_ids, strict=False))
        mapping.update(zip(steps.item_ids, listener.item_ids, strict=False))
        event = rewrite(step.event, mapping, overrides)
        if tool_hook is not None:
            event = answer_with_hook(event, listener.calls, tool_hook)
        await websocket.send(json.dumps(event))
        sent_at = time.monotonic()
