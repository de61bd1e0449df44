"""`rtrec diff`: two recorded sessions compared turn by turn, with thresholds that fail a check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from rtrec.errors import CommandError
from rtrec.settings import DB, add_settings

if TYPE_CHECKING:  # the comparison is imported when a command compares, not by every command
    from rtrec import thresholds


def _threshold(spec: str) -> thresholds.Threshold:
    from rtrec import thresholds

    try:
        return thresholds.parse(spec)
    except thresholds.ThresholdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_threshold_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """`--fail-on` and `--allow-unknown-cost`, shared by `diff` and a `replay` suite."""
    parser.add_argument(
        "--fail-on",
        type=_threshold,
        action="append",
        default=[],
        metavar="SPEC",
        help=f"{purpose}: cost+20%%, output_tokens±20%%, audio_ms-30%%, ttfa_p95+200ms, "
        "similarity<0.8, model_changed, tool_calls_changed … (repeatable)",
    )
    parser.add_argument(
        "--allow-unknown-cost",
        action="store_true",
        help="a cost threshold passes when a cost is unknown (usage without a price)",
    )


def add_parser(commands: Any) -> argparse.ArgumentParser:
    differ: argparse.ArgumentParser = commands.add_parser(
        "diff", help="compare two recorded sessions turn by turn"
    )
    differ.add_argument("a", metavar="A", help="the reference session id")
    differ.add_argument("b", metavar="B", help="the session compared with it")
    differ.add_argument("--json", action="store_true", help="the report as one JSON object")
    add_threshold_options(differ, "exit 1 when B passes it")
    add_settings(differ, [DB])
    return differ


def _summary(connection: Any, prefix: str) -> dict[str, Any]:
    from rtrec.database import session_id
    from storage.recording import session_summary

    summary = session_summary(connection, session_id(connection, prefix))
    if summary is None:  # deleted between the two reads (a prune running meanwhile)
        raise CommandError(f"no session {prefix!r} in the database")
    return summary


def run(args: argparse.Namespace) -> int:
    from analysis import diff
    from rtrec import thresholds
    from rtrec.database import reading

    with reading(args.db) as connection:
        report = diff.compare(_summary(connection, args.a), _summary(connection, args.b))
    failures = thresholds.tripped(args.fail_on, report, args.allow_unknown_cost)
    report["failed"] = failures
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    for reason in failures:
        print(f"rtrec diff: failed {reason}", file=sys.stderr)
    return 1 if failures else 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(report: dict[str, Any]) -> str:
    """The report for people: identities, flags, the metrics table, then each turn."""
    a, b = report["a"], report["b"]
    lines = [f"A {a['id']}  {a['model'] or '-'} ({a['api']}, {a['record_mode']})"]
    lines.append(f"B {b['id']}  {b['model'] or '-'} ({b['api']}, {b['record_mode']})")
    for side, unknown in zip("AB", report["cost_unknown"], strict=True):
        if unknown:
            lines.append(f"cost of {side} unknown: some usage has no price")
    changed = [k for k in diff_flags(report) if report[k]]
    lines.append(
        "structure: "
        + ("equal" if report["structure_equal"] else "differs")
        + (f" ({', '.join(changed)})" if changed else "")
    )
    lines.append(
        f"assistant text similarity {report['text_similarity']:.3f}, "
        f"user transcript similarity {report['transcript_similarity']:.3f}"
    )
    lines.append(f"{'metric':16} {'A':>14} {'B':>14}")
    for name, (before, after) in report["metrics"].items():
        lines.append(f"{name:16} {_cell(before):>14} {_cell(after):>14}")
    for turn in report["turns"]:
        status = "/".join(_cell(s) for s in turn["status"])
        tools = "tool calls differ" if turn["tool_calls_changed"] else "tool calls same"
        lines.append(
            f"turn {turn['turn']}: {status}, text similarity {turn['text_similarity']:.3f}, "
            f"{tools}, tokens {'/'.join(_cell(t) for t in turn['total_tokens'])}, "
            f"audio {'/'.join(_cell(ms) for ms in turn['audio_ms'])} ms, "
            f"output {'/'.join('+'.join(m) or '-' for m in turn['modalities'])}"
        )
        if turn["text_similarity"] < 1 or turn["tool_calls_changed"]:
            for side, text, calls in zip("AB", turn["text"], turn["tool_calls"], strict=True):
                shown = (text or "")[:200]
                lines.append(f"  {side}: {shown!r} {json.dumps(calls) if calls else ''}".rstrip())
    return "\n".join(lines)


def diff_flags(report: dict[str, Any]) -> list[str]:
    from rtrec import thresholds

    return [flag for flag in thresholds.FLAGS if flag in report]
