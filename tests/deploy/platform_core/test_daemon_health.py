"""platform_core.daemon_health: the one verdict the UI, `make status`/the watchdog and the daemon
container's healthcheck give, as a pure function of heartbeat ages."""

import pytest

from platform_core import daemon_health
from platform_core.daemon_health import Thresholds, judge
from platform_core.settings import SettingError

REQUIRED = ["SENSOR", "BACKFILL", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"]
DEFAULTS = Thresholds()
WATCHDOG_INTERVAL = 15


def ages(default: float = 5.0, **overrides: float | None) -> dict:
    return {t: overrides.get(t, default) for t in REQUIRED}


def test_defaults_alert_a_stopped_daemon_within_a_minute():
    """A daemon that heartbeated just before it stopped is silent for the threshold; the watchdog
    (and a UI poll) notices on its next check at the latest. e2e tests assert the 60 s."""
    assert DEFAULTS == Thresholds(heartbeat_seconds=40.0, thread_seconds=300.0)
    assert DEFAULTS.heartbeat_seconds + WATCHDOG_INTERVAL < 60
    assert daemon_health.HEARTBEAT_TOLERANCE.name == "DAEMON_HEARTBEAT_TOLERANCE_SECONDS"
    assert daemon_health.THREAD_HEARTBEAT_TOLERANCE.name == "DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS"


def test_live_daemon_with_normal_cadence_is_healthy():
    verdict = judge(ages(38.0), REQUIRED, DEFAULTS)
    assert verdict.healthy and not verdict.process_down and verdict.stale == ()
    assert verdict.message.startswith("dagster-daemon live: 5 daemon type(s)")
    assert all(verdict.type_healthy(t) for t in REQUIRED)


def test_one_late_thread_on_a_busy_host_is_not_a_flap():
    assert judge(ages(12.0, SCHEDULER=95.0, MONITORING=299.0), REQUIRED, DEFAULTS).healthy


def test_process_down_is_judged_on_the_newest_heartbeat():
    at_threshold = judge(ages(40.0), REQUIRED, DEFAULTS)
    assert at_threshold.healthy
    verdict = judge(ages(41.0), REQUIRED, DEFAULTS)
    assert not verdict.healthy and verdict.process_down
    assert verdict.stale == tuple(REQUIRED) and verdict.newest_age == 41.0
    assert "dagster-daemon not heartbeating" in verdict.message
    assert "newest heartbeat of any daemon type is 41s old (threshold 40s)" in verdict.message
    assert "QUEUED_RUN_COORDINATOR" in verdict.message
    # One type still fresh: the process is alive.
    assert not judge(ages(400.0, SENSOR=3.0), REQUIRED, DEFAULTS).process_down


def test_stuck_and_missing_threads_are_named():
    verdict = judge(ages(5.0, SENSOR=301.0, MONITORING=None), REQUIRED, DEFAULTS)
    assert not verdict.healthy and not verdict.process_down
    assert verdict.stale == ("SENSOR", "MONITORING")
    assert verdict.type_healthy("BACKFILL") and not verdict.type_healthy("SENSOR")
    assert "thread(s) stuck: no heartbeat within 300s" in verdict.message
    assert "SENSOR (301s)" in verdict.message and "MONITORING" in verdict.message


def test_never_heartbeated():
    verdict = judge({}, REQUIRED, DEFAULTS)
    assert verdict.process_down and verdict.newest_age is None
    assert "no daemon type has ever heartbeated" in verdict.message


def test_heartbeats_of_types_not_required_are_ignored():
    verdict = judge({**ages(50.0), "ASSET": 1.0}, REQUIRED, DEFAULTS)
    assert verdict.process_down and "ASSET" not in verdict.stale


def test_nothing_required_is_healthy():
    """An ephemeral instance requires no daemon."""
    assert judge({}, [], DEFAULTS).healthy


def test_required_none_means_every_type_that_heartbeated():
    """The healthcheck cannot ask Dagster which types are required."""
    assert judge({"SENSOR": 3.0, "BACKFILL": 10.0}, None, DEFAULTS).healthy
    stuck = judge({"SENSOR": 3.0, "BACKFILL": 310.0}, None, DEFAULTS)
    assert stuck.stale == ("BACKFILL",)
    empty = judge({}, None, DEFAULTS)
    assert empty.process_down and "no daemon type has ever heartbeated" in empty.message


def test_clock_skew_never_makes_an_age_negative():
    verdict = judge(ages(-3.0), REQUIRED, DEFAULTS)
    assert verdict.healthy and verdict.newest_age == 0.0


def test_thresholds_from_env():
    assert Thresholds.from_env({}) == DEFAULTS
    env = {"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "25", "DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS": "10m"}
    assert Thresholds.from_env(env) == Thresholds(heartbeat_seconds=25.0, thread_seconds=600.0)
    with pytest.raises(SettingError, match="DAEMON_HEARTBEAT_TOLERANCE_SECONDS must be a duration.*got 'soon'"):
        Thresholds.from_env({"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "soon"})
    with pytest.raises(SettingError, match="DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS .*>= 0, got '-1'"):
        Thresholds.from_env({"DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS": "-1"})
    strict = Thresholds.from_env({"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "10"})
    assert judge(ages(12.0), REQUIRED, strict).process_down


# --- which daemon types are required: Dagster's rule, without Dagster -------------------------


def _platform_instance_config() -> dict:
    """The platform's dagster.yaml as the stack renders it, parsed."""
    import importlib.util
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("render_dagster_yaml", root / "deploy/docker/render_dagster_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = {"PLATFORM_PROJECT": "flights-test"}
    return yaml.safe_load(module.render((root / "dagster.yaml").read_text(), env))


def _without(config: dict, *keys: str) -> dict:
    return {k: v for k, v in config.items() if k not in keys}


VARIANTS = {
    "the platform's": lambda c: c,
    "no run retries": lambda c: {**c, "run_retries": {"enabled": False}},
    "no run monitoring": lambda c: _without(c, "run_monitoring"),
    "no auto-materialize": lambda c: {**c, "auto_materialize": {"enabled": False, "use_sensors": False}},
    "sensors-only auto-materialize": lambda c: {**c, "auto_materialize": {"enabled": False}},
    "no freshness": lambda c: {**c, "freshness": {"enabled": False}},
    "the default run coordinator": lambda c: {**c, "run_coordinator": {
        "module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}},
    "Dagster's defaults": lambda c: {},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_required_daemon_types_agree_with_dagster(variant):
    """The rule the watchdog and the daemon's healthcheck read from dagster.yaml is Dagster's."""
    from dagster._core.test_utils import instance_for_test

    config = VARIANTS[variant](_platform_instance_config())
    # Storage, the launcher and compute logs do not decide the daemons; the test's own stand in.
    overrides = _without(config, "storage", "run_launcher", "compute_logs")
    with instance_for_test(overrides=overrides) as instance:
        expected = sorted(instance.get_required_daemon_types())
    assert sorted(daemon_health.required_daemon_types(config)) == expected


def test_the_platform_requires_every_daemon_it_runs():
    assert sorted(daemon_health.required_daemon_types(_platform_instance_config())) == sorted(
        ["SENSOR", "BACKFILL", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING", "EVENT_LOG_CONSUMER",
         "ASSET", "FRESHNESS_DAEMON"])


def test_instance_required_daemon_types_reads_dagster_home(tmp_path):
    (tmp_path / "dagster.yaml").write_text("run_retries: {enabled: true}\nfreshness: {enabled: false}\n")
    assert "EVENT_LOG_CONSUMER" in daemon_health.instance_required_daemon_types(str(tmp_path))
    assert "FRESHNESS_DAEMON" not in daemon_health.instance_required_daemon_types(str(tmp_path))
    with pytest.raises(OSError):
        daemon_health.instance_required_daemon_types(str(tmp_path / "missing"))
