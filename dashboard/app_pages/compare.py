"""Two sessions side by side, turn by turn: a replay against its original, a new prompt or model.

The same report as `rtrec diff A B`; `?a=ID&b=ID` opens it directly (`rtrec replay` prints both).
"""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev group
import streamlit as st

from dashboard import data, display, ui

FLAGS = {
    "model_changed": "model",
    "modalities_changed": "output modalities (text, audio)",
    "turns_changed": "number of turns",
    "statuses_changed": "response statuses",
    "tool_calls_changed": "tool calls or their arguments",
    "errors_changed": "errors",
    "text_changed": "assistant text",
    "close_changed": "how the session closed",
}


def _shown(measure: str, value: Any) -> str:
    """A totals cell: costs in dollars, latencies in whole ms, counts with separators."""
    if measure == "cost":
        return display.usd(value)
    if measure.endswith(("_p50", "_p95")):
        return display.UNKNOWN if value is None else f"{round(value):,} ms"
    return display.count(value)


def _percent(share: float | None) -> str:
    return display.UNKNOWN if share is None else f"{share:.0%}"


st.title("Compare sessions")
left, right = st.columns(2)
session_a = left.text_input("Session A (e.g. the original)", st.query_params.get("a", "")).strip()
session_b = right.text_input("Session B (e.g. its replay)", st.query_params.get("b", "")).strip()
if not session_a or not session_b:
    st.info(
        "Enter two session ids. `rtrec replay SESSION_ID` records a replay and prints both ids; "
        "`rtrec diff A B` prints this same report in a terminal."
    )
    st.stop()

(full_a, problem_a), (full_b, problem_b) = map(ui.resolve_session, (session_a, session_b))
if full_a is None or full_b is None:
    st.warning(problem_a or problem_b)
    st.stop()
report = data.comparison(full_a, full_b)
if isinstance(report, str):  # pruned in between
    st.warning(display.escaped(report))
    st.stop()
st.caption(f"A {display.code(full_a)} · B {display.code(full_b)}")

changed = [label for flag, label in FLAGS.items() if report[flag]]
if report["structure_equal"]:
    st.success("Same structure: turns, statuses, tool calls and errors agree.")
else:
    st.error("Structure changed: " + ", ".join(changed))
numbers = st.columns(3)
numbers[0].metric("Assistant text similarity", _percent(report["text_similarity"]))
numbers[1].metric("User transcript similarity", _percent(report["transcript_similarity"]))
numbers[2].metric("Turns", " → ".join(str(n) for n in report["metrics"]["turns"]))


def _change(pair: list[Any]) -> str:
    a, b = pair
    if isinstance(a, int | float) and isinstance(b, int | float) and a:
        return f"{(b - a) / a:+.0%}"
    return "" if a == b else "changed"


st.subheader("Session totals")
st.dataframe(
    pd.DataFrame(
        [
            {
                "measure": name,
                "A": _shown(name, pair[0]),
                "B": _shown(name, pair[1]),
                "change": _change(pair),
            }
            for name, pair in report["metrics"].items()
        ]
    ),
    hide_index=True,
    height=35 * (len(report["metrics"]) + 1) + 3,  # every row, no scrolling inside the table
    column_config={side: st.column_config.TextColumn(side, alignment="right") for side in "AB"},
)
st.caption(
    "ttfa: time to first audio (`response.created` → first audio) · ttft: time to first text · "
    "turn: turn latency (end of the user's speech → first audio) · v2v: voice-to-voice "
    "(user stops speaking → assistant audio starts) · p50/p95: median and 95th percentile over "
    "the turns"
)

st.subheader("Turn by turn")
st.dataframe(
    pd.DataFrame(
        [
            {
                "turn": turn["turn"],
                "only in": turn["only_in"] or "",
                "status A": turn["status"][0] or display.UNKNOWN,
                "status B": turn["status"][1] or display.UNKNOWN,
                "text similarity": _percent(turn["text_similarity"]),
                "tool calls changed": turn["tool_calls_changed"],
                "tokens A": display.count(turn["total_tokens"][0]),
                "tokens B": display.count(turn["total_tokens"][1]),
                "cost A": display.usd(turn["cost_usd"][0]),
                "cost B": display.usd(turn["cost_usd"][1]),
                "text A": turn["text"][0],
                "text B": turn["text"][1],
            }
            for turn in report["turns"]
        ]
    ),
    hide_index=True,
)

errors = report["errors"]
if errors["a"] or errors["b"]:
    st.subheader("Errors by code")
    codes = sorted(set(errors["a"]) | set(errors["b"]))
    st.dataframe(
        pd.DataFrame(
            [{"code": c, "A": errors["a"].get(c, 0), "B": errors["b"].get(c, 0)} for c in codes]
        ),
        hide_index=True,
    )
