"""Every bad `rtrec proxy` setting stops it at start with one line naming the problem."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.auth import PASSWORD_ENV
from rtrec.cli import main
from rtrec.settings import DASHBOARD_PASSWORD_ENV, exposure_warning
from tests.support.net import free_port


@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...]
    code: int
    stderr: str


def parse_error(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """`rtrec proxy ARGS` where the command line itself is wrong: refused before anything runs."""
    with pytest.raises(SystemExit) as stopped:
        main(["proxy", *args])
    return Outcome(args, int(stopped.value.code or 0), capsys.readouterr().err)


def refused_start(capsys: pytest.CaptureFixture[str], db_dir: Path, *args: str) -> Outcome:
    """`rtrec proxy ARGS` run in this process, where it must stop before serving anything."""
    defaults = {"--listen-port": str(free_port()), "--metrics-port": "0"}
    defaults["--db"] = f"sqlite:///{db_dir / 'fine.db'}"
    for flag in args:
        defaults.pop(flag, None)
    code = main(["proxy", *sum(defaults.items(), ()), *args])
    return Outcome(args, code, capsys.readouterr().err)


def start(cwd: Path, env: dict[str, str]) -> Outcome:
    """A real `rtrec proxy` process with `env` added to its environment; it must refuse."""
    command = [sys.executable, "-m", "rtrec.cli", "proxy"]
    if "RTREC_LISTEN_PORT" not in env:
        command += ["--listen-port", str(free_port())]
    if "RTREC_METRICS_PORT" not in env:
        command += ["--metrics-port", "0"]
    if "RTREC_DB" not in env:
        command += ["--db", f"sqlite:///{cwd / 'fine.db'}"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=20,  # a refused start takes about a second
        cwd=cwd,
        env={**os.environ, **env},
    )
    return Outcome(tuple(env), result.returncode, result.stderr)


def assert_refused(outcome: Outcome, *names: str) -> None:
    lines = outcome.stderr.strip().splitlines()
    assert outcome.code != 0, outcome
    assert len(lines) == 1, outcome
    assert "Traceback" not in outcome.stderr
    for name in names:
        assert name in lines[0], outcome


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The refused proxy's working directory; a refused start must leave nothing in it."""
    yield tmp_path
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rtrec.db")] == []


# --------------------------------------------------------------------------- option by option


def test_ports(capsys: pytest.CaptureFixture[str], workdir: Path, busy_port: int):
    for args in (("--listen-port", "-1"), ("--metrics-port", "abc"), ("--metrics-port", "65536")):
        assert_refused(parse_error(capsys, *args), args[0], args[1])
    busy = str(busy_port)
    outcome = refused_start(capsys, workdir, "--listen-port", busy)
    assert_refused(outcome, "--listen-port", busy, "in use")
    outcome = refused_start(capsys, workdir, "--metrics-port", busy)
    assert_refused(outcome, "--metrics-port", busy, "in use")
    port = str(free_port())
    outcome = refused_start(capsys, workdir, "--listen-port", port, "--metrics-port", port)
    assert_refused(outcome, "--metrics-port", port, "--listen-port")
    outcome = refused_start(capsys, workdir, "--listen-host", "256.1.1.1")
    assert_refused(outcome, "--listen-host", "256.1.1.1")
    outcome = refused_start(
        capsys, workdir, "--metrics-host", "999.0.0.1", "--metrics-port", str(free_port())
    )
    assert_refused(outcome, "--metrics-host", "999.0.0.1")


def test_upstream_url(capsys: pytest.CaptureFixture[str], workdir: Path):
    for url in ("not a url", "http://", "openai.com", "//api.openai.com"):
        assert_refused(parse_error(capsys, "--upstream", url), "--upstream", url)
    outcome = refused_start(capsys, workdir, "--upstream", "https://api.openai.com:99999")
    assert_refused(outcome, "https://api.openai.com:99999", "port")
    outcome = refused_start(capsys, workdir, "--upstream", "http://exa mple.com")
    assert_refused(outcome, "exa mple.com")


