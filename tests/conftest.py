"""Shared fixtures: real SQLite files, the local fake Realtime server and a real `rtrec proxy`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_engine, upgrade

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"  # copies of shared/reference/fixtures


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rtrec.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()
