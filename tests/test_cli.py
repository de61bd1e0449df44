"""The `rtrec` command line: listings, exports and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rtrec.cli import main
from storage.records import EventRecord, ResponseDone, SessionOpened
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
    usage = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
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
    assert "run `rtrec db upgrade" in result.stderr


def test_db_upgrade_then_empty_listing(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert rtrec("db", "upgrade", "--db", url).returncode == 0
    listing = rtrec("sessions", "--db", url)
    assert listing.returncode == 0
    assert "no sessions recorded yet" in listing.stdout


def test_prune_deletes_old_sessions(filled: Engine, db_url: str, capsys):
    assert main(["prune", "--older-than", "0", "--db", db_url]) == 0
    assert "deleted 1 session(s)" in capsys.readouterr().out
    assert main(["sessions", "--json", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == []
