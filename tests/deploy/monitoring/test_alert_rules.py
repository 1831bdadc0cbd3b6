"""The alert rules (deploy/monitoring/alert_rules.yml) and the watchdog share one set of
thresholds: no rule writes a number of its own, each compares against a threshold the exporter
sets from the platform settings, and every metric a rule or the dashboard names is one the
exporter (or the watchdog) serves. Also: the monitoring image's config rendering."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
MONITORING = REPO_ROOT / "deploy" / "monitoring"
sys.path.insert(0, str(REPO_ROOT / "deploy" / "ops"))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_load("platform_status", REPO_ROOT / "deploy/ops/platform_status.py")
exporter = _load("control_plane_exporter", MONITORING / "control_plane_exporter.py")
WATCHDOG_METRICS = {"dagster_run_containers_exited"}  # platform_watchdog.py
PROMETHEUS_METRICS = {"up", "ALERTS", "absent", "scalar"}
THRESHOLD = re.compile(r'platform_alert_threshold_(seconds|ratio)\{check="([a-z_]+)"\}')


def rules() -> list[dict]:
    groups = yaml.safe_load((MONITORING / "alert_rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def served_metrics() -> set[str]:
    names = set()
    for family in exporter.Metrics().registry.collect():
        names.add(family.name)
        names |= {f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count")}
    return names


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"|`[^`]*`', "", expr)  # label values and strings
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", expr))
    keywords = {"sum", "by", "ignoring", "group_left", "on", "and", "or", "unless", "increase", "rate",
                "max", "min", "count", "histogram_quantile", "without", "le", "location", "check", "database",
                "daemon_type", "unless"}
    return words - keywords


def numbers(expr: str) -> list[str]:
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # a range ([1h]) is a window, not a threshold
    return re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", expr)


def test_no_rule_writes_a_threshold_of_its_own():
    for rule in rules():
        assert set(numbers(rule["expr"])) <= {"0"}, f"{rule['alert']}: a number in {rule['expr']!r}"


def test_each_threshold_a_rule_names_is_a_platform_setting():
    known = {(unit, check) for unit, check in exporter.thresholds({})}
    used = {m for rule in rules() for m in THRESHOLD.findall(rule["expr"])}
    assert used, "no rule compares against a threshold"
    assert used <= known, f"rules name thresholds the exporter does not set: {sorted(used - known)}"
    # The daemon and stuck-run thresholds are applied by the watchdog's own verdict functions.
    assert known - used == {("seconds", "daemon_heartbeat"), ("seconds", "daemon_thread"), ("seconds", "stuck_run")}


def test_the_verdict_rules_use_the_watchdogs_verdicts():
    exprs = {rule["alert"]: rule["expr"] for rule in rules()}
    assert exprs["DagsterDaemonDown"].strip() == (
        "dagster_daemon_up == 0 unless ignoring(daemon_type) dagster_platform_startup_grace > 0")
    assert exprs["DagsterRunsStuck"].strip() == "dagster_runs_stuck > 0"


def test_every_alert_the_issue_asks_for_exists():
    names = {rule["alert"] for rule in rules()}
    assert {"DagsterDaemonDown", "DagsterRunQueueStuck", "DagsterRunFailureRate", "DagsterCodeLocationDown",
            "DagsterFreshnessViolated", "PostgresConnectionsNearBudget"} <= names


def test_rules_and_dashboard_name_only_served_metrics():
    served = served_metrics() | WATCHDOG_METRICS | PROMETHEUS_METRICS
    for rule in rules():
        unknown = metric_names(rule["expr"]) - served
        assert not unknown, f"{rule['alert']} names metrics nobody serves: {sorted(unknown)}"
    dashboard = (MONITORING / "consoles" / "platform.html").read_text()
    queried = set(re.findall(r"\b((?:dagster|postgres|platform)_[a-z_]+)", dashboard))
    assert queried and queried <= served, sorted(queried - served)


def test_metric_names_carry_units_and_help():
    for family in exporter.Metrics().registry.collect():
        assert family.documentation, f"{family.name} has no HELP"
        if family.type == "counter":
            assert not family.name.endswith("_total")  # prometheus_client appends it
        if "age" in family.name or "duration" in family.name or "down" in family.name:
            assert family.name.endswith("_seconds"), family.name


def _render(tmp_path, program: str, env: dict) -> subprocess.CompletedProcess:
    """The entrypoint's rendering, run with its config dir pointed at the repository's files."""
    script = (MONITORING / "monitoring_entrypoint.py").read_text()
    script = script.replace('CONFIG_DIR = "/etc/monitoring"', f'CONFIG_DIR = "{MONITORING}"')
    script = script.replace('out = f"/tmp/{name}"', f'out = f"{tmp_path}/{{name}}"')
    script = script.replace("    os.execv(", "    print(config); return\n    os.execv(")
    return subprocess.run([sys.executable, "-c", script, program], env=env, capture_output=True, text=True)


def test_alertmanager_sends_to_the_watchdogs_webhook(tmp_path):
    url = "http://hooks.example:8080/alerts?token=a'b"
    result = _render(tmp_path, "alertmanager", {"ALERT_WEBHOOK_URL": url, "MONITORING_ALERT_GROUP_WAIT": "10s"})
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(Path(result.stdout.strip()).read_text())
    assert config["receivers"][0]["webhook_configs"] == [{"url": url, "send_resolved": True}]
    assert config["route"]["group_wait"] == "10s"

    result = _render(tmp_path, "alertmanager", {"ALERT_WEBHOOK_URL": "", "MONITORING_ALERT_GROUP_WAIT": "10s"})
    assert yaml.safe_load(Path(result.stdout.strip()).read_text())["receivers"][0]["webhook_configs"] == []


@pytest.mark.parametrize("env, message", [
    ({"ALERT_WEBHOOK_URL": "hooks.example/alerts", "MONITORING_ALERT_GROUP_WAIT": "10s"}, "ALERT_WEBHOOK_URL must be an http"),
    ({"ALERT_WEBHOOK_URL": "", "MONITORING_ALERT_GROUP_WAIT": "ten"}, "MONITORING_ALERT_GROUP_WAIT must be a duration"),
])
def test_bad_monitoring_settings_are_refused_by_name(tmp_path, env, message):
    result = _render(tmp_path, "alertmanager", env)
    assert result.returncode != 0 and message in result.stderr


def test_prometheus_config_scrapes_the_exporter_and_the_watchdog(tmp_path):
    result = _render(tmp_path, "prometheus", {"MONITORING_SCRAPE_INTERVAL": "5s"})
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(Path(result.stdout.strip()).read_text())
    assert config["global"]["scrape_interval"] == "5s"
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["control-plane"] == [f"monitoring-exporter:{exporter.PORT}"]
    assert targets["watchdog"] == ["watchdog:9109"]
