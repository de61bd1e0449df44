"""The whole simulator on one port: the Realtime WebSocket service, the call endpoints (WebRTC
and SIP) and the calls' sidebands, behind a :class:`FrontDoor`."""

from __future__ import annotations

import functools
from typing import Self

from simulator.call_engine import Api, EngineFactory
from simulator.call_http import CallEndpoints
from simulator.calls import CallRegistry
from simulator.front_door import FrontDoor
from simulator.live_call import LiveCallEngine
from simulator.pacing import Pacing
from simulator.server import FakeRealtimeServer
from simulator.sideband import SidebandServer, call_id_of


class CallServer:
    """:class:`FakeRealtimeServer` plus WebRTC/SIP calls, reachable at :attr:`base_url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        pacing: Pacing | None = None,
        keep_log: bool = True,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        live_engine: EngineFactory | None = None,
    ) -> None:
        """``webhook_url`` receives ``realtime.call.incoming`` for simulated SIP calls, signed
        with ``webhook_secret`` (a ``whsec_`` value, as OpenAI's dashboard hands out).
        ``live_engine`` runs GPT-Live's sessions behind ``/v1/live/sessions`` calls
        (:class:`LiveCallEngine` unless another is given)."""
        self.realtime = FakeRealtimeServer(host, 0, pacing=pacing, keep_log=keep_log)
        live = live_engine or functools.partial(LiveCallEngine, pacing=pacing)
        engines: dict[Api, EngineFactory] = {"live": live}
        self.registry = CallRegistry(engines, pacing)
        self.sidebands = SidebandServer(self.registry)
        self.endpoints = CallEndpoints(self.registry, webhook_url)
        if webhook_secret is not None:
            self.endpoints.webhook_secret = webhook_secret
        self.front = FrontDoor(host, port, self.endpoints, self._route)

    def _route(self, path: str) -> int:
        return self.sidebands.port if call_id_of(path) else self.realtime.port

    async def start(self) -> None:
        """Start the inner servers, then the front door; raises :class:`OSError` for a taken
        port (with nothing left running)."""
        await self.realtime.start()
        await self.sidebands.start()
        try:
            await self.front.start()
        except OSError:
            await self.sidebands.stop()
            await self.realtime.stop()
            raise

    async def stop(self) -> None:
        await self.front.stop()
        await self.registry.close_all()
        await self.sidebands.stop()
        await self.realtime.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self.front.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the SDK's ``base_url`` is this + ``/v1``."""
        return f"http://{self.front.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1``, for the SDK's ``websocket_base_url``."""
        return "ws" + self.base_url.removeprefix("http") + "/v1"
