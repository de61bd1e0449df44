"""`rtrec`'s start-up: the parser loads no database, proxy or dashboard library; commands do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from storage.db import open_for_writing

HEAVY = ("sqlalchemy", "alembic", "mitmproxy", "streamlit", "pandas")


def loaded_after(code: str) -> set[str]:
    """The top-level packages of HEAVY that a fresh interpreter has loaded after `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split()) & set(HEAVY)


def test_importing_the_cli_loads_no_heavy_library():
    assert loaded_after("import rtrec.cli") == set()


def test_building_the_parser_loads_no_heavy_library():
    assert loaded_after("import rtrec.cli\nrtrec.cli.build_parser()") == set()


@pytest.mark.parametrize("command", ["up", "proxy", "sessions", "replay", "db upgrade"])
def test_a_commands_help_loads_no_heavy_library(command: str):
    argv = ["rtrec", *command.split(), "--help"]
    code = (
        "import contextlib, io, rtrec.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rtrec.cli.main({argv[1:]!r})"
    )
    assert loaded_after(code) == set()


def test_a_command_that_reads_the_database_loads_sqlalchemy(tmp_path):
    code = (
        f"import rtrec.cli\nrtrec.cli.main(['db', 'upgrade', '--db', {str(tmp_path / 'x.db')!r}])"
    )
    assert "sqlalchemy" in loaded_after(code)  # the probe sees what a command imports


def test_listing_sessions_checks_the_schema_without_alembic(tmp_path):
    db = tmp_path / "listed.db"
    open_for_writing(str(db)).dispose()
    code = f"import rtrec.cli\nrtrec.cli.main(['sessions', '--db', {str(db)!r}])"
    assert loaded_after(code) == {"sqlalchemy"}  # no Alembic to read one revision id


def test_the_parser_loads_neither_asyncio_nor_the_session_comparison():
    probe = "import sys, rtrec.cli\nrtrec.cli.build_parser()\nprint(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(result.stdout.split())
    assert {"asyncio", "analysis.diff", "rtrec.thresholds"} & loaded == set()
