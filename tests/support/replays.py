"""Recording conversations through a real proxy in front of a scripted upstream, and running the
`rtrec` command line as a child process (awaited, so in-process servers keep serving)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import openai
from sqlalchemy import select

from simulator.demo import websocket_base_url
from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.proxy import ProxyProcess

QUESTION = "What is the weather in Paris?"


async def rtrec(*args: str, timeout_s: float = 240) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtrec.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    return int(process.returncode or 0), out.decode(), err.decode()


async def _until(connection: Any, kind: str) -> Any:
    async for event in connection:
        if event.type == kind:
            return event
    raise AssertionError(f"the connection closed before {kind}")


async def converse(
    proxy: ProxyProcess, question: str = QUESTION, headers: dict[str, str] | None = None
) -> None:
    """One session through the proxy with the official SDK: instructions, a question, an answer,
    and for a function call its output and one more answer."""
    base_url = proxy.base_url
    async with (
        openai.AsyncOpenAI(
            api_key="sk-test", base_url=base_url, websocket_base_url=websocket_base_url(base_url)
        ) as client,
        client.realtime.connect(model="gpt-realtime", extra_headers=headers or {}) as connection,
    ):
        await _until(connection, "session.created")
        await connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
        await _until(connection, "session.updated")
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": question}],
            }
        )
        await connection.response.create()
        done = await _until(connection, "response.done")
        calls = [item for item in done.response.output or [] if item.type == "function_call"]
        if calls:
            call_id = str(calls[0].call_id)
            await connection.conversation.item.create(
                item={"type": "function_call_output", "call_id": call_id, "output": "{}"}
            )
            await connection.response.create()
            await _until(connection, "response.done")


def session_ids(db_url: str) -> list[str]:
    """Every recorded session's id, oldest first."""
    engine = make_engine(db_url)
    sessions = table(RealtimeSession)
    with engine.connect() as connection:
        query = select(sessions.c.id).order_by(sessions.c.started_at, sessions.c.id)
        found = list(connection.scalars(query))
    engine.dispose()
    return found


async def record_one(run_proxy: Callable[..., ProxyProcess], upstream: str, db_url: str) -> str:
    """Records one conversation through a fresh proxy; the new session's id."""
    proxy = run_proxy(upstream, db_url)
    await converse(proxy)
    proxy.stop()
    (session_id,) = session_ids(db_url)
    return session_id


async def replay(session_id: str, upstream: str, db_url: str, *extra: str) -> str:
    """`rtrec replay` at full speed; the replay's id (asserting it ran)."""
    code, out, err = await rtrec(
        "replay", session_id, "--upstream", upstream, "--pace", "fast", "--db", db_url, *extra
    )
    assert code == 0, err
    return out.split(" as ")[1].split()[0]


async def diff(a: str, b: str, db_url: str, *specs: str) -> tuple[int, dict[str, Any], str]:
    """`rtrec diff --json` with `--fail-on` for each spec: exit code, report, stderr."""
    gates = [arg for spec in specs for arg in ("--fail-on", spec)]
    code, out, err = await rtrec("diff", a, b, "--db", db_url, "--json", *gates)
    return code, json.loads(out), err


async def record_scenario(
    run_proxy: Callable[..., ProxyProcess], upstream: str, db_url: str, scenario: Any
) -> str:
    """Runs one of the simulator's demo scenarios through a fresh proxy; the session's id."""
    from simulator.demo import DEMO_API_KEY

    proxy = run_proxy(upstream, db_url)
    base_url = proxy.base_url
    async with openai.AsyncOpenAI(
        api_key=DEMO_API_KEY, base_url=base_url, websocket_base_url=websocket_base_url(base_url)
    ) as client:
        await scenario(client, 20.0)
    proxy.stop()
    (session_id,) = session_ids(db_url)
    return session_id
