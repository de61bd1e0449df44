"""`rtrec replay` and `rtrec diff` end to end: demo sessions recorded through a real proxy in front
of the simulator, replayed through the replay's own proxy, compared."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
from sqlalchemy import select

from simulator import scenarios
from simulator.demo import DEMO_API_KEY, websocket_base_url
from simulator.server import FakeRealtimeServer
from storage.db import make_engine
from storage.models import AudioChunk, RealtimeSession, table
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess

Scenario = Callable[[openai.AsyncOpenAI, float], Awaitable[Any]]


async def rtrec(*args: str) -> tuple[int, str, str]:
    """The command line as a child process, awaited so the in-process simulator keeps serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtrec.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    return int(process.returncode or 0), out.decode(), err.decode()


async def record(
    run_proxy: Callable[..., ProxyProcess],
    upstream: str,
    db_url: str,
    scenario: Scenario,
    *extra: str,
) -> str:
    """Runs one demo scenario through a fresh proxy; returns the recorded session's id."""
    proxy = run_proxy(upstream, db_url, *extra)
    async with openai.AsyncOpenAI(
        api_key=DEMO_API_KEY,
        base_url=proxy.base_url,
        websocket_base_url=websocket_base_url(proxy.base_url),
    ) as client:
        await scenario(client, 20.0)
    proxy.stop()
    (session_id,) = [row.id for row in sessions(db_url)]
    return session_id


