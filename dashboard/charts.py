"""Line and bar charts as plain Vega-Lite specs: ~100x cheaper to build than `st.line_chart`,
which validates an Altair chart on every run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

HEIGHT = 260


def _encoding(x: str, x_type: str, y_title: str, series: str) -> dict[str, Any]:
    x_axis: dict[str, Any] = {"field": x, "type": x_type, "title": x}
    if x_type == "temporal":
        x_axis["axis"] = {"format": "%Y-%m-%d %H:%M"}
    return {
        "x": x_axis,
        "y": {"field": "value", "type": "quantitative", "title": y_title},
        "color": {"field": series, "type": "nominal", "title": None},
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
    spec = {"height": HEIGHT, "mark": {"type": "bar", "tooltip": True}, "encoding": encoding}
    st.vega_lite_chart(frame[[x, y, series]], spec, width="stretch")


def folded_bars(frame: Any, x: str, columns: Sequence[str], *, y_title: str = "") -> None:
    """Bars per `x`, stacked by column."""
    spec = {
        "height": HEIGHT,
        "mark": {"type": "bar", "tooltip": True},
        "transform": [{"fold": list(columns), "as": ["series", "value"]}],
        "encoding": _encoding(x, "ordinal", y_title, "series"),
    }
    st.vega_lite_chart(frame[[x, *columns]], spec, width="stretch")


def waterfall(bars: Sequence[dict[str, Any]]) -> None:
    """Horizontal bars per turn from `start_ms` to `end_ms`, coloured by the milestone reached."""
    turns = len({bar["turn"] for bar in bars})
    spec = {
        "height": max(60, 28 * turns),
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "turn", "type": "ordinal", "title": "turn"},
            "x": {"field": "start_ms", "type": "quantitative", "title": "ms after the turn began"},
            "x2": {"field": "end_ms"},
            "color": {"field": "to", "type": "nominal", "title": None},
            "tooltip": [
                {"field": "turn", "type": "ordinal"},
                {"field": "to", "type": "nominal"},
                {"field": "start_ms", "type": "quantitative", "format": ",.0f"},
                {"field": "end_ms", "type": "quantitative", "format": ",.0f"},
            ],
        },
    }
    st.vega_lite_chart(list(bars), spec, width="stretch")
