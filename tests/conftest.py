"""Shared fixtures: real SQLite files, the local fake Realtime server and a real `rtrec proxy`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from storage.db import make_engine, upgrade
from tests.pgserver import PostgresServer, postgres_bin_dir
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess, proxy_runner


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    """A fresh SQLite file, for tests about SQLite itself (file bytes, locks, WAL)."""
    return f"sqlite:///{tmp_path / 'rtrec.db'}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole test session."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries not found (apt-get install postgresql)")
    server = PostgresServer(bin_dir, free_port())
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, so stopping it disturbs no other test."""
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "PostgreSQL server binaries not found"
    server = PostgresServer(bin_dir, free_port())
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def postgres_db_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database for the test: every test using it runs on SQLite and on PostgreSQL."""
    name = "sqlite_db_url" if request.param == "sqlite" else "postgres_db_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def run_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    with proxy_runner(tmp_path) as run:
        yield run


@pytest.fixture
async def fake_server() -> AsyncIterator[Any]:
    """The local stand-in for the OpenAI Realtime service, with its own log of every frame."""
    from simulator.server import FakeRealtimeServer

    async with FakeRealtimeServer() as server:
        yield server


# The browser tests' shared parts: each of their modules defines `recorded` (a dict with the
# `db_url` and `folder` it recorded into); selenium is imported only when one of them runs.
@pytest.fixture(scope="module")
def dashboard_url(recorded: dict[str, Any]) -> Iterator[str]:
    """The dashboard served on the module's recording."""
    from tests.support.browser import served

    with served(recorded["db_url"], recorded["folder"] / "dashboard.log") as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium at the screen size the dashboard is checked at (1366x768)."""
    from tests.support.browser import SCREEN, chromium

    with chromium(tmp_path / "profile") as driver:
        driver.set_window_size(*SCREEN)
        yield driver
