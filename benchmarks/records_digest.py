"""A digest of every record and traffic metric the recorder makes from known traffic, to show that
a change made for speed changed nothing recorded.

    uv run python -m benchmarks.records_digest [--fixtures DIR] [--show]

Feeds a `Recording` the fixture traffic (`tests/fixtures/{ga,beta}.jsonl` plus odd frames: secrets,
escapes, binary, non-JSON, errors) in every record mode, with and without `--redact-pii`, as
`MESSAGE` items and as raw chunks (with and without permessage-deflate), and the benchmark's voice
and small traffic as raw chunks. Run it on two commits: equal digests, equal records and metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from benchmarks import traffic
from handover import wire
from handover.wire import Item
from protocol.pricing import BUILTIN_PRICES, PriceTable
from recorder.metrics import Metrics
from recorder.recording import Recording
from storage.db import make_engine, upgrade
from storage.records import Record
from storage.writer import Writer

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"
STARTED_AT = 1_767_225_600.0
Message = tuple[bool, bytes, bool]  # from the client, body, is text
ODD: list[Message] = [
    (True, b'{"type":"session.update","session":{"api_key":"sk-abcdefghijklmnopqrstu"}}', True),
    (True, b'{"type":"input_audio_buffer.append","audio":"QUJDRA==","client_secret":"x"}', True),
    (True, b'{"type":"input_audio_buffer.append","audio":"QUJD\\u0044RA=="}', True),
    (False, b'{"type":"response.output_audio.delta","delta":"QUJD","n":"sk-abcdefghijkl"}', True),
    (False, b'{"type":"response.output_text.delta","delta":"sk\\u002dabcdefghijkl"}', True),
    (False, b"not json sk-abcdefghijklmnopqrstuvwx", True),
    (False, b'[1,2,{"audio":"QUJD"}]', True),
    (False, b"\x00\x01binary", False),
    (False, b'{"type":"error","error":{"type":"invalid_request_error","code":"bad"}}', True),
    (False, b'{"type":"x.unknown","big":1e400,"n":99999999999999999999999}', True),
    (
        True,
        b'{"type":"conversation.item.create","item":{"content":[{"text":"bob@example.com"}]}}',
        True,
    ),
]


def fixture_messages(fixtures: Path, name: str) -> list[Message]:
    lines = (fixtures / name).read_text().splitlines()
    return [
        (entry["direction"] == "client", orjson.dumps(entry["event"]), True)
        for entry in map(json.loads, filter(None, lines))
    ]


def bench_messages(mix: str, count: int) -> list[Message]:
    """The benchmark's traffic, 37 server messages per 10 client ones, stamped by a fixed clock."""
    server, client = traffic.server_events(mix), traffic.client_event(mix)
    stamps = itertools.count(10**19)
    messages: list[Message] = []
    while len(messages) < count:
        messages += [(False, traffic.payload(next(server), next(stamps)), True) for _ in range(37)]
        messages += [(True, traffic.payload(client, next(stamps)), True) for _ in range(10)]
    return messages


def items(messages: Sequence[Message], raw: bool, deflate: bool) -> Iterator[Item]:
    """The hand-over items of one session's messages: whole messages, or raw frames."""
    encoders = {
        side: [PerMessageDeflate(False, False, 15, 15)] if deflate else [] for side in (0, 1)
    }
    for seq, (from_client, body, is_text) in enumerate(messages, start=1):
        ts, flags = STARTED_AT + seq * 0.0137, wire.FROM_CLIENT if from_client else 0
        if raw:
            frame = Frame(Opcode.TEXT if is_text else Opcode.BINARY, body)
            chunk = frame.serialize(mask=from_client, extensions=encoders[from_client])
            yield Item(wire.RAW, flags, 1, seq, ts, chunk)
        else:
            yield Item(wire.MESSAGE, flags | (wire.IS_TEXT if is_text else 0), 1, seq, ts, body)


def recorded(
    messages: Sequence[Message], api: str, mode: str, pii: bool, raw: bool, deflate: bool
) -> list[str]:
    """Every record submitted, then the traffic metrics, as text."""
    submitted: list[Sequence[Record]] = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/digest.db")
        upgrade(engine)
        writer = Writer(engine)  # never started: what is submitted is only collected here
        writer.submit = collect(submitted)  # type: ignore[method-assign]
        registry = CollectorRegistry()
        metrics = Metrics(registry, property_labels=("team",))
        recording = Recording(writer, metrics, PriceTable(BUILTIN_PRICES), redact_pii=pii)
        recording.handle(0, open_item(api, mode, raw, deflate))
        for item in items(messages, raw, deflate):
            recording.handle(0, item)
        close = {"code": 1000, "reason": "bye sk-abcdefghijklmnopqrstu", "by": "client"}
        recording.handle(0, Item(wire.CLOSE, 0, 1, 0, STARTED_AT + 99, orjson.dumps(close)))
        exposed = generate_latest(registry).decode().splitlines()
    # Creation times, the writer's and the queue's gauges vary from run to run.
    kept = [line for line in exposed if not any(w in line for w in ("_created", "writer", "queue"))]
    return [repr(list(records)) for records in submitted] + kept


def collect(submitted: list[Sequence[Record]]) -> Callable[..., bool]:
    """A writer's `submit` that only keeps what it is given."""

    def submit(records: Sequence[Record], replayed: bool = False) -> bool:
        submitted.append(records)
        return True

    return submit


def open_item(api: str, mode: str, raw: bool, deflate: bool) -> Item:
    fields = {
        "id": "digest-session",
        "started_at": STARTED_AT,
        "api": api,
        "path": "/v1/realtime",
        "model": "gpt-realtime" if api == "ga" else "gpt-4o-realtime-preview",
        "record_mode": mode,
        "raw": raw,
        "extensions": "permessage-deflate; client_max_window_bits" if deflate else None,
        "properties": [["team", "blue"], ["other", "x"]],
    }
    return Item(wire.OPEN, 0, 1, 0, STARTED_AT, orjson.dumps(fields))


def runs(fixtures: Path) -> Iterator[tuple[str, list[str]]]:
    transports = ((False, False), (True, False), (True, True))
    for api in ("ga", "beta"):
        messages = fixture_messages(fixtures, f"{api}.jsonl") + ODD
        for mode, pii, (raw, deflate) in itertools.product(
            ("full", "text", "metadata"), (False, True), transports
        ):
            name = f"{api} {mode} pii={pii} raw={raw} deflate={deflate}"
            yield name, recorded(messages, api, mode, pii, raw, deflate)
    for mix, deflate, mode in itertools.product(
        ("voice", "small"), (False, True), ("full", "metadata")
    ):
        yield (
            f"bench {mix} {mode} deflate={deflate}",
            recorded(bench_messages(mix, 3000), "ga", mode, False, True, deflate),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument(
        "--show", action="store_true", help="one digest per run, not only the total"
    )
    args = parser.parse_args()
    total = hashlib.sha256()
    for name, lines in runs(args.fixtures):
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        total.update(digest.encode())
        if args.show:
            print(f"{digest[:16]}  {name} ({len(lines)} lines)")
    print(f"records and metrics digest: {total.hexdigest()}")


if __name__ == "__main__":
    main()
