"""Opening a database to write or to read: the schema at head, or one line saying what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage.db import (
    DatabaseOpenError,
    current_revision,
    head_revision,
    make_engine,
    open_for_reading,
    open_for_writing,
    upgrade,
)
from tests.support.net import free_port


def problem(opening: object, url: str) -> str:
    """The message `opening(url)` refuses `url` with, checked to be one line."""
    with pytest.raises(DatabaseOpenError) as raised:
        opening(url)  # type: ignore[operator]
    message = str(raised.value)
    assert len(message.splitlines()) == 1, message
    return message


def at_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    upgrade(engine, revision)
    engine.dispose()


def test_writing_creates_the_schema_at_head(db_url: str):
    engine = open_for_writing(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_writing_upgrades_an_old_schema(db_url: str):
    at_revision(db_url, "0001")
    engine = open_for_writing(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_writing_without_migrating_refuses_an_old_schema_and_leaves_it(db_url: str):
    at_revision(db_url, "0001")
    message = problem(lambda url: open_for_writing(url, migrate=False), db_url)
    assert f"is at schema 0001, and this rtrec needs {head_revision()}" in message
    assert "run `uv run rtrec db upgrade" in message
    assert current_revision(make_engine(db_url)) == "0001"


def test_reading_refuses_an_old_schema(db_url: str):
    at_revision(db_url, "0001")
    message = problem(open_for_reading, db_url)
    assert "run `uv run rtrec db upgrade" in message


def test_reading_an_empty_database_says_there_is_no_rtrec_database(db_url: str):
    with make_engine(db_url).connect():  # an SQLite file comes into being, with no tables
        pass
    assert "no rtrec database at" in problem(open_for_reading, db_url)


def test_a_schema_from_a_newer_rtrec_asks_for_a_newer_rtrec(db_url: str):
    at_revision(db_url, "head")
    with make_engine(db_url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for opening in (open_for_reading, open_for_writing):
        assert "upgrade rtrec" in problem(opening, db_url)


def test_reading_gives_an_engine_that_refuses_writes(db_url: str):
    at_revision(db_url, "head")
    engine = open_for_reading(db_url)
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(text("DELETE FROM sessions"))
    engine.dispose()


def test_a_failed_upgrade_is_named_and_rolled_back(db_url: str):
    at_revision(db_url, "0008")
    with make_engine(db_url).begin() as connection:  # in the way of what 0009 creates
        connection.execute(text("CREATE TABLE upgrade_failures (x INTEGER)"))
    message = problem(open_for_writing, db_url)
    assert "cannot upgrade the schema of" in message
    assert "upgrade_failures" in message
    assert current_revision(make_engine(db_url)) == "0008"


@pytest.mark.parametrize("opening", [open_for_reading, open_for_writing])
def test_an_unreachable_server_is_named_without_the_password(opening: object):
    port = free_port()
    message = problem(opening, f"postgresql+psycopg://rtrec:s3cret-pw@127.0.0.1:{port}/rtrec")
    assert message.startswith(f"cannot connect to postgresql+psycopg://rtrec:***@127.0.0.1:{port}")
    assert "refused" in message
    assert "s3cret-pw" not in message


def test_a_missing_driver_points_at_psycopg():
    message = problem(open_for_writing, "postgresql+pg8000://rtrec:pw@127.0.0.1/rtrec")
    assert "not installed" in message
    assert "postgresql+psycopg://" in message


@pytest.mark.parametrize("opening", [open_for_reading, open_for_writing])
def test_a_file_that_is_not_a_database_is_named(opening: object, tmp_path: Path):
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database\n" * 100)
    assert problem(opening, f"sqlite:///{junk}") == f"{junk} is not an SQLite database"


def test_a_path_that_cannot_be_written_is_named(tmp_path: Path):
    (tmp_path / "a-directory.db").mkdir()
    assert "is a directory" in problem(open_for_writing, f"sqlite:///{tmp_path / 'a-directory.db'}")
    missing = tmp_path / "no" / "such" / "rtrec.db"
    assert "does not exist" in problem(open_for_writing, f"sqlite:///{missing}")
