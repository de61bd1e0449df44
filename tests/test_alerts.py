"""The shipped Prometheus alerting rules, checked and unit-tested by the real promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "deploy" / "prometheus"
ALERTS_YML = RULES_DIR / "alerts.yml"
ALERTS_TEST_YML = RULES_DIR / "alerts_test.yml"
README = (REPO / "README.md").read_text()

# Metrics the rules may read: docs/metrics.md's contract, the recorder gauges the alerts need,
# Prometheus' own `up`.
RULE_METRICS = {
    "openai_realtime_rate_limit_remaining",
    "openai_realtime_rate_limit_limit",
    "openai_realtime_sessions_active",
    "openai_realtime_errors_total",
    "openai_realtime_responses_total",
    "openai_realtime_upgrade_failures_total",
    "openai_realtime_recorder_dropped_events_total",
    "openai_realtime_recorder_queue_depth",
    "openai_realtime_recorder_queue_capacity",
    "openai_realtime_recorder_database_available",
    "openai_realtime_voice_to_voice_seconds_bucket",
    "openai_realtime_cost_usd_total",
    "openai_realtime_session_duration_seconds_count",
    "openai_realtime_events_total",
    "openai_realtime_context_usage_ratio_bucket",
}


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    """Run the real promtool; its absence is a failure, never a skip."""
    path = shutil.which("promtool")
    assert path, "promtool is not on PATH: install Debian's `prometheus` package"
    return subprocess.run([path, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_YML.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def thresholds() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}


def unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(ALERTS_TEST_YML.read_text())["tests"]
    return tests


def test_alert_rules_pass_promtool_check():
    result = promtool("check", "rules", str(ALERTS_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_alert_rules_pass_their_promtool_unit_tests():
    result = promtool("test", "rules", str(ALERTS_TEST_YML))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not():
    cases = [case for test in unit_tests() for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert set(alerts()) - fires == set()
    assert set(alerts()) - quiet == set()


def test_every_threshold_is_pinned_by_a_test_and_read_by_an_alert():
    pinned = {case["expr"] for test in unit_tests() for case in test.get("promql_expr_test", [])}
    exprs = " ".join(rule["expr"] for rule in alerts().values())
    for record, expr in thresholds().items():
        assert re.fullmatch(r"vector\([\d.]+\)", expr), (record, expr)
        assert record in pinned, record
        assert f"scalar({record})" in exprs, record


def test_every_alert_has_a_severity_summary_and_description():
    for name, rule in alerts().items():
        assert name.startswith("Rtrec"), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"].split()) >= 15, name


def test_rules_read_only_known_metrics():
    exprs = " ".join(rule["expr"] for rule in alerts().values())
    read = set(re.findall(r"\bopenai_realtime_\w+", exprs))
    assert read == RULE_METRICS
    assert re.search(r'\bup\{job="rtrec"\}', exprs)


@pytest.mark.parametrize(
    ("alertname", "record"),
    [
        ("RtrecSpendHigh", "rtrec:threshold_spend_usd_per_hour"),
        ("RtrecVoiceToVoiceSlow", "rtrec:threshold_voice_to_voice_p95_seconds"),
        ("RtrecRateLimitHeadroomLow", "rtrec:threshold_rate_limit_headroom_ratio"),
        ("RtrecErrorRatioHigh", "rtrec:threshold_error_ratio"),
        ("RtrecRecorderQueueNearlyFull", "rtrec:threshold_recorder_queue_ratio"),
        ("RtrecLiveContextNearlyFull", "rtrec:threshold_live_context_usage_ratio"),
        ("RtrecLiveErrorsHigh", "rtrec:threshold_live_errors_per_minute"),
    ],
)
def test_changing_one_threshold_line_changes_when_its_alert_fires(
    tmp_path: Path, alertname: str, record: str
):
    """The README's recipe: edit the threshold's `vector(...)`; its firing cases then stay quiet."""
    firing = [
        test
        for test in unit_tests()
        if any(
            c["alertname"] == alertname and c["exp_alerts"] for c in test.get("alert_rule_test", [])
        )
    ]
    assert firing
    for test in firing:
        test["alert_rule_test"] = [
            {**case, "exp_alerts": []}
            for case in test["alert_rule_test"]
            if case["alertname"] == alertname
        ]
    quiet_test = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": firing}
    (tmp_path / "quiet_test.yml").write_text(yaml.safe_dump(quiet_test, allow_unicode=True))

    (tmp_path / "alerts.yml").write_text(ALERTS_YML.read_text())
    shipped = promtool("test", "rules", "quiet_test.yml", cwd=tmp_path)
    assert shipped.returncode != 0, "the firing cases should fire with the shipped threshold"

    line = f"- record: {record}\n        expr: {thresholds()[record]}\n"
    # Headroom fires below its threshold, the others above: 0 and +Inf can never be crossed.
    never = "vector(0)" if "headroom" in record else "vector(Inf)"
    changed = ALERTS_YML.read_text().replace(line, f"- record: {record}\n        expr: {never}\n")
    assert changed != ALERTS_YML.read_text(), f"{record} is not one `expr: vector(...)` line"
    (tmp_path / "alerts.yml").write_text(changed)
    edited = promtool("test", "rules", "quiet_test.yml", cwd=tmp_path)
    assert edited.returncode == 0, edited.stdout + edited.stderr


def test_readme_documents_every_alert_and_threshold():
    (section,) = re.findall(r"\n### Alerts\n(.*?)\n##", README, flags=re.DOTALL)
    for name in alerts():
        assert f"`{name}`" in section, name
    for record in thresholds():
        assert f"`{record}`" in section, record
