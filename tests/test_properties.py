"""Session properties end to end: the SDK tags a session, the upstream never sees the tags."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from sqlalchemy import select

from rtrec.cli import main
from simulator.server import FakeRealtimeServer
from storage.db import make_engine
from storage.models import RealtimeSession, SessionProperty, table
from tests.support.proxy import ProxyProcess

KEY = "sk-props-planted-key-0123456789abcdef"


async def tagged_session(base_url: str, headers: dict[str, str], query: dict[str, str]) -> None:
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    async with client.realtime.connect(
        model="gpt-realtime", extra_headers=headers, extra_query=query
    ) as conn:
        await conn.recv()  # session.created


def stored(db_url: str) -> tuple[list[Any], list[Any]]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        sessions = list(connection.execute(select(table(RealtimeSession))))
        properties = list(
            connection.execute(select(table(SessionProperty)).order_by(SessionProperty.name))
        )
    engine.dispose()
    return sessions, properties


async def test_tags_are_stored_and_never_reach_the_upstream(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    proxy = run_proxy(fake_server.base_url, sqlite_db_url)
    headers = {"Rtrec-Property-Customer": "acme", "Rtrec-Replay-Of": "0193abcd-0000"}
    await tagged_session(proxy.base_url, headers, {"rtrec_env": "prod", "rtrec_Team": "voice"})
    proxy.stop()

    (handshake,) = fake_server.handshakes
    assert "rtrec" not in handshake.path.lower()
    assert handshake.path == "/v1/realtime?model=gpt-realtime"
    assert not [name for name in handshake.headers if name.lower().startswith("rtrec")]
    (session,), properties = stored(sqlite_db_url)
    assert "rtrec" not in session.path.lower()
    assert session.replay_of == "0193abcd-0000"
    assert [(p.name, p.value) for p in properties] == [
        ("customer", "acme"),
        ("env", "prod"),
        ("team", "voice"),
    ]


async def test_sessions_filter_by_property(
    run_proxy: Callable[..., ProxyProcess],
    fake_server: FakeRealtimeServer,
    sqlite_db_url: str,
    capsys: Any,
):
    proxy = run_proxy(fake_server.base_url, sqlite_db_url)
    for customer, env in (("acme", "prod"), ("acme", "dev"), ("globex", "prod")):
        tags = {"Rtrec-Property-Customer": customer, "Rtrec-Property-Env": env}
        await tagged_session(proxy.base_url, tags, {})
    proxy.stop()

    args = ["sessions", "--db", sqlite_db_url, "--json", "--property", "customer=acme"]
    assert main(args) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main([*args, "--property", "Env=prod"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["sessions", "--db", sqlite_db_url, "--property", "nonsense"])
    assert exit_info.value.code == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


async def test_allowed_properties_label_the_cost_and_token_counters(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    proxy = run_proxy(fake_server.base_url, sqlite_db_url, "--metric-properties", "customer")
    for customer in ("acme", "globex", None):
        headers = {"Rtrec-Property-Customer": customer} if customer else {}
        headers["Rtrec-Property-Env"] = "prod"  # not in the allow-list: no label
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime", extra_headers=headers) as conn:
            await conn.recv()  # session.created
            await conn.send({"type": "response.create"})
            while (await conn.recv()).type != "response.done":
                pass
    for customer in ("acme", "globex", ""):
        proxy.wait_for_metric(
            f'openai_realtime_cost_usd_total{{api="ga",customer="{customer}",kind="response",'
            f'model="gpt-realtime"}}'
        )
    text = proxy.metrics_text()
    tokens = [line for line in text.splitlines() if line.startswith("openai_realtime_tokens_total")]
    assert tokens
    assert all('customer="' in line for line in tokens)
    assert "env=" not in text
    proxy.stop()


def test_metric_property_names_are_checked(capsys: Any):
    for names, problem in (("model", "already a label"), ("cust omer", "not a property name")):
        with pytest.raises(SystemExit):
            main(["proxy", "--metric-properties", names])
        assert problem in capsys.readouterr().err
