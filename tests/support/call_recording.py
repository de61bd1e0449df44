"""Shared set-up of the end-to-end call tests: a fresh database per run, its rows, SDK clients
of a proxy, and waiting for a call's sessions to be recorded and closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.calls import until
from tests.support.proxy import ProxyProcess

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
