"""The `rtrec` command line: listings, exports and one-line errors for bad input."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from rtrec.cli import main
from storage.db import current_revision, make_engine, upgrade
from storage.models import Call, UpgradeFailure, table
from storage.records import (
    CallSeen,
    EventRecord,
    ResponseDone,
    SessionClosed,
    SessionOpened,
    UpgradeFailed,
)
from storage.writer import Writer

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def rtrec(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "rtrec.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.fixture
def filled(engine: Engine) -> Engine:
    writer = Writer(engine)
    writer.start()
    writer.submit([SessionOpened("s-1", NOW, "ga", "/v1/realtime?model=m", "full", model="m")])
    for seq in range(3):
        writer.submit([EventRecord("s-1", seq, NOW, "server", "x", 5, payload={"type": "x"})])
    usage: dict[str, int | None] = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
    writer.submit([ResponseDone("s-1", "resp_1", NOW, "completed", usage=usage)])
    writer.close()
    return engine


def test_sessions_json_has_columns_and_totals(filled: Engine, db_url: str, capsys):
    assert main(["sessions", "--json", "--db", db_url]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["model"], row["api"]) == ("s-1", "m", "ga")
    assert (row["events"], row["responses"], row["total_tokens"]) == (3, 1, 15)
    assert row["started_at"].startswith("2026-01-02T12:00:00")


def test_export_jsonl_is_in_seq_order(filled: Engine, db_url: str, capsys):
    assert main(["export", "s-1", "--format", "jsonl", "--db", db_url]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seq"] for line in lines] == [0, 1, 2]
    assert lines[0]["payload"] == {"type": "x"}


def test_wav_export_without_audio_is_a_clear_error(filled: Engine, db_url: str, capsys):
    assert main(["export", "s-1", "--format", "wav", "--db", db_url]) == 1
    assert "session s-1 has no recorded audio" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["proxy", "--listen-port", "99999"], "is not a port"),
        (["proxy", "--upstream", "ftp://example.com"], "is not an http(s):// or ws(s):// URL"),
        (["proxy", "--record", "everything"], "invalid choice"),
        (["proxy", "--pricing", "/no/such/file.toml"], "not found"),
        (["proxy", "--queue-size", "0"], "must be at least 1"),
        (["sessions", "--db", "sqlite:////no/such/dir/x.db"], "does not exist"),
        (["sessions", "--db", "nonsense://"], "database URL"),
        (["export", "missing", "--format", "jsonl"], "no session 'missing'"),
    ],
)
def test_bad_input_gets_one_line_and_nonzero_exit(args, message, engine, db_url, tmp_path):
    if args[0] == "export":
        args = [*args, "--db", db_url]
    result = rtrec(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_variable_names_itself(tmp_path):
    result = rtrec("proxy", cwd=tmp_path, env={"RTREC_METRICS_PORT": "lots", "PATH": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "rtrec proxy: RTREC_METRICS_PORT: 'lots' is not a whole number (see rtrec proxy --help)"
    )


def test_old_schema_is_reported_not_a_traceback(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "old.db").execute("create table t (x)").connection.close()
    result = rtrec("sessions", "--db", f"sqlite:///{tmp_path / 'old.db'}")
    assert result.returncode == 1
    assert "run `uv run rtrec db upgrade" in result.stderr


def test_db_upgrade_then_empty_listing(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert rtrec("db", "upgrade", "--db", url).returncode == 0
    listing = rtrec("sessions", "--db", url)
    assert listing.returncode == 0
    assert "no sessions recorded yet" in listing.stdout


def test_prune_deletes_old_failed_connection_attempts(engine: Engine, db_url: str, capsys):
    writer = Writer(engine)
    writer.start()
    writer.submit([UpgradeFailed(NOW, 502, "/v1/realtime", "connection refused")])
    writer.close()
    assert main(["prune", "--older-than", "0", "--db", db_url]) == 0
    assert "deleted 0 session(s), 0 call(s) and 1 failed connection attempt(s)" in (
        capsys.readouterr().out
    )
    with engine.connect() as connection:
        assert connection.execute(select(table(UpgradeFailure))).all() == []


def test_prune_deletes_old_calls_no_session_watches(engine: Engine, db_url: str, capsys):
    writer = Writer(engine)
    writer.start()
    writer.submit([CallSeen("rtc_old", "ga", NOW, transport="webrtc", status="ended")])
    writer.close()
    assert main(["prune", "--older-than", "0", "--db", db_url]) == 0
    assert "deleted 0 session(s), 1 call(s)" in capsys.readouterr().out
    with engine.connect() as connection:
        assert connection.execute(select(table(Call))).all() == []


def test_prune_deletes_old_sessions(filled: Engine, db_url: str, capsys):
    assert main(["prune", "--older-than", "0", "--db", db_url]) == 0
    assert "deleted 1 session(s)" in capsys.readouterr().out
    assert main(["sessions", "--json", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_prune_refuses_an_old_schema_instead_of_upgrading_it(db_url: str, capsys):
    old = make_engine(db_url)
    upgrade(old, "0001")
    assert main(["prune", "--older-than", "0", "--db", db_url]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rtrec prune: the database "), error
    assert error.count("\n") == 1, error
    assert "is at schema 0001" in error
    assert "run `uv run rtrec db upgrade" in error
    assert current_revision(old) == "0001"
    old.dispose()


def test_prune_names_a_missing_file_and_does_not_create_it(tmp_path: Path, capsys):
    missing = tmp_path / "typo.db"
    assert main(["prune", "--older-than", "0", "--db", f"sqlite:///{missing}"]) == 1
    assert capsys.readouterr().err == f"rtrec prune: database file {missing} does not exist\n"
    assert not missing.exists()


LONG_MODEL = "gpt-realtime-preview-2099-12-31-with-a-long-suffix"


@pytest.fixture
def priced(engine: Engine) -> Engine:
    """A closed session 65 s long with a long model name and a priced response."""
    writer = Writer(engine)
    writer.start()
    opened = SessionOpened("s-long", NOW, "ga", "/v1/realtime", "full", model=LONG_MODEL)
    writer.submit([opened])
    usage: dict[str, int | None] = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    done = ResponseDone("s-long", "resp_1", NOW, "completed", usage=usage, cost_usd=0.0123)
    writer.submit([done, SessionClosed("s-long", NOW + timedelta(seconds=65), 1000, "", "client")])
    writer.close()
    return engine


def test_sessions_table_shows_cost_duration_and_values_in_full(priced: Engine, db_url: str):
    piped = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    listing = rtrec("sessions", "--db", db_url, env=piped)
    assert listing.returncode == 0, listing.stderr
    header, _rule, row = listing.stdout.splitlines()
    assert header.split() == [
        "id", "started", "length", "model", "api", "events", "resp",
        "tokens", "cost", "closed",
    ]  # fmt: skip
    assert row.split() == [
        "s-long", "2026-01-02T12:00:00+00:00", "1m05s", LONG_MODEL, "ga", "0",
        "1", "120", "$0.0123", "1000", "client",
    ]  # fmt: skip


@pytest.fixture
def sideband(engine: Engine) -> Engine:
    """A WebRTC call and the sideband session that watched it."""
    writer = Writer(engine)
    writer.start()
    call = CallSeen("rtc_cli1", "ga", NOW, transport="webrtc", status="ended")
    opened = SessionOpened(
        "s-side", NOW, "ga", "/v1/realtime?call_id=rtc_cli1", "full", call_id="rtc_cli1"
    )
    writer.submit([call, opened])
    writer.close()
    return engine


def test_sessions_shows_a_sidebands_transport_and_call(sideband: Engine, db_url: str):
    piped = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    listing = rtrec("sessions", "--db", db_url, env=piped)
    assert listing.returncode == 0, listing.stderr
    _header, _rule, row = listing.stdout.splitlines()
    assert row.split()[4:6] == ["ga", "webrtc:rtc_cli1"]
    as_json = json.loads(rtrec("sessions", "--db", db_url, "--json").stdout)
    assert (as_json[0]["call_id"], as_json[0]["transport"]) == ("rtc_cli1", "webrtc")


def test_calls_lists_each_call_with_its_transport_status_and_sessions(
    sideband: Engine, db_url: str
):
    piped = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    listing = rtrec("calls", "--db", db_url, env=piped)
    assert listing.returncode == 0, listing.stderr
    header, _rule, row = listing.stdout.splitlines()
    assert header.split() == [
        "id", "started", "length", "model", "api", "via", "status", "sess", "cost",
    ]  # fmt: skip
    assert row.split() == [
        "rtc_cli1", "2026-01-02T12:00:00+00:00", "-", "-", "ga", "webrtc", "ended", "1", "-",
    ]  # fmt: skip
    narrow = rtrec("calls", "--db", db_url, env={**os.environ, "COLUMNS": "80"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert narrow.stdout.splitlines()[2].split()[0] == "rtc_cli1"
    as_json = json.loads(rtrec("calls", "--db", db_url, "--json").stdout)
    assert (as_json[0]["id"], as_json[0]["sessions"]) == ("rtc_cli1", 1)
    assert as_json[0]["created_at"] == "2026-01-02T12:00:00+00:00"


def test_calls_on_an_empty_database_says_how_calls_get_recorded(engine: Engine, db_url: str):
    listing = rtrec("calls", "--db", db_url)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("no calls recorded yet")


def test_a_narrow_terminal_gets_whole_short_ids_that_commands_take(
    priced: Engine, db_url: str, tmp_path: Path
):
    writer = Writer(priced)
    writer.start()
    twins = ["01a24e5b-3b0c-702a-92d0-bb6833a50f01", "01a24e5b-3b0c-702b-92d0-bb6833a50f01"]
    writer.submit([SessionOpened(twin, NOW, "ga", "/v1/realtime", "full") for twin in twins])
    writer.close()
    listing = rtrec("sessions", "--db", db_url, env={**os.environ, "COLUMNS": "80"})
    assert listing.returncode == 0, listing.stderr
    header, _rule, *rows = listing.stdout.splitlines()
    assert max(len(line) for line in listing.stdout.splitlines()) <= 80
    assert header.split()[-1] == "closed"
    # One line per session, each id whole: the shortest prefix apart from the others.
    assert sorted(row.split()[0] for row in rows) == [
        "01a24e5b-3b0c-702a",
        "01a24e5b-3b0c-702b",
        "s-long",
    ]
    assert "1000 client" in next(row for row in rows if row.startswith("s-long"))
    exported = rtrec(
        "export", "01a24e5b-3b0c-702b", "--format", "jsonl", "--db", db_url, cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr


def test_jsonl_export_times_have_a_timezone(filled: Engine, db_url: str, capsys):
    assert main(["export", "s-1", "--format", "jsonl", "--db", db_url]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["ts"] == "2026-01-02T12:00:00+00:00"


def test_export_takes_a_unique_id_prefix(filled: Engine, db_url: str, capsys):
    assert main(["export", "s-", "--format", "jsonl", "--db", db_url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_an_ambiguous_id_prefix_is_one_line(filled: Engine, db_url: str, tmp_path: Path):
    writer = Writer(filled)
    writer.start()
    writer.submit([SessionOpened("s-2", NOW, "ga", "/v1/realtime", "full")])
    writer.close()
    result = rtrec("export", "s-", "--format", "jsonl", "--db", db_url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "rtrec export: 's-' starts more than one session id: give more of it\n"


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["sessions"], "sessions"),
        (["export", "s-1", "--format", "jsonl"], "export"),
        (["db", "upgrade"], "db upgrade"),
    ],
)
def test_a_file_that_is_not_a_database_is_named(command: list[str], named: str, tmp_path: Path):
    junk = tmp_path / "notes.txt"
    junk.write_text("these are my notes, not a database\n" * 100)
    result = rtrec(*command, "--db", f"sqlite:///{junk}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"rtrec {named}: {junk} is not an SQLite database\n"


@pytest.fixture
def many_events(sqlite_db_url: str) -> str:
    """A session with about 1 MB of JSONL: more than a pipe and stdout's buffer hold."""
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    writer.submit([SessionOpened("big", NOW, "ga", "/v1/realtime", "full")])
    for seq in range(5000):
        payload = {"type": "x", "text": "y" * 150}
        writer.submit([EventRecord("big", seq, NOW, "server", "x", 160, payload=payload)])
    writer.close()
    engine.dispose()
    return sqlite_db_url


