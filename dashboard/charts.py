"""Line and bar charts as plain Vega-Lite specs: ~100x cheaper to build than `st.line_chart`,
which validates an Altair chart on every run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

HEIGHT = 260
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}  # HEIGHT is the plot's: legends add to it
LEGEND = {"orient": "bottom", "direction": "vertical", "labelLimit": 0}


def _encoding(x: str, x_type: str, y_title: str, series: str) -> dict[str, Any]:
    x_axis: dict[str, Any] = {"field": x, "type": x_type, "title": x}
    if x_type == "temporal":
        x_axis["axis"] = {"format": "%Y-%m-%d %H:%M"}
    elif x_type == "quantitative":  # turns: whole numbers, never a lone "1.000000" tick
        x_axis["axis"] = {"format": ",d", "tickMinStep": 1}
    return {
        "x": x_axis,
        "y": {"field": "value", "type": "quantitative", "title": y_title},
        # Below the plot, one name a line and never shortened: model names are long.
        "color": {"field": series, "type": "nominal", "title": None, "legend": LEGEND},
        "tooltip": [
            {"field": x, "type": x_type},
            {"field": series, "type": "nominal"},
            {"field": "value", "type": "quantitative", "format": ",.6~g"},
        ],
    }


def line(
    frame: Any, x: str, columns: Sequence[str], *, x_type: str = "quantitative", y_title: str = ""
) -> None:
    """One line per column of `frame` against `x`."""
    spec = {
        "height": HEIGHT,
        "autosize": FIT_WIDTH,
        "mark": {"type": "line", "point": True, "tooltip": True},
        "transform": [{"fold": list(columns), "as": ["series", "value"]}],
        "encoding": _encoding(x, x_type, y_title, "series"),
    }
    st.vega_lite_chart(frame[[x, *columns]], spec, width="stretch")


def bars(
    frame: Any, x: str, y: str, series: str, *, x_type: str = "ordinal", y_title: str = ""
) -> None:
    """Bars of `y` per `x`, stacked by `series` (a column of `frame`)."""
    encoding = _encoding(x, x_type, y_title or y, series)
    encoding["y"]["field"] = y
    encoding["tooltip"][2]["field"] = y
    spec = {
        "height": HEIGHT,
        "autosize": FIT_WIDTH,
        "mark": {"type": "bar", "tooltip": True},
        "encoding": encoding,
    }
    st.vega_lite_chart(frame[[x, y, series]], spec, width="stretch")


def folded_bars(frame: Any, x: str, columns: Sequence[str], *, y_title: str = "") -> None:
    """Bars per `x`, stacked by column."""
    spec = {
        "height": HEIGHT,
        "autosize": FIT_WIDTH,
        "mark": {"type": "bar", "tooltip": True},
        "transform": [{"fold": list(columns), "as": ["series", "value"]}],
        "encoding": _encoding(x, "ordinal", y_title, "series"),
    }
    st.vega_lite_chart(frame[[x, *columns]], spec, width="stretch")


# The waterfall's phases, each named by the milestone that ends it, in time order and colour.
PHASE_COLOURS = {
    "response created": "#9e9e9e",
    "first text": "#4c78a8",
    "first audio": "#f58518",
    "done": "#54a24b",
}
ROW_PX = 24  # one turn's row: its label and bar readable, 50 turns in a scrolled box
WATERFALL_MAX_PX = 520


def waterfall_spec(bars: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars per turn from `start_ms` to `end_ms`, one colour per phase (`to`)."""
    return {
        "height": {"step": ROW_PX},  # a row per turn: the chart grows with the turns
        "autosize": FIT_WIDTH,
        "mark": {"type": "bar", "tooltip": True, "height": {"band": 0.7}},
        "encoding": {
            "y": {
                "field": "turn",
                "type": "ordinal",
                "title": "turn",
                "axis": {"labelOverlap": False, "titleAngle": 0, "titleAlign": "right"},
            },
            "x": {
                "field": "start_ms",
                "type": "quantitative",
                "title": "ms after the turn began",
                "axis": {"format": ",d", "tickMinStep": 1, "orient": "top"},
            },
            "x2": {"field": "end_ms"},
            "color": {
                "field": "to",
                "type": "nominal",
                "title": "time until",
                "scale": {"domain": list(PHASE_COLOURS), "range": list(PHASE_COLOURS.values())},
                "legend": {"orient": "top", "direction": "horizontal", "labelLimit": 0},
            },
            "tooltip": [
                {"field": "turn", "type": "ordinal"},
                {"field": "to", "type": "nominal", "title": "until"},
                {"field": "start_ms", "type": "quantitative", "format": ",.0f", "title": "from ms"},
                {"field": "end_ms", "type": "quantitative", "format": ",.0f", "title": "to ms"},
            ],
        },
    }


def waterfall(bars: Sequence[dict[str, Any]]) -> None:
    """The waterfall at a row per turn; past `WATERFALL_MAX_PX` it scrolls inside its box."""
    turns = len({bar["turn"] for bar in bars})
    spec = waterfall_spec(bars)
    if (turns + 4) * ROW_PX <= WATERFALL_MAX_PX:  # 4 rows: the axis and legend above the bars
        st.vega_lite_chart(list(bars), spec, width="stretch")
        return
    with st.container(height=WATERFALL_MAX_PX, border=False):
        st.vega_lite_chart(list(bars), spec, width="stretch")
