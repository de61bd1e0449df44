"""No key reaches storage, logs, metrics or exports; `--record metadata` stores no content."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtrec.cli import main
from simulator.server import FakeRealtimeServer, run_in_thread
from tests.support.faults import Talk, closed, on_server, sqlite_path
from tests.support.proxy import ProxyProcess, proxy_runner

# One distinct key per place docs/schema.md#secrets names, so that a leak says where it came from.
KEYS = {
    "Authorization header": "sk-proj-AuthHeader000000000001",
    "api-key header": "sk-ApiKeyHeader00000000000002",
    "subprotocol": "ek_Subprotocol000000000000003",
    "api-key query parameter": "sk-QueryApiKey00000000000004",
    "Authorization query parameter": "ek_QueryAuthorization0000005",
    "sk- token in a client payload": "sk-ClientPayload0000000000006",
    "ek_ token in a client payload": "ek_ClientPayload0000000000007",
    "token as a JSON key": "sk-JsonKey000000000000000008",
    "token in a frame that is not JSON": "sk-NotJson00000000000000009",
    "api_key field": "opaque-api-key-field-0000010",
    "client_secret in a server event": "ek_ServerClientSecret000011",
    "client_secret that is no token": "opaque-client-secret-000012",
    "token in an error message": "sk-ErrorMessage000000000013",
    "token in a close reason": "sk-CloseReason0000000000014",
    "token spelled with JSON escapes": "sk-EscapedJson00000000000015",
    "token in a binary frame": "sk-BinaryFrame00000000000016",
    "api-key line in a frame that is not JSON": "opaque-NotJsonApiKey0000017",
    "client_secret in a cut-off frame": "opaque-CutOffSecret00000018",
}
# Sent as `sk\u002dEscaped…`: the raw frame never shows the key the service decodes.
ESCAPED = KEYS["token spelled with JSON escapes"].replace("-", "\\u002d")


def stored_bytes(db: Path) -> bytes:
    """The database file and its -wal and -shm companions, as they are on disk."""
    return b"".join(path.read_bytes() for path in sorted(db.parent.glob(db.name + "*")))


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [place for place, key in KEYS.items() if key.encode() in data]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeRealtimeServer]:
    with run_in_thread() as server:
        yield server


@pytest.fixture(scope="module")
def verbose_proxy(
    upstream: FakeRealtimeServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, str]]:
    """A proxy with debug logging and every setting at its default but the database."""
    directory = tmp_path_factory.mktemp("secrets")
    db_url = f"sqlite:///{directory / 'rtrec.db'}"
    with proxy_runner(directory) as run:
        yield run(upstream.base_url, db_url, verbose=True), db_url


async def session_full_of_keys(upstream: FakeRealtimeServer, proxy: ProxyProcess) -> Talk:
    headers = {
        "Authorization": f"Bearer {KEYS['Authorization header']}",
        "api-key": KEYS["api-key header"],
    }
    query = (
        f"api-key={KEYS['api-key query parameter']}"
        f"&Authorization=Bearer%20{KEYS['Authorization query parameter']}"
    )
    async with Talk.open(
        upstream,
        proxy,
        additional_headers=headers,
        subprotocols=["realtime", f"openai-insecure-api-key.{KEYS['subprotocol']}"],
        query=query,
    ) as talk:
        instructions = f"Never repeat {KEYS['sk- token in a client payload']}."
        await talk.client_says(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": instructions},
                }
            )
        )
        text = f"my key: {KEYS['ek_ token in a client payload']}"
        await talk.client_says(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                }
            )
        )
        await talk.client_says(
            json.dumps(
                {
                    "type": "x.custom",
                    "metadata": {KEYS["token as a JSON key"]: "value"},
                    "api_key": KEYS["api_key field"],
                }
            )
        )
        await talk.client_says(f"not json at all {KEYS['token in a frame that is not JSON']}")
        await talk.client_says('{"type":"x.escaped","note":"' + ESCAPED + '"}')
        await talk.client_says(b"\x00\x01" + KEYS["token in a binary frame"].encode())
        await talk.client_says(f"api-key: {KEYS['api-key line in a frame that is not JSON']}")
        cut_off = KEYS["client_secret in a cut-off frame"]
        await talk.client_says(f'{{"type":"x","client_secret":{{"value":"{cut_off}"')
        await talk.server_says(
            json.dumps(
                {
                    "type": "session.updated",
                    "session": {
                        "client_secret": {
                            "value": KEYS["client_secret in a server event"],
                            "expires_at": 0,
                        }
                    },
                }
            )
        )
        await talk.server_says(
            json.dumps(
                {"type": "x.server", "client_secret": KEYS["client_secret that is no token"]}
            )
        )
        message = f"Incorrect API key provided: {KEYS['token in an error message']}."
        await talk.server_says(
            json.dumps(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": message,
                    },
                }
            )
        )
        await talk.settled()
        await talk.ws.close(1000, f"bye {KEYS['token in a close reason']}")
        return talk


def test_no_key_reaches_the_database_logs_metrics_or_exports(
    upstream: FakeRealtimeServer, verbose_proxy: tuple[ProxyProcess, str], tmp_path: Path
):
    proxy, db_url = verbose_proxy
    talk = asyncio.run(session_full_of_keys(upstream, proxy))
    handshake = next(h for h in upstream.handshakes if talk.marker in h.path)
    # The keys were really there: the service got every one of them, untouched.
    sent_upstream = json.dumps([handshake.path, handshake.headers]) + json.dumps(
        [
            m.data if isinstance(m.data, str) else m.data.decode("latin-1")
            for m in upstream.messages(talk.conn_id)
        ]
    )
    not_literal = {"token in a close reason", "token spelled with JSON escapes"}
    assert set(leaks(sent_upstream)) >= set(KEYS) - not_literal
    assert json.dumps(ESCAPED)[1:-1] in sent_upstream  # the escaped spelling got through
    server_close = asyncio.run(on_server(upstream, lambda: upstream.wait_closed(talk.conn_id, 30)))
    assert server_close[1] == f"bye {KEYS['token in a close reason']}"

    db = sqlite_path(db_url)
    (close_code, _, _), events = closed(db, talk.marker)
    assert close_code == 1000
    assert len(events) == len(upstream.messages(talk.conn_id))
    assert leaks(stored_bytes(db)) == []
    assert b"[REDACTED]" in stored_bytes(db)
    assert leaks(proxy.log) == []
    assert "DEBUG" in proxy.log  # debug logging was on
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics").read()
    assert leaks(metrics) == []

    exported = tmp_path / "export.jsonl"
    listing = tmp_path / "sessions.json"
    with listing.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "rtrec.cli", "sessions", "--json", "--db", db_url],
            stdout=out,
            check=True,
        )
    (session,) = [s for s in json.loads(listing.read_text()) if talk.marker in s["path"]]
    key = KEYS["Authorization header"].encode()
    assert session["key_fingerprint"] == hashlib.sha256(key).hexdigest()[:8]
    assert (
        main(["export", session["id"], "--format", "jsonl", "-o", str(exported), "--db", db_url])
        == 0
    )
    assert len(exported.read_text().splitlines()) == len(events)
    assert leaks(exported.read_bytes()) == []
    assert leaks(listing.read_bytes()) == []


def test_metrics_and_proxy_listen_on_loopback_by_default(verbose_proxy: tuple[ProxyProcess, str]):
    proxy, _ = verbose_proxy
    help_text = subprocess.run(
        [sys.executable, "-m", "rtrec.cli", "proxy", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(help_text.split())
    for variable in ("RTREC_METRICS_HOST", "RTREC_LISTEN_HOST"):
        assert f"[{variable}, default: 127.0.0.1]" in flat
    for port in (proxy.metrics_port, proxy.port):
        listening = subprocess.run(
            ["ss", "-ltnH", "sport", "=", f":{port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert listening[3] == f"127.0.0.1:{port}", listening


def test_metadata_mode_stores_no_text_instructions_transcripts_or_audio(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    proxy = run_proxy(upstream.base_url, sqlite_db_url, "--record", "metadata")
    user_audio = b"USER-AUDIO-MARKER-" * 200
    assistant_audio = b"ASSISTANT-AUDIO-MARKER-" * 200
    planted = {
        "instructions": "PLANTED-INSTRUCTIONS-7f3a",
        "user text": "PLANTED-USER-TEXT-91c2",
        "assistant text": "PLANTED-ASSISTANT-TEXT-22aa",
        "assistant transcript": "PLANTED-ASSISTANT-TRANSCRIPT-b0b0",
        "user transcript": "PLANTED-USER-TRANSCRIPT-c1c1",
        "invalid frame": "PLANTED-NOT-JSON-d2d2",
        "user audio": base64.b64encode(user_audio).decode(),
        "assistant audio": base64.b64encode(assistant_audio).decode(),
    }

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": planted["instructions"]},
                    }
                )
            )
            await talk.client_says(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": planted["user text"]}],
                        },
                    }
                )
            )
            await talk.client_says(
                json.dumps({"type": "input_audio_buffer.append", "audio": planted["user audio"]})
            )
            await talk.client_says(planted["invalid frame"])
            await talk.client_says(b"binary " + user_audio)
            for event in (
                {
                    "type": "response.output_text.delta",
                    "response_id": "r",
                    "delta": planted["assistant text"],
                },
                {
                    "type": "response.output_audio_transcript.delta",
                    "response_id": "r",
                    "delta": planted["assistant transcript"],
                },
                {
                    "type": "response.output_audio.delta",
                    "response_id": "r",
                    "delta": planted["assistant audio"],
                },
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "item_1",
                    "transcript": planted["user transcript"],
                    "usage": {"type": "duration", "seconds": 1.0},
                },
            ):
                await talk.server_says(json.dumps(event))
            await talk.settled()
            return talk

    talk = asyncio.run(session())
    db = sqlite_path(sqlite_db_url)
    _, events = closed(db, talk.marker)
    assert len(events) == len(upstream.messages(talk.conn_id))  # every message still has its row
    assert proxy.stop() == 0
    data = stored_bytes(db)
    found = [what for what, text in planted.items() if text.encode() in data]
    found += [
        what
        for what, raw in (("raw user audio", user_audio), ("raw assistant audio", assistant_audio))
        if raw[:40] in data
    ]
    assert found == []
