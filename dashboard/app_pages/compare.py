"""Two sessions side by side, turn by turn: a replay against its original, a new prompt or model.

The same report as `rtrec diff A B`; `?a=ID&b=ID` opens it directly (`rtrec replay` prints both).
"""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev group
import streamlit as st

from dashboard import data, display

FLAGS = {
    "turns_changed": "number of turns",
    "statuses_changed": "response statuses",
    "tool_calls_changed": "tool calls or their arguments",
    "errors_changed": "errors",
    "text_changed": "assistant text",
}

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

report = data.comparison(session_a, session_b)
if isinstance(report, str):
    st.warning(display.escaped(report))
    st.stop()

changed = [label for flag, label in FLAGS.items() if report[flag]]
if report["structure_equal"]:
    st.success("Same structure: turns, statuses, tool calls and errors agree.")
else:
    st.error("Structure changed: " + ", ".join(changed))
numbers = st.columns(3)
numbers[0].metric("Assistant text similarity", f"{report['text_similarity']:.0%}")
numbers[1].metric("User transcript similarity", f"{report['transcript_similarity']:.0%}")
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
            {"measure": name, "A": pair[0], "B": pair[1], "change": _change(pair)}
            for name, pair in report["metrics"].items()
        ]
    ),
    hide_index=True,
)

st.subheader("Turn by turn")
st.dataframe(
    pd.DataFrame(
        [
            {
                "turn": turn["turn"],
                "only in": turn["only_in"] or "",
                "status A": turn["status"][0],
                "status B": turn["status"][1],
                "text similarity": round(turn["text_similarity"], 3),
                "tool calls changed": turn["tool_calls_changed"],
                "tokens A": turn["total_tokens"][0],
                "tokens B": turn["total_tokens"][1],
                "cost A": turn["cost_usd"][0],
                "cost B": turn["cost_usd"][1],
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