@pytest.fixture
def many_sessions(sqlite_db_url: str) -> str:
    """3,000 sessions: a `sessions` table of about 300 kB."""
    engine = make_engine(sqlite_db_url)
    upgrade(engine)
    writer = Writer(engine)
    writer.start()
    for index in range(3000):
        writer.submit([SessionOpened(f"s-{index:05d}", NOW, "ga", "/v1/realtime", "full")])
    writer.close()
    engine.dispose()
    return sqlite_db_url


@pytest.mark.parametrize(
    ("database", "args"),
    [
        ("many_events", ["export", "big", "--format", "jsonl"]),
        ("many_sessions", ["sessions", "--limit", "3000"]),
    ],
)
def test_output_into_a_closed_pipe_ends_quietly(
    database: str, args: list[str], request: pytest.FixtureRequest, tmp_path: Path
):
    db_url = request.getfixturevalue(database)
    with subprocess.Popen(
        [sys.executable, "-m", "rtrec.cli", *args, "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()  # what `| head -1` does: one line, then close
        process.stdout.close()
        stderr = process.stderr.read()
        code = process.wait(timeout=60)
    assert first.strip()
    assert stderr == b""
    assert code == 141


def run_on_a_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """`rtrec ARGS` with stderr on a pseudo-terminal and stdout on a pipe, as `… > file` is."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "rtrec.cli", *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=cwd,
    ) as process:
        os.close(terminal)
        stdout, _ = process.communicate(timeout=120)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the terminal's last writer has gone
        while chunk := os.read(controller, 65536):
            seen += chunk
    os.close(controller)
    return process.returncode, stdout.decode(), seen.decode()


def test_export_shows_progress_on_a_terminal(many_events: str, tmp_path: Path):
    code, stdout, terminal = run_on_a_terminal(
        "export", "big", "--format", "jsonl", "--db", many_events, cwd=tmp_path
    )
    assert code == 0
    assert len(stdout.splitlines()) == 5000
    assert "exported events 5,000 of 5,000" in terminal


def test_export_shows_no_progress_when_stderr_is_not_a_terminal(many_events: str, capsys):
    assert main(["export", "big", "--format", "jsonl", "--db", many_events]) == 0
    assert capsys.readouterr().err == ""


def test_prune_shows_progress_on_a_terminal(many_events: str, tmp_path: Path):
    code, stdout, terminal = run_on_a_terminal(
        "prune", "--older-than", "0", "--db", many_events, cwd=tmp_path
    )
    assert code == 0
    assert "deleted 1 session(s)" in stdout
    assert "deleted sessions 1 of 1" in terminal


def test_an_empty_listing_names_the_last_failed_connection_attempt(
    engine: Engine, db_url: str, capsys
):
    writer = Writer(engine)
    writer.start()
    writer.submit([UpgradeFailed(NOW, 502, "/v1/realtime", "Name or service not known")])
    writer.close()
    assert main(["sessions", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "no sessions recorded yet" in out
    assert (
        "the last connection attempt failed (2026-01-02T12:00:00+00:00, HTTP 502): "
        "Name or service not known" in out
    )


@pytest.mark.parametrize("written", ["rtrec-demo.db", "./x.db", "{tmp}/a.db"])
def test_a_bare_file_path_is_an_sqlite_database(written: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = written.format(tmp=tmp_path)
    assert main(["db", "upgrade", "--db", path]) == 0
    assert (tmp_path / Path(path).name).is_file()
    monkeypatch.setenv("RTREC_DB", path)
    assert main(["sessions"]) == 0
    assert "no sessions recorded yet" in capsys.readouterr().out