def sessions(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        rows = list(connection.execute(select(table(RealtimeSession))))
    engine.dispose()
    return rows


async def replay(session_id: str, upstream: str, db_url: str, *extra: str) -> tuple[str, str]:
    code, out, err = await rtrec(
        "replay", session_id, "--upstream", upstream, "--pace", "fast", "--db", db_url, *extra
    )
    assert code == 0, err
    replay_id = out.split(" as ")[1].split()[0]
    return replay_id, out


async def test_a_replayed_tool_call_session_has_the_same_structure(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(run_proxy, upstream, sqlite_db_url, scenarios.tool_call)
    replay_id, _ = await replay(original, upstream, sqlite_db_url)

    by_id = {row.id: row for row in sessions(sqlite_db_url)}
    assert by_id[replay_id].replay_of == original
    # The tool output was answered from the recording, for the replay's own call.
    replay_conn = fake_server.handshakes[-1].conn_id
    calls = [
        item["call_id"]
        for event in fake_server.events(replay_conn, "server")
        if event["type"] == "response.done"
        for item in event["response"]["output"]
        if item["type"] == "function_call"
    ]
    outputs = [
        event["item"]
        for event in fake_server.events(replay_conn, "client")
        if event["type"] == "conversation.item.create"
        and event["item"]["type"] == "function_call_output"
    ]
    assert [o["call_id"] for o in outputs] == calls
    assert json.loads(outputs[0]["output"])["city"] == "Paris"

    gates = ["--fail-on", "structure_changed", "--fail-on", "similarity<1"]
    code, out, err = await rtrec("diff", original, replay_id, "--db", sqlite_db_url, *gates)
    assert (code, err) == (0, "")
    assert "structure: equal" in out


async def test_a_beta_voice_replay_sends_the_recorded_audio(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(run_proxy, upstream, sqlite_db_url, scenarios.beta_voice)
    replay_id, _ = await replay(original, upstream, sqlite_db_url)

    engine = make_engine(sqlite_db_url)
    with engine.connect() as connection:
        chunks = table(AudioChunk)
        query = select(chunks.c.data).where(
            chunks.c.session_id == original, chunks.c.direction == "client"
        )
        recorded = b"".join(connection.scalars(query.order_by(chunks.c.seq)))
    engine.dispose()
    replay_conn = fake_server.handshakes[-1].conn_id
    assert fake_server.handshakes[-1].headers["openai-beta"] == "realtime=v1"
    sent = b"".join(
        base64.b64decode(event["audio"])
        for event in fake_server.events(replay_conn, "client")
        if event["type"] == "input_audio_buffer.append"
    )
    assert recorded
    assert sent == recorded
    code, out, _ = await rtrec("diff", original, replay_id, "--db", sqlite_db_url, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["structure_equal"]
    assert report["transcript_similarity"] == 1.0


async def test_another_model_shows_in_the_diff_and_the_exit_code_follows(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(run_proxy, upstream, sqlite_db_url, scenarios.tool_call)
    cheaper, _ = await replay(original, upstream, sqlite_db_url, "--model", "gpt-realtime-mini")
    assert "model=gpt-realtime-mini" in fake_server.handshakes[-1].path

    code, out, _ = await rtrec("diff", original, cheaper, "--db", sqlite_db_url, "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["a"]["model"], report["b"]["model"]) == ("gpt-realtime", "gpt-realtime-mini")
    before, after = report["metrics"]["cost"]
    assert after < before
    # Replaying the cheap model back against the original: 20% more cost trips the gate.
    code, _, err = await rtrec(
        "diff", cheaper, original, "--db", sqlite_db_url, "--fail-on", "cost+20%"
    )
    assert code == 1
    assert "failed cost+20%: cost" in err
    code, _, err = await rtrec(
        "diff", original, cheaper, "--db", sqlite_db_url, "--fail-on", "cost+20%"
    )
    assert (code, err) == (0, "")


async def test_a_text_mode_session_replays_without_audio_and_says_so(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(
        run_proxy, upstream, sqlite_db_url, scenarios.beta_voice, "--record", "text"
    )
    code, out, err = await rtrec(
        "replay", original, "--upstream", upstream, "--pace", "fast", "--db", sqlite_db_url
    )
    assert code == 0, err
    assert "recorded with --record text: replaying without audio" in out
    replay_conn = fake_server.handshakes[-1].conn_id
    kinds = [event["type"] for event in fake_server.events(replay_conn, "client")]
    assert "session.update" in kinds
    assert "input_audio_buffer.append" not in kinds


async def test_a_metadata_session_cannot_be_replayed(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(
        run_proxy, upstream, sqlite_db_url, scenarios.tool_call, "--record", "metadata"
    )
    code, _out, err = await rtrec("replay", original, "--upstream", upstream, "--db", sqlite_db_url)
    assert code == 1
    assert err.count("\n") == 1
    assert "--record metadata" in err
    assert "no content" in err
    assert len(sessions(sqlite_db_url)) == 1


async def test_replaying_an_unknown_session_is_one_line(sqlite_db_url: str):
    await rtrec("db", "upgrade", "--db", sqlite_db_url)
    code, _, err = await rtrec(
        "replay", "nope", "--upstream", "http://127.0.0.1:9", "--db", sqlite_db_url
    )
    assert code == 1
    assert err == "rtrec replay: no session 'nope' in the database\n"


async def test_a_tool_hook_answers_the_replays_function_calls(
    run_proxy: Callable[..., ProxyProcess],
    fake_server: FakeRealtimeServer,
    sqlite_db_url: str,
    tmp_path: Path,
):
    upstream = fake_server.base_url
    original = await record(run_proxy, upstream, sqlite_db_url, scenarios.tool_call)
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json\n"
        "def tool_output(name, arguments):\n"
        "    return json.dumps({'tool': name, 'asked': json.loads(arguments), 'from': 'hook'})\n"
    )
    await replay(original, upstream, sqlite_db_url, "--tool-hook", str(hook))

    replay_conn = fake_server.handshakes[-1].conn_id
    calls = [
        item
        for event in fake_server.events(replay_conn, "server")
        if event["type"] == "response.done"
        for item in event["response"]["output"]
        if item["type"] == "function_call"
    ]
    outputs = [
        json.loads(event["item"]["output"])
        for event in fake_server.events(replay_conn, "client")
        if event["type"] == "conversation.item.create"
        and event["item"]["type"] == "function_call_output"
    ]
    assert calls
    assert outputs == [
        {"tool": c["name"], "asked": json.loads(c["arguments"]), "from": "hook"} for c in calls
    ]


async def test_a_tool_hook_without_tool_output_is_one_line(sqlite_db_url: str, tmp_path: Path):
    hook = tmp_path / "hook.py"
    hook.write_text("def something_else():\n    pass\n")
    code, _, err = await rtrec(
        "replay", "0193-any", "--tool-hook", str(hook), "--db", sqlite_db_url
    )
    assert code != 0
    assert len(err.strip().splitlines()) == 1


async def test_replay_against_an_unreachable_upstream_is_one_line(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    original = await record(run_proxy, fake_server.base_url, sqlite_db_url, scenarios.tool_call)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = await rtrec(
        "replay", original, "--upstream", closed, "--pace", "fast", "--db", sqlite_db_url
    )
    assert code == 1
    assert out == ""  # the proxy child's log ("point clients at it" …) is not ours to print
    assert err.count("\n") == 1, err
    assert err.startswith(f"rtrec replay: {closed} did not take the session (HTTP 502)")


async def test_replay_takes_a_unique_id_prefix(
    run_proxy: Callable[..., ProxyProcess], fake_server: FakeRealtimeServer, sqlite_db_url: str
):
    upstream = fake_server.base_url
    original = await record(run_proxy, upstream, sqlite_db_url, scenarios.tool_call)
    replay_id, out = await replay(original[:8], upstream, sqlite_db_url)
    assert f"replayed {original} as {replay_id}" in out
    assert f"compare: uv run rtrec diff {original} {replay_id}" in out