def test_mode(capsys: pytest.CaptureFixture[str]):
    for mode in ("transparent", "Reverse", ""):
        assert_refused(parse_error(capsys, "--mode", mode), "--mode", "reverse", "regular")


def test_record_mode(capsys: pytest.CaptureFixture[str]):
    for mode in ("FULL", "none", "audio"):
        assert_refused(parse_error(capsys, "--record", mode), "--record", "metadata")


def test_pricing_file(capsys: pytest.CaptureFixture[str], workdir: Path):
    assert_refused(parse_error(capsys, "--pricing", str(workdir)), "--pricing", str(workdir))
    files = {
        "malformed.toml": ('[models."gpt-realtime"]\ntext_input = = 4\n', "line 2"),
        "unknown-key.toml": ('[models."gpt-realtime"]\ntext_inptu = 4.0\n', ":2", "text_inptu"),
        "unknown-table.toml": ('[modles."gpt-realtime"]\ntext_input = 4.0\n', ":1", "modles"),
        "negative.toml": ('[models."m"]\n\ntext_output = -16.0\n', ":3", "text_output", ">= 0"),
        "nan.toml": ('[models."gpt-realtime"]\naudio_input = nan\n', ":2", "audio_input"),
        "infinite.toml": ('[models."gpt-realtime"]\naudio_output = inf\n', ":2", "audio_output"),
        "text-price.toml": ('[models."gpt-realtime"]\ntext_input = "4.00"\n', ":2", "text_input"),
        "not-a-table.toml": ('models = "gpt-realtime"\n', ":1", "models"),
    }
    for name, (text, *problem) in files.items():
        path = workdir / name
        path.write_text(text)
        assert_refused(refused_start(capsys, workdir, "--pricing", str(path)), str(path), *problem)
    latin1 = workdir / "latin1.toml"
    latin1.write_bytes(b'[models."caf\xe9"]\n')
    assert_refused(refused_start(capsys, workdir, "--pricing", str(latin1)), str(latin1), "utf-8")


def test_queue_size(capsys: pytest.CaptureFixture[str]):
    for size in ("-1", "1e3", "", "100000000000000000000x"):
        assert_refused(parse_error(capsys, "--queue-size", size), "--queue-size")


def test_flush_interval(capsys: pytest.CaptureFixture[str]):
    for interval in ("0", "-5", "0.5", "250ms"):
        assert_refused(parse_error(capsys, "--flush-interval-ms", interval), "--flush-interval-ms")


def test_retention_days(capsys: pytest.CaptureFixture[str]):
    for days in ("-1", "x", "1.5"):
        assert_refused(parse_error(capsys, "--retention-days", days), "--retention-days", days)


def test_database_url(capsys: pytest.CaptureFixture[str], workdir: Path):
    (workdir / "garbage.db").write_bytes(b"this is not an SQLite database, " * 200)
    (workdir / "a-directory.db").mkdir()
    closed_port = free_port()
    cases = {
        "nonsense://": ("nonsense",),
        "mysql://user@host/db": ("mysql",),
        "postgresql+pg8000://u:pw@127.0.0.1/db": ("not installed", "postgresql+psycopg://"),
        "sqlite:////no/such/dir/rtrec.db": ("/no/such/dir",),
        f"sqlite:///{workdir / 'garbage.db'}": ("garbage.db is not an SQLite database",),
        f"sqlite:///{workdir / 'a-directory.db'}": ("a-directory.db",),
        f"postgresql+psycopg://rtrec@127.0.0.1:{closed_port}/rtrec": (str(closed_port), "refused"),
    }
    for url, problem in cases.items():
        assert_refused(refused_start(capsys, workdir, "--db", url), *problem)


