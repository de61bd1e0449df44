"""Cold load times of each dashboard page on a big SQLite recording (10k sessions, 5M events).

    uv run python benchmarks/dashboard_bench.py /tmp/rtrec-bench.db

The database is generated on first use and kept at the given path (regenerate with
`--regenerate`); it is upgraded to the current schema before measuring. Every measurement starts
with Streamlit's caches cleared, so each loader really queries the database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.dashboard_data import generate
from storage.browse import SessionFilter
from storage.db import current_revision, head_revision, make_engine, open_for_reading, upgrade
from storage.models import AudioChunk, Event, RealtimeSession, table

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
TARGET_S = 1.0


def prepare(path: Path, sessions: int, events: int, regenerate: bool) -> str:
    url = f"sqlite:///{path}"
    if regenerate:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    fresh = not path.exists()
    engine = make_engine(url)
    if fresh:
        upgrade(engine, "0001")
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text("PRAGMA synchronous=OFF"))
            generate(connection, sessions, events)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s")
    if current_revision(engine) != head_revision():
        started = time.perf_counter()
        upgrade(engine)
        print(f"upgraded to {head_revision()} in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return url


def describe(url: str) -> dict[str, Any]:
    """Row counts and the sessions the detail page is measured on."""
    engine = open_for_reading(url)
    events, sessions, audio = table(Event), table(RealtimeSession), table(AudioChunk)
    with engine.connect() as connection:
        sizes = select(events.c.session_id, func.count().label("n")).group_by(events.c.session_id)
        by_size = sorted(connection.execute(sizes), key=lambda row: row.n)
        full = connection.execute(
            select(audio.c.session_id, func.count().label("n"))
            .group_by(audio.c.session_id)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
        count = connection.execute(select(func.count()).select_from(sessions)).scalar_one()
    engine.dispose()
    return {
        "sessions": count,
        "events": sum(row.n for row in by_size),
        "median": (by_size[len(by_size) // 2].session_id, by_size[len(by_size) // 2].n),
        "largest": (by_size[-1].session_id, by_size[-1].n),
        "audio": (full.session_id, full.n) if full else None,
    }


def clear() -> None:
    """Empties the dashboard's caches (data and engine), not Streamlit's own registries."""
    import streamlit as st

    from dashboard import data

    st.cache_data.clear()
    data._engine.clear()


def timed(label: str, call: Callable[[], Any], results: list[tuple[str, float]]) -> Any:
    started = time.perf_counter()
    value = call()
    results.append((label, time.perf_counter() - started))
    return value


def sessions_loaders(data: Any) -> dict[str, Callable[[], Any]]:
    now = time.time()
    from datetime import UTC, datetime, timedelta

    week = datetime.fromtimestamp(now, UTC) - timedelta(days=7)
    filters = {
        "no filter": SessionFilter(),
        "last 7 days": SessionFilter(started_from=week),
        "search 'refund'": SessionFilter(search="refund"),
        "search (no match)": SessionFilter(search="zebra crossing"),
        "has errors": SessionFilter(has_errors=True),
        "min cost $0.05": SessionFilter(min_cost_usd=0.05),
        "status error": SessionFilter(statuses=("error",)),
        "model + api": SessionFilter(models=("gpt-realtime-mini",), apis=("ga",)),
    }
    loaders: dict[str, Callable[[], Any]] = {
        "filter choices + live count": lambda: (
            data.filter_choices(),
            data.session_count(SessionFilter(statuses=("open",))),
        )
    }

    def count_and_first_page(chosen: SessionFilter) -> Callable[[], Any]:
        return lambda: (len(data.matching_sessions(chosen)), data.session_page(chosen, 1, 50))

    for name, chosen in filters.items():
        loaders[f"{name}: count + page 1"] = count_and_first_page(chosen)
    loaders["no filter: page 100"] = lambda: data.session_page(SessionFilter(), 100, 50)
    return loaders


def detail_loaders(data: Any, session_id: str) -> Callable[[], Any]:
    def load() -> Any:
        session = data.session(session_id)
        version = data.session_version(session)
        turns = data.turns(session_id, version)
        for turn in turns[:50]:
            if span := turn.get("audio"):
                key = (span["direction"], span["first_seq"], span["last_seq"])
                data.turn_audio(session_id, (*key, span.get("response_id")))
        data.audio_sides(session_id, version)
        data.responses(session_id, version)
        data.rate_limits(session_id, version)
        data.event_types(session_id, version)
        data.events(session_id, (), (), 1, 100, version)
        return len(turns)

    return load


def overview_loaders(data: Any, span: Any) -> Callable[[], Any]:
    def load() -> Any:
        for loader in (
            data.overview_totals,
            data.daily_sessions,
            data.daily_usage,
            data.daily_cost,
            data.daily_rate_limits,
            data.latency_percentiles,
            data.error_counts,
        ):
            loader(span)

    return load


def measure_loaders(described: dict[str, Any]) -> list[tuple[str, float]]:
    from dashboard import data

    results: list[tuple[str, float]] = []
    for name, load in sessions_loaders(data).items():
        clear()
        timed(f"Sessions · {name}", load, results)
    for kind in ("median", "largest", "audio"):
        if described[kind]:
            session_id, events = described[kind]
            clear()
            timed(
                f"Session · {kind} session ({events:,} events)",
                detail_loaders(data, session_id),
                results,
            )
    from datetime import UTC, datetime, timedelta

    for name, span in (
        ("last 30 days", (datetime.now(UTC) - timedelta(days=30), None)),
        ("any time", (None, None)),
    ):
        clear()
        timed(f"Overview · {name}", overview_loaders(data, span), results)
    return results


Case = tuple[str, dict[str, str], str | None, str | None]


def run_page(query: dict[str, str], page: str | None, search: str | None) -> float:
    """Seconds of one AppTest run with empty caches: a page by query, path and search."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params.update(query)
    if page is not None or search is not None:
        app.run()
        if page is not None:
            app.switch_page(page)
        if search is not None:
            app.text_input(key="sessions_search").set_value(search)
    clear()
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{page or query}: {app.exception[0].value}")
    return elapsed


