"""Regression suites: replay every session tagged with some properties, diff each replay against
its original with the `--fail-on` thresholds, report one line per session and JUnit XML."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rtrec import thresholds
from rtrec.errors import CommandError
from rtrec.replay import ReplayError
from rtrec.replaying import ProxyChild, ReplayOptions, load, replay_one, replay_proxy

# Far more than a suite holds; a suite is meant to be curated, not every session ever recorded.
MAX_SESSIONS = 10_000


@dataclass
class CaseResult:
    """One session of a suite: its replay, the thresholds it tripped or why it could not run."""

    session_id: str
    replay_id: str | None = None
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        return "ERROR" if self.error else "FAIL" if self.failures else "PASS"


def suite_sessions(db_url: str, properties: Sequence[tuple[str, str]]) -> list[str]:
    """Ids of the original (not replayed) sessions carrying every property, oldest first."""
    from rtrec.database import reading
    from storage import browse

    with reading(db_url) as connection:
        rows = browse.list_sessions(connection, MAX_SESSIONS, properties)
    return [row["id"] for row in reversed(rows) if row["replay_of"] is None]


def _case(
    session_id: str,
    options: ReplayOptions,
    child: ProxyChild,
    specs: list[thresholds.Threshold],
    allow_unknown_cost: bool,
) -> CaseResult:
    result = CaseResult(session_id)
    started = time.monotonic()
    try:
        result.replay_id, _ = replay_one(load(options.db_url, session_id), options, child)
        report = _compare(options.db_url, session_id, result.replay_id)
        result.failures = thresholds.tripped(specs, report, allow_unknown_cost)
    except (ReplayError, CommandError) as exc:
        result.error = str(exc)
    result.seconds = time.monotonic() - started
    return result


def _compare(db_url: str, original: str, replay: str) -> dict[str, Any]:
    from analysis import diff
    from rtrec.database import reading
    from storage.recording import session_summary

    with reading(db_url) as connection:
        a, b = session_summary(connection, original), session_summary(connection, replay)
    if a is None or b is None:
        raise CommandError(f"session {original if a is None else replay} vanished meanwhile")
    return diff.compare(a, b)


def line(result: CaseResult) -> str:
    """The one line printed per session."""
    head = f"{result.outcome:5} {result.session_id}"
    if result.replay_id:
        head += f" -> {result.replay_id}"
    head += f" ({result.seconds:.1f} s)"
    reasons = [result.error] if result.error else result.failures
    return f"{head}: {'; '.join(reasons)}" if reasons else head


def run_suite(
    session_ids: list[str],
    options: ReplayOptions,
    specs: list[thresholds.Threshold],
    allow_unknown_cost: bool,
    concurrency: int,
) -> list[CaseResult]:
    """Replays and diffs every session through one proxy child, `concurrency` at a time;
    prints each session's line as it finishes."""
    with replay_proxy(options) as child, ThreadPoolExecutor(concurrency) as pool:
        futures = [
            pool.submit(_case, sid, options, child, specs, allow_unknown_cost)
            for sid in session_ids
        ]
        results = []
        for future in futures:
            results.append(future.result())
            print(line(results[-1]), flush=True)
    return results


def summary(results: list[CaseResult]) -> str:
    counts = {o: sum(r.outcome == o for r in results) for o in ("PASS", "FAIL", "ERROR")}
    return (
        f"{len(results)} sessions: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['ERROR']} could not replay"
    )


def write_junit(path: str, name: str, results: list[CaseResult]) -> None:
    """A JUnit XML report CI systems render: one test case per session, failures with reasons."""
    from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

    suite = TestSuite(name)
    for result in results:
        case = TestCase(result.session_id, classname="rtrec.replay", time=round(result.seconds, 3))
        if result.error:
            case.result = [Error(result.error, "replay_failed")]
        elif result.failures:
            case.result = [Failure("; ".join(result.failures), "regression")]
        if result.replay_id:
            case.system_out = f"replay: {result.replay_id}"
        suite.add_testcase(case)
    suite.update_statistics()  # type: ignore[no-untyped-call]
    report = JUnitXml()
    report.add_testsuite(suite)
    report.write(path, pretty=True)