def test_environment_variables(workdir: Path):
    """Checked by real processes: the variables are read when the command line is built."""
    (workdir / "negative.toml").write_text('[models."m"]\ntext_input = -1\n')
    cases = {
        "RTREC_LISTEN_PORT": ("abc", "RTREC_LISTEN_PORT", "not a whole number"),
        "RTREC_RECORD": ("everything", "RTREC_RECORD", "full, text, metadata"),
        "RTREC_PRICING": (str(workdir / "negative.toml"), "negative.toml:2", "text_input"),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(
            pool.map(lambda item: start(workdir, env={item[0]: item[1][0]}), cases.items())
        )
    for outcome in outcomes:
        (variable,) = outcome.args
        assert_refused(outcome, *cases[variable][1:])


def test_refused_database_is_the_one_reported_even_from_a_read_only_directory(tmp_path: Path):
    """Nothing else is opened on the way to the error: no default ./rtrec.db, no second error."""
    read_only = tmp_path / "ro"
    read_only.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", read_only], check=True)
    try:
        closed_port = free_port()
        url = f"postgresql+psycopg://u@127.0.0.1:{closed_port}/x"
        outcome = start(read_only, env={"RTREC_DB": url})
    finally:
        subprocess.run(["umount", read_only], check=True)
    assert_refused(outcome, f"port {closed_port}", "refused")
    assert "rtrec.db" not in outcome.stderr


# --------------------------------------------------------------------------- listening addresses


@pytest.mark.parametrize(
    ("host", "exposed"),
    [
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("localhost", False),
        ("::1", False),
        ("[::1]", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("proxy.internal", True),
        ("256.1.1.1", False),  # no address: the start refuses it, nothing listens
    ],
)
def test_exposure_warning_is_for_addresses_beyond_loopback(host: str, exposed: bool):
    warning = exposure_warning({"listen-host": host, "metrics-host": "127.0.0.1"})
    if not exposed:
        assert warning is None
        return
    assert warning is not None
    assert f"--listen-host {host} reaches beyond this machine" in warning
    assert "--metrics-host" not in warning
    assert "transcripts, audio and /metrics are unauthenticated" in warning


@pytest.mark.parametrize(
    "args",
    [
        ("proxy", "--listen-host", "0.0.0.0", "--metrics-port", "0"),
        ("up", "--dashboard-host", "0.0.0.0", "--metrics-port", "0"),
    ],
)
def test_listening_beyond_loopback_warns_at_start(args: tuple[str, ...], tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "rtrec.cli", *args, "--db", "nonsense://"],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,
    )
    warning, refusal = result.stderr.splitlines()
    assert warning.startswith(f"rtrec {args[0]}: warning: {args[1]} 0.0.0.0 reaches beyond")
    assert "unauthenticated" in warning
    assert "nonsense" in refusal


@pytest.mark.parametrize("password", [False, True])
def test_exposure_warning_says_whether_the_dashboard_asks_for_a_password(password: bool):
    warning = exposure_warning({"dashboard-host": "0.0.0.0"}, dashboard_password=password)
    assert warning is not None
    if password:
        assert "the dashboard asks for RTREC_DASHBOARD_PASSWORD" in warning
        assert "the proxy and /metrics are unauthenticated" in warning
    else:
        assert "RTREC_DASHBOARD_PASSWORD is not set" in warning


ARGS = ("--metrics-port", "0", "--db", "nonsense://")


def test_the_start_up_warning_reads_the_dashboard_password_variable(tmp_path: Path):
    result = subprocess.run(
        [*(sys.executable, "-m", "rtrec.cli", "up", "--dashboard-host", "0.0.0.0"), *ARGS],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,
        env={**os.environ, DASHBOARD_PASSWORD_ENV: "open sesame"},
    )
    warning = result.stderr.splitlines()[0]
    assert "the dashboard asks for RTREC_DASHBOARD_PASSWORD" in warning
    assert "open sesame" not in result.stderr


def test_the_cli_and_the_dashboard_name_one_password_variable():
    assert DASHBOARD_PASSWORD_ENV == PASSWORD_ENV
