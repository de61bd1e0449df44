"""Shared set-up of the end-to-end call tests: a fresh database per run, its rows, SDK clients
of a proxy, a SIP call rung in front of an observing proxy, and waiting for a call's sessions to
be recorded and closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from simulator.call_server import CallServer
from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.calls import WebhookReceiver, ring, until
from tests.support.proxy import ProxyProcess, proxy_runner

OBSERVER_KEY = "sk-observer-key-never-stored-42"
APP_KEY = "sk-application-key-0123456789"


def fresh_db(db_param: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A new database of kind `db_param` (`sqlite` or `postgresql`) for one recording."""
    if db_param == "sqlite":
        return f"sqlite:///{tmp / 'rtrec.db'}"
    return str(request.getfixturevalue("postgres").create_database())


def rows(db_url: str, model: type, **where: Any) -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    t = table(model)
    statement = (
        select(t)
        .where(*(t.c[k] == v for k, v in where.items()))
        .order_by(t.c[next(iter(t.c.keys()))])
    )
    with engine.connect() as connection:
        found = [row._asdict() for row in connection.execute(statement)]
    engine.dispose()
    return found


def sdk(proxy: ProxyProcess) -> openai.AsyncOpenAI:
    """The application's SDK client, pointed at the proxy for HTTP and WebSockets alike."""
    return openai.AsyncOpenAI(
        api_key=APP_KEY,
        base_url=proxy.base_url,
        websocket_base_url=proxy.base_url.replace("http", "ws", 1),
        max_retries=0,
    )


async def wait_closed(db_url: str, call_id: str, sessions: int) -> list[dict[str, Any]]:
    """The call's sessions once `sessions` of them are recorded and closed."""

    def closed() -> list[dict[str, Any]]:
        found = rows(db_url, RealtimeSession, call_id=call_id)
        return found if len(found) >= sessions and all(s["ended_at"] for s in found) else []

    await until(lambda: bool(closed()), timeout=20)
    return closed()


@dataclass(frozen=True)
class Rung:
    """A SIP call the simulator rang, with rtrec's proxy (observer on) in front of it."""

    server: CallServer
    proxy: ProxyProcess
    call_id: str


@contextlib.asynccontextmanager
async def rung_with_observer(db_url: str, tmp: Path, api: str = "realtime") -> AsyncIterator[Rung]:
    """A SIP call of `api` rung, its signed webhook received, a proxy recording into `db_url`
    with `--observe-calls on`; the caller accepts, talks and hangs up."""
    receiver = WebhookReceiver()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RTREC_OBSERVER_API_KEY", OBSERVER_KEY)
            async with CallServer() as server:
                with proxy_runner(tmp) as run:
                    proxy = run(server.base_url, db_url, "--observe-calls", "on")
                    call_id = str(
                        (await asyncio.to_thread(ring, server, receiver.url, api))["call_id"]
                    )
                    webhook, _ = receiver.received.get(timeout=10)
                    # Realtime names the call `call_id`; GPT-Live names its session `session_id`.
                    data = json.loads(webhook)["data"]
                    assert data["call_id" if api == "realtime" else "session_id"] == call_id
                    yield Rung(server, proxy, call_id)
    finally:
        receiver.close()
