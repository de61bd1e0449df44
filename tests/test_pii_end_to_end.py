"""`rtrec proxy --redact-pii on` end to end: a card typed by the user never reaches any output."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openai
from sqlalchemy import select

from analysis import export
from rtrec.cli import main
from simulator.server import FakeRealtimeServer
from storage import detail
from storage.db import make_engine
from storage.models import RealtimeSession, table
from tests.support.proxy import ProxyProcess, stored_bytes

KEY = "sk-pii-end-to-end-0123456789abcdef"
CARD = "4242 4242 4242 4242"


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
    engine = make_engine(sqlite_db_url)
    with engine.connect() as connection:
        session_id = connection.execute(select(table(RealtimeSession).c.id)).scalar_one()
        out = io.BytesIO()
        export.write_jsonl(out, detail.session_events(connection, session_id))
    engine.dispose()
    assert main(["sessions", "--db", sqlite_db_url, "--json"]) == 0
    outputs = {
        "database": stored_bytes(sqlite_db_url).decode(errors="replace"),
        "export": out.getvalue().decode(),
        "logs": proxy.log,
        "metrics": metrics,
        "sessions --json": capsys.readouterr().out,
    }
    assert "[CARD]" in outputs["export"]
    for name, text in outputs.items():
        assert "4242" not in text, name
