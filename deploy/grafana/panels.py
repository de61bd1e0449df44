"""Panel and query helpers for rtrec's Grafana dashboard: one datasource variable, one style."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common, units
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DataTransformerConfig
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Grafana's interval for rate(): at least four scrape intervals of the datasource.
RATE_INTERVAL = "$__rate_interval"
MODEL = 'model=~"$model"'
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))

# Grafana's custom units: the text after "suffix:" follows the value.
PER_MINUTE = "suffix:/min"
PER_SECOND = "suffix:/s"
TOKENS_PER_SECOND = "suffix:tokens/s"

Panel = timeseries.Panel | stat.Panel | table.Panel


def rate(metric: str, selector: str = "") -> str:
    """`rate()` of a counter over the dashboard's rate interval."""
    matchers = f"{{{selector}}}" if selector else ""
    return f"rate({metric}{matchers}[{RATE_INTERVAL}])"


def per_minute(metric: str, by: str, selector: str = "") -> str:
    return f"60 * sum by ({by}) ({rate(metric, selector)})"


def quantile(q: float, histogram: str, selector: str = "") -> str:
    """A quantile of a histogram across every series the selector picks."""
    return f"histogram_quantile({q}, sum by (le) ({rate(histogram + '_bucket', selector)}))"


def query(
    expr: str, legend: str, ref_id: str = "A", *, instant: bool = False
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)
    q.datasource(DATASOURCE)
    return q.instant() if instant else q.range()


def graph(
    title: str, description: str, unit: str, *queries: prometheus.Dataquery, width: int = 12
) -> timeseries.Panel:
    """A time series panel; every series of a panel shares one unit."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    for q in queries:
        panel.with_target(q)
    return panel


def single(
    title: str, description: str, unit: str, q: prometheus.Dataquery, width: int = 6
) -> stat.Panel:
    """A stat panel showing the latest value of each series."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(q)
    )


def quantile_graph(
    title: str,
    description: str,
    histogram: str,
    selector: str = "",
    width: int = 8,
    unit: str = units.Seconds,
) -> Panel:
    """p50, p95 and p99 of one histogram (latencies in seconds unless told)."""
    queries = [
        query(quantile(q, histogram, selector), label, ref_id)
        for (q, label), ref_id in zip(QUANTILES, "ABC", strict=True)
    ]
    return graph(title, description, unit, *queries, width=width)


def label_table(
    title: str, description: str, expr: str, *, hidden: list[str], no_value: str, width: int = 24
) -> table.Panel:
    """A table of the series an instant query returns, one row each, one column per label."""
    q = (
        prometheus.Dataquery()
        .expr(expr)
        .ref_id("A")
        .datasource(DATASOURCE)
        .instant()
        .format(PromQueryFormat.TABLE)
    )
    # The value of such series (ALERTS is always 1) and the query's timestamp say nothing.
    organize = DataTransformerConfig(
        id_val="organize", options={"excludeByName": dict.fromkeys(hidden, True)}
    )
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(units.Short)
        .span(width)
        .height(6)
        .no_value(no_value)
        # Grafana's own defaults, spelled out so the JSON decodes to itself.
        .align(common.FieldTextAlignment.AUTO)
        .inspect(False)
        .with_transformation(organize)
        .with_target(q)
    )
