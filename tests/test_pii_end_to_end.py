"""`rtrec proxy --redact-pii on` end to end: a card typed by the user never reaches any output."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import openai
from sqlalchemy import select
from websockets.asyncio.server import serve

from analysis import export
from rtrec.cli import main
from simulator.server import FakeRealtimeServer
from storage import detail
from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.proxy import ProxyProcess, stored_bytes

KEY = "sk-pii-end-to-end-0123456789abcdef"
CARD = "4242 4242 4242 4242"


def every_output(db_url: str, proxy: ProxyProcess, metrics: str, capsys: Any) -> dict[str, str]:
    """Everything a recorded session reaches: the database file, its JSONL export, the proxy's
    logs, the scrape and `rtrec sessions --json`."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        session_id = connection.execute(select(table(RealtimeSession).c.id)).scalar_one()
        out = io.BytesIO()
        export.write_jsonl(out, detail.session_events(connection, session_id))
    engine.dispose()
    assert main(["sessions", "--db", db_url, "--json"]) == 0
    return {
        "database": stored_bytes(db_url).decode(errors="replace"),
        "export": out.getvalue().decode(),
        "logs": proxy.log,
        "metrics": metrics,
        "sessions --json": capsys.readouterr().out,
    }


async def test_a_typed_card_is_nowhere_but_as_a_placeholder(
    run_proxy: Callable[..., ProxyProcess],
    fake_server: FakeRealtimeServer,
    sqlite_db_url: str,
    capsys: Any,
):
    proxy = run_proxy(
        fake_server.base_url,
        sqlite_db_url,
        *("--redact-pii", "on", "--metric-properties", "note"),
        verbose=True,
    )
    client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
    headers = {"Rtrec-Property-Note": f"card {CARD}"}
    async with client.realtime.connect(model="gpt-realtime", extra_headers=headers) as conn:
        await conn.recv()  # session.created
        user_text: Any = {"type": "input_text", "text": f"charge my card {CARD} please"}
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [user_text]},
            }
        )
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": f'{{"charged": "{CARD}"}}',
                },
            }
        )
        await conn.send({"type": "response.create"})
        while (await conn.recv()).type != "response.done":
            pass
    metrics = proxy.wait_for_metric('note="card [CARD]"')
    assert proxy.stop() == 0
    outputs = every_output(sqlite_db_url, proxy, metrics, capsys)
    assert "[CARD]" in outputs["export"]
    # Not the bare "4242": metrics carry float timestamps (the *_created gauges) whose digits may
    # hold it by chance (CI saw 1.7965983018424292e+09); no piece of the card may be anywhere.
    pieces = ("4242 4242", CARD.replace(" ", ""))
    for name, text in outputs.items():
        assert [piece for piece in pieces if piece in text] == [], name


SPOKEN = ("my card is 4000 05", "66 5566 55", "56, thanks")
ARGUMENTS = ('{"card": "4000 0566', ' 5566 5556"}')
# The card whole, and each piece a delta carried: none may be stored or shown anywhere.
CARD_PIECES = ("4000 05", "66 5566 55", "4000 0566", "5566 5556", "4000056655665556")


def _scripted_turn() -> list[dict[str, Any]]:
    """A turn whose user speaks a card number (split across transcript deltas) and whose model
    calls a tool with it in the arguments (split across argument deltas)."""
    transcript, arguments = "".join(SPOKEN), "".join(ARGUMENTS)
    item = {"item_id": "item_user", "content_index": 0}
    call = {"response_id": "resp_1", "item_id": "item_call", "output_index": 0, "call_id": "c1"}
    function_call = {"type": "function_call", "id": "item_call", "call_id": "c1", "name": "charge"}
    usage = {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10}
    return [
        *(
            {"type": "conversation.item.input_audio_transcription.delta", **item, "delta": piece}
            for piece in SPOKEN
        ),
        {
            "type": "conversation.item.input_audio_transcription.completed",
            **item,
            "transcript": transcript,
        },
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        *(
            {"type": "response.function_call_arguments.delta", **call, "delta": p}
            for p in ARGUMENTS
        ),
        {"type": "response.function_call_arguments.done", **call, "arguments": arguments},
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "output": [{**function_call, "arguments": arguments}],
                "usage": usage,
            },
        },
    ]


async def _card_speaking_upstream(connection: Any) -> None:
    await connection.send(json.dumps({"type": "session.created", "session": {"id": "s1"}}))
    async for message in connection:
        if json.loads(message).get("type") == "response.create":
            for number, event in enumerate(_scripted_turn()):
                await connection.send(json.dumps({"event_id": f"evt_{number}", **event}))


async def test_a_spoken_card_and_a_card_in_tool_arguments_are_nowhere(
    run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str, capsys: Any
):
    async with serve(_card_speaking_upstream, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        proxy = run_proxy(f"http://127.0.0.1:{port}", sqlite_db_url, "--redact-pii", "on")
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()  # session.created
            await conn.send({"type": "response.create"})
            while (await conn.recv()).type != "response.done":
                pass
        metrics = proxy.metrics_text()
        assert proxy.stop() == 0
    outputs = every_output(sqlite_db_url, proxy, metrics, capsys)
    assert "[CARD]" in outputs["export"]
    assert "function_call_arguments.done" in outputs["export"]
    for name, text in outputs.items():
        assert [piece for piece in CARD_PIECES if piece in text] == [], name