def measure_apptest(described: dict[str, Any], repeat: int) -> list[tuple[str, float]]:
    # Import Streamlit, pandas and every page's elements once, outside the measurements.
    for query, page in (({}, None), ({"session": described["median"][0]}, None)):
        run_page(query, page, None)
    run_page({}, "app_pages/overview.py", None)
    cases: list[Case] = [
        ("Sessions", {}, None, None),
        ("Sessions · search (no match)", {}, None, "zebra crossing"),
    ]
    for kind in ("median", "largest", "audio"):
        if described[kind]:
            cases.append((f"Session · {kind}", {"session": described[kind][0]}, None, None))
    cases.append(("Overview · last 30 days", {}, "app_pages/overview.py", None))
    return [
        (
            f"AppTest {label}",
            statistics.median(run_page(query, page, search) for _ in range(repeat)),
        )
        for label, query, page, search in cases
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db_path", type=Path, help="where the generated SQLite file is kept")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="AppTest runs per page (median)")
    args = parser.parse_args()
    url = prepare(args.db_path, args.sessions, args.events, args.regenerate)
    os.environ["RTREC_DB"] = url
    described = describe(url)
    print(
        f"{described['sessions']:,} sessions, {described['events']:,} events, "
        f"{args.db_path.stat().st_size / 1e9:.2f} GB, schema {head_revision()}"
    )
    results = measure_loaders(described) + measure_apptest(described, args.repeat)
    width = max(len(label) for label, _ in results)
    for label, seconds in results:
        flag = "" if seconds < TARGET_S else "  <-- over target"
        print(f"{label:<{width}}  {seconds * 1000:8.1f} ms{flag}")
    return 0 if all(seconds < TARGET_S for _, seconds in results) else 1


if __name__ == "__main__":
    sys.exit(main())
