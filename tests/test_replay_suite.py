"""`rtrec replay --property … --junit`: a suite of tagged sessions replayed against a scripted
upstream, one line per session, a summary, the exit code, and JUnit XML that CI tools accept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import xmlschema
from junitparser import Failure, JUnitXml

from tests.support.proxy import ProxyProcess
from tests.support.replays import converse, rtrec, session_ids
from tests.support.upstream import Answer, ScriptedUpstream

SCHEMA = Path(__file__).parent / "fixtures" / "junit-10.xsd"
QUESTIONS = [f"Question number {n}?" for n in range(1, 6)]
GOLDEN = {"Rtrec-Property-Suite": "golden"}


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream().running() as server:
        yield server


async def record_suite(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, db_url: str
) -> list[str]:
    """Five golden sessions and one untagged; the golden ones' ids in recording order."""
    proxy = run_proxy(upstream.base_url, db_url)
    for question in QUESTIONS:
        upstream.answers[question] = Answer(text=f"The answer to {question}")
        await converse(proxy, question, GOLDEN)
    await converse(proxy, "Not part of the suite")
    proxy.stop()
    return session_ids(db_url)[:5]


async def test_a_suite_with_one_regression_fails_that_session_only(
    run_proxy: Callable[..., ProxyProcess],
    upstream: ScriptedUpstream,
    sqlite_db_url: str,
    tmp_path: Path,
):
    golden = await record_suite(run_proxy, upstream, sqlite_db_url)
    upstream.answers[QUESTIONS[2]] = Answer(text="The", output_tokens=12)  # truncated
    report = tmp_path / "report.xml"
    code, out, err = await rtrec(
        "replay", "--property", "suite=golden", "--upstream", upstream.base_url,
        "--pace", "fast", "--concurrency", "2", "--junit", str(report),
        "--fail-on", "output_tokens±20%", "--fail-on", "structure_changed",
        "--db", sqlite_db_url,
    )  # fmt: skip
    assert code == 1, err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:5]] == [
        ["FAIL" if sid == golden[2] else "PASS", sid] for sid in golden
    ]
    assert lines[2].endswith(": output_tokens±20%: output_tokens 900 -> 12 (-98.7%)")
    assert lines[5] == "5 sessions: 4 passed, 1 failed, 0 could not replay"
    assert upstream.connections == 6 + 5  # six recorded, five replayed: not the untagged one

    xmlschema.XMLSchema(SCHEMA).validate(report)
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.tests, suite.failures, suite.errors) == (5, 1, 0)
    failed = [case for case in suite if not case.is_passed]
    assert [case.name for case in failed] == [golden[2]]
    (failure,) = failed[0].result
    assert isinstance(failure, Failure)
    assert failure.message == "output_tokens±20%: output_tokens 900 -> 12 (-98.7%)"


async def test_a_suite_without_regressions_passes(
    run_proxy: Callable[..., ProxyProcess], upstream: ScriptedUpstream, sqlite_db_url: str
):
    await record_suite(run_proxy, upstream, sqlite_db_url)
    code, out, err = await rtrec(
        "replay", "--property", "suite=golden", "--upstream", upstream.base_url,
        "--pace", "fast", "--fail-on", "output_tokens±20%", "--db", sqlite_db_url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "5 sessions: 5 passed, 0 failed, 0 could not replay"


async def test_a_suite_that_matches_nothing_is_one_line(sqlite_db_url: str):
    await rtrec("db", "upgrade", "--db", sqlite_db_url)
    code, _, err = await rtrec("replay", "--property", "suite=none", "--db", sqlite_db_url)
    assert (code, err) == (1, "rtrec replay: no recorded session is tagged suite=none\n")
