"""The platform status check (deploy/ops/platform_status.py) and the watchdog's decisions
(deploy/ops/platform_watchdog.py): classification, alert transitions and which run containers
are pruned, as pure functions; then the real reads against a throwaway Postgres instance, where
the daemon container's healthcheck (deploy/docker/daemon_healthcheck.py) must agree with them."""

import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from platform_core import daemon_health
from platform_core.settings import SettingError
from tests.deploy.monitoring.dagster_history import dagster_db, write_dagster_home

REPO_ROOT = Path(__file__).resolve().parents[2]
OPS = REPO_ROOT / "deploy" / "ops"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, OPS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the watchdog imports platform_status by this name
    spec.loader.exec_module(module)
    return module


status = _load("platform_status")
watchdog = _load("platform_watchdog")
_spec = importlib.util.spec_from_file_location("daemon_healthcheck", REPO_ROOT / "deploy/docker/daemon_healthcheck.py")
daemon_healthcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(daemon_healthcheck)

NOW = 1_800_000_000.0
DAEMONS = ["SENSOR", "BACKFILL", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"]
DEFAULTS = status.Thresholds()


def snapshot(heartbeat_ages=None, queued=0, oldest_queued_age=None, in_flight=()):
    ages = {d: 5.0 for d in DAEMONS} if heartbeat_ages is None else heartbeat_ages
    return status.Snapshot(
        now=NOW,
        required_daemons=list(DAEMONS),
        heartbeats={d: NOW - age for d, age in ages.items()},
        queued_count=queued,
        oldest_queued=None if oldest_queued_age is None else NOW - oldest_queued_age,
        in_flight=[status.InFlightRun(run_id=r, job_name="__ASSET_JOB", status=s, since=NOW - age)
                   for r, s, age in in_flight],
    )


def test_fresh_heartbeats_and_a_short_queue_are_healthy():
    report = status.classify(snapshot(queued=3, oldest_queued_age=600), DEFAULTS)
    assert report.healthy and report.state == "healthy" and report.exit_code == 0
    assert report.reasons == []
    assert report.queue == {"depth": 3, "oldest_age_seconds": 600.0}
    assert [d["daemon_type"] for d in report.daemons] == DAEMONS


def test_normal_heartbeat_cadence_does_not_flap():
    """Heartbeats come every 30 s, a little later when a daemon's loop is busy; on a loaded host
    one daemon type can be minutes late while the process is fine."""
    report = status.classify(snapshot({d: 38.0 for d in DAEMONS}), DEFAULTS)
    assert report.healthy, report.reasons
    late_thread = {**{d: 12.0 for d in DAEMONS}, "SCHEDULER": 95.0, "MONITORING": 299.0}
    report = status.classify(snapshot(late_thread), DEFAULTS)
    assert report.healthy, report.reasons


def test_stopped_daemon_is_unhealthy_and_named():
    ages = {d: 41.0 for d in DAEMONS}
    report = status.classify(snapshot(ages, queued=2, oldest_queued_age=30), DEFAULTS)
    assert not report.healthy and report.exit_code == 1
    assert report.stale_daemons == DAEMONS
    assert len(report.reasons) == 1
    assert "dagster-daemon not heartbeating" in report.reasons[0]
    assert "newest heartbeat of any daemon type is 41s old" in report.reasons[0]
    assert "QUEUED_RUN_COORDINATOR" in report.reasons[0]
    assert report.queue["depth"] == 2


def test_a_stuck_daemon_thread_and_a_missing_one_are_both_named():
    ages = {d: 5.0 for d in DAEMONS if d not in ("SENSOR", "MONITORING")}
    ages["SENSOR"] = 301.0
    report = status.classify(snapshot(ages), DEFAULTS)
    assert not report.healthy
    assert report.stale_daemons == ["SENSOR", "MONITORING"]
    monitoring = next(d for d in report.daemons if d["daemon_type"] == "MONITORING")
    assert monitoring == {"daemon_type": "MONITORING", "last_heartbeat": None, "age_seconds": None, "healthy": False}
    assert len(report.reasons) == 1 and "thread(s) stuck" in report.reasons[0]
    assert "SENSOR (301s)" in report.reasons[0] and "MONITORING" in report.reasons[0]


def test_no_heartbeat_ever_is_a_daemon_that_never_started():
    report = status.classify(snapshot({}), DEFAULTS)
    assert report.stale_daemons == DAEMONS
    assert report.reasons == [report.reasons[0]] and "no daemon type has ever heartbeated" in report.reasons[0]


def test_runs_stuck_in_starting_or_canceling_beyond_the_threshold():
    runs = [("r-young", "STARTING", 100.0), ("r-stuck", "STARTING", 121.0), ("r-cancel", "CANCELING", 500.0)]
    report = status.classify(snapshot(in_flight=runs), DEFAULTS)
    assert not report.healthy
    assert [r["run_id"] for r in report.stuck_runs] == ["r-stuck", "r-cancel"]
    assert any("r-stuck" in r and "STARTING for 121s" in r for r in report.reasons)
    assert any("r-cancel" in r and "CANCELING" in r for r in report.reasons)


def test_queue_age_alert_is_off_by_default_and_works_when_set():
    old_queue = snapshot(queued=40, oldest_queued_age=7200)
    assert status.classify(old_queue, DEFAULTS).healthy
    strict = status.Thresholds(queued_seconds=3600)
    report = status.classify(old_queue, strict)
    assert not report.healthy and "40 run(s) QUEUED, the oldest for 7200s" in report.reasons[0]


def test_thresholds_from_env():
    """The daemon thresholds are platform_core.daemon_health's, the ones the UI and the daemon
    healthcheck use too; the run thresholds are this check's own."""
    t = status.Thresholds.from_env({"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "25", "STUCK_RUN_ALERT_SECONDS": "",
                                    "QUEUED_RUN_ALERT_SECONDS": "15m",
                                    "DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS": "600"})
    assert t == status.Thresholds(heartbeat_seconds=25, thread_seconds=600, stuck_seconds=120, queued_seconds=900)
    assert t.daemon == daemon_health.Thresholds(heartbeat_seconds=25, thread_seconds=600)
    assert status.Thresholds.from_env({}) == DEFAULTS
    assert DEFAULTS.daemon == daemon_health.Thresholds()
    with pytest.raises(SettingError, match="DAEMON_HEARTBEAT_TOLERANCE_SECONDS must be a duration"):
        status.Thresholds.from_env({"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "soon"})
    with pytest.raises(SettingError, match="STUCK_RUN_ALERT_SECONDS must be .* >= 0, got '-1'"):
        status.Thresholds.from_env({"STUCK_RUN_ALERT_SECONDS": "-1"})


def test_a_malformed_setting_exits_non_zero_naming_it(monkeypatch):
    monkeypatch.setenv("QUEUED_RUN_ALERT_SECONDS", "later")
    with pytest.raises(SystemExit) as exited:
        status.main([])
    assert "QUEUED_RUN_ALERT_SECONDS" in str(exited.value.code) and "'later'" in str(exited.value.code)
    monkeypatch.setenv("WATCHDOG_INTERVAL_SECONDS", "0")
    with pytest.raises(SystemExit) as exited:
        watchdog.main(["--healthcheck"])
    assert "WATCHDOG_INTERVAL_SECONDS must be a duration in seconds" in str(exited.value.code)
    assert ">= 1, got '0'" in str(exited.value.code)


def test_detection_budget_of_the_defaults_is_under_a_minute():
    """A daemon that heartbeated just before it stopped goes silent for the threshold, then the
    watchdog notices on its next check at the latest."""
    assert DEFAULTS.heartbeat_seconds + 15 < 60


def test_unreachable_report_and_table():
    report = status.unreachable("cannot reach the Dagster storage (Postgres x@postgres:5432/dagster): boom", DEFAULTS)
    assert report.exit_code == 2 and report.state == "unreachable" and not report.healthy
    assert "UNREACHABLE" in status.render_table(report)
    assert "cannot reach the Dagster storage" in status.render_table(report)


def test_table_names_stale_daemons_and_queue():
    report = status.classify(snapshot({**{d: 5.0 for d in DAEMONS}, "SENSOR": 400.0}, queued=1, oldest_queued_age=12), DEFAULTS)
    table = status.render_table(report)
    assert table.startswith("Dagster platform: UNHEALTHY")
    assert "SENSOR" in table and "400s ago" in table and "STALE" in table
    assert "run queue: 1 QUEUED, oldest waiting 12s" in table
    json.dumps(report.to_dict())  # --json must serialize


# --- watchdog decisions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_alerted", "healthy", "seen_healthy", "since_start", "expected"),
    [
        (None, True, True, 1, None),  # healthy baseline: nothing to say
        (True, False, True, 500, "unhealthy"),  # healthy -> unhealthy
        (False, False, True, 500, None),  # still unhealthy: said already
        (False, True, True, 500, "recovered"),  # unhealthy -> healthy
        (True, True, True, 500, None),
        (None, False, False, 10, None),  # fresh start, daemon not up yet: within grace
        (None, False, False, 200, "unhealthy"),  # never became healthy after the grace
        (None, False, True, 10, "unhealthy"),  # was healthy once: no grace any more
    ],
)
def test_alert_transitions(last_alerted, healthy, seen_healthy, since_start, expected):
    assert watchdog.transition(last_alerted, healthy, seen_healthy, since_start, 120) == expected


def test_the_project_is_the_compose_project():
    """The one run containers are labelled with (dagster.yaml), so only its own are pruned."""
    assert watchdog.PROJECT.name == "PLATFORM_PROJECT"
    assert watchdog.PROJECT.get({"PLATFORM_PROJECT": "flights-e2e-1234"}) == "flights-e2e-1234"
    with pytest.raises(SettingError, match="PLATFORM_PROJECT must be set"):
        watchdog.PROJECT.get({})


def test_alert_payload_names_the_daemons():
    report = status.classify(snapshot({d: 50.0 for d in DAEMONS}, queued=1, oldest_queued_age=20), DEFAULTS)
    payload = watchdog.alert_payload("unhealthy", "flights", report)
    assert payload["source"] == "watchdog" and payload["alert"] == "platform_unhealthy"
    assert payload["stale_daemons"] == DAEMONS and payload["queue_depth"] == 1
    assert "dagster-daemon not heartbeating" in payload["summary"]
    ok = watchdog.alert_payload("recovered", "flights", status.classify(snapshot(), DEFAULTS))
    assert ok["alert"] == "platform_recovered" and ok["state"] == "healthy" and ok["stale_daemons"] == []


def test_parse_docker_time():
    assert watchdog.parse_docker_time("0001-01-01T00:00:00Z") is None
    assert watchdog.parse_docker_time("") is None
    assert watchdog.parse_docker_time("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert watchdog.parse_docker_time("2027-01-15T08:00:00.123456789Z") == pytest.approx(1_800_000_000.123456)


def test_only_exited_containers_past_the_keep_time_are_due():
    containers = [
        {"id": "old", "state": "exited", "finished_at": NOW - 3601},
        {"id": "young", "state": "exited", "finished_at": NOW - 60},
        {"id": "running", "state": "running", "finished_at": None},
        {"id": "dead", "state": "dead", "finished_at": None},
        {"id": "created", "state": "created", "finished_at": None},
    ]
    assert [c["id"] for c in watchdog.due_for_removal(containers, NOW, 3600)] == ["old", "dead"]
    assert [c["id"] for c in watchdog.due_for_removal(containers, NOW, 0)] == ["old", "young", "dead"]


def test_healthcheck_follows_the_heartbeat_file(tmp_path, monkeypatch):
    beat = tmp_path / "beat"
    monkeypatch.setenv("WATCHDOG_HEARTBEAT_FILE", str(beat))
    monkeypatch.setenv("WATCHDOG_INTERVAL_SECONDS", "5")
    assert watchdog.healthcheck() == 1  # no loop yet
    watchdog.write_heartbeat(3, status.classify(snapshot(), DEFAULTS))
    assert json.loads(beat.read_text())["iteration"] == 3
    assert watchdog.healthcheck() == 0
    old = time.time() - 46  # 3 intervals + 30 s
    os.utime(beat, (old, old))
    assert watchdog.healthcheck() == 1


# --- against a real instance ----------------------------------------------------------------


def _dagster_home(tmp_path, monkeypatch, pg: dict) -> None:
    for key, value in write_dagster_home(tmp_path / "home", pg).items():
        monkeypatch.setenv(key, value)


@pytest.mark.postgres
def test_reads_heartbeats_queue_and_stuck_runs_from_postgres(dagster_db, tmp_path, monkeypatch, capsys):
    """The daemon container's healthcheck (psycopg2, no Dagster) gives the same daemon verdict
    on the same storage at every step."""
    from dagster import DagsterRunStatus
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._daemon.types import DaemonHeartbeat

    origin = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("loc"), "__repository__"), "queued_job")

    from dagster import DagsterInstance

    _dagster_home(tmp_path, monkeypatch, dagster_db)
    instance = DagsterInstance.get()  # writes through Dagster's API; the check reads without it
    reader = status.StatusReader()
    try:
        required = instance.get_required_daemon_types()
        assert "QUEUED_RUN_COORDINATOR" in required and "MONITORING" in required
        assert sorted(status.required_daemons()) == sorted(required)
        report = reader.evaluate(DEFAULTS)
        assert not report.healthy and sorted(report.stale_daemons) == sorted(required)  # never heartbeated
        assert daemon_healthcheck.main() == 1
        assert "no daemon type has ever heartbeated" in capsys.readouterr().out

        now = time.time()
        for daemon_type in required:
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - 5, daemon_type, "d1", []))
        for _ in range(2):
            instance.add_run(DagsterRun(job_name="queued_job", run_id=secrets.token_hex(8),
                                    status=DagsterRunStatus.QUEUED, remote_job_origin=origin))
        report = reader.evaluate(DEFAULTS)
        assert report.healthy, report.reasons
        assert all(4 <= d["age_seconds"] <= 15 for d in report.daemons), report.daemons
        assert daemon_healthcheck.main() == 0, capsys.readouterr().out
        assert report.queue["depth"] == 2 and report.queue["oldest_age_seconds"] is not None

        oldest = min(r.create_timestamp.timestamp() for r in instance.get_run_records())
        assert abs(report.queue["oldest_age_seconds"] - (time.time() - oldest)) < 5

        starting = DagsterRun(job_name="slow_job", run_id=secrets.token_hex(8), status=DagsterRunStatus.STARTING)
        instance.add_run(starting)
        report = reader.evaluate(status.Thresholds(stuck_seconds=0))
        assert [(r["run_id"], r["job_name"], r["status"]) for r in report.stuck_runs] == [
            (starting.run_id, "slow_job", "STARTING")]
        since = instance.get_run_record_by_id(starting.run_id).update_timestamp.timestamp()
        assert abs(report.stuck_runs[0]["age_seconds"] - (time.time() - since)) < 5

        instance.add_daemon_heartbeat(DaemonHeartbeat(now - 120, "SENSOR", "d1", []))
        assert reader.evaluate(DEFAULTS).healthy  # late thread, live process
        assert daemon_healthcheck.main() == 0, capsys.readouterr().out
        instance.add_daemon_heartbeat(DaemonHeartbeat(now - 400, "SENSOR", "d1", []))
        report = reader.evaluate(DEFAULTS)
        assert report.stale_daemons == ["SENSOR"] and report.exit_code == 1
        capsys.readouterr()
        assert daemon_healthcheck.main() == 1
        assert "thread(s) stuck" in capsys.readouterr().out

        for daemon_type in required:  # the process stopped
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - 45, daemon_type, "d1", []))
        report = reader.evaluate(DEFAULTS)
        assert sorted(report.stale_daemons) == sorted(required) and "not heartbeating" in report.reasons[0]
        assert daemon_healthcheck.main() == 1
        assert re.search(r"newest heartbeat of any daemon type is 4[5-9]s old", capsys.readouterr().out)

        # Postgres restarted under the watchdog's kept connection: the next check reconnects.
        import psycopg2

        pid = reader.conn.get_backend_pid()
        admin = psycopg2.connect(**{k: dagster_db[k] for k in ("host", "port", "dbname", "user", "password")})
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        finally:
            admin.close()
        report = reader.evaluate(DEFAULTS)
        assert report.state != "unreachable", report.reasons
        assert reader.conn.get_backend_pid() != pid
    finally:
        reader.close()
        instance.dispose()


@pytest.mark.postgres
def test_exit_code_2_when_storage_is_unreachable(dagster_db, tmp_path, monkeypatch, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    _dagster_home(tmp_path, monkeypatch, {**dagster_db, "port": closed_port})
    assert status.main([]) == 2
    out, err = capsys.readouterr()
    assert "cannot reach the Dagster storage" in err and f"127.0.0.1:{closed_port}" in err
    assert status.main(["--json"]) == 2
    assert json.loads(capsys.readouterr().out)["state"] == "unreachable"
    assert daemon_healthcheck.main() == 1
    out = capsys.readouterr().out
    assert f"cannot read the heartbeats from Postgres {dagster_db['user']}@127.0.0.1:{closed_port}/" in out
    assert dagster_db["password"] not in out


def test_daemon_healthcheck_never_imports_dagster(tmp_path):
    """Importing Dagster took 38 s on a loaded host and timed the healthcheck out."""
    code = ("import runpy, sys\n"
            "try:\n    runpy.run_path(sys.argv[1], run_name='__main__')\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print('imported dagster' if any(m.split('.')[0] == 'dagster' for m in sys.modules) else 'no dagster')\n"
            "sys.exit(code)\n")
    env = {"PATH": os.environ["PATH"], "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_DB": "d",
           "DAGSTER_PG_USER": "u", "DAGSTER_PG_PASSWORD": "p", "DAGSTER_PG_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "deploy/docker/daemon_healthcheck.py")],
                            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "DAGSTER_PG_PORT must be a whole number between 1 and 65535, got 'not-a-port'" in result.stdout
    assert result.stdout.strip().endswith("no dagster"), result.stdout


def test_the_status_check_and_the_watchdog_never_import_dagster(tmp_path):
    """Dagster held ~75 MiB of the watchdog's ~100 and cost ~1 CPU-s of every start."""
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    code = ("import sys\n"
            f"sys.path.insert(0, {str(REPO_ROOT / 'deploy/ops')!r})\n"
            "import platform_status, platform_watchdog\n"
            "report = platform_status.StatusReader('watchdog').evaluate(platform_status.Thresholds())\n"
            "print(report.state, report.reasons)\n"
            "print('imported dagster' if any(m.split('.')[0] == 'dagster' for m in sys.modules) else 'no dagster')\n")
    env = {"PATH": os.environ["PATH"], "DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_HOST": "127.0.0.1",
           "DAGSTER_PG_PORT": str(closed_port), "DAGSTER_PG_DB": "d", "DAGSTER_PG_USER": "u", "DAGSTER_PG_PASSWORD": "p"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("unreachable") and "cannot reach the Dagster storage" in result.stdout
    assert result.stdout.strip().endswith("no dagster"), result.stdout


def test_an_unreadable_instance_config_is_unreachable_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "nowhere"))
    report = status.StatusReader().evaluate(DEFAULTS)
    assert report.state == "unreachable" and report.exit_code == 2
    assert "cannot read the Dagster instance config" in report.reasons[0] and "nowhere" in report.reasons[0]


# --- the watchdog restarts a killed daemon and stops in-flight runs on `down` ---------------------


def test_only_a_killed_or_crashed_container_counts_as_killed():
    assert watchdog.was_killed({"Status": "exited", "ExitCode": 137, "Restarting": False})  # docker kill
    assert watchdog.was_killed({"Status": "dead", "ExitCode": 1})
    assert not watchdog.was_killed({"Status": "exited", "ExitCode": 0})  # compose stop: on purpose
    assert not watchdog.was_killed({"Status": "running", "ExitCode": 0})
    assert not watchdog.was_killed({"Status": "restarting", "ExitCode": 137, "Restarting": True})  # Docker's job


def test_daemon_down_means_every_type_silent_not_one_stuck_thread():
    assert watchdog.daemon_down(status.classify(snapshot({d: 41.0 for d in DAEMONS}), DEFAULTS))
    assert not watchdog.daemon_down(status.classify(snapshot({**{d: 5.0 for d in DAEMONS}, "SENSOR": 301.0}), DEFAULTS))
    assert not watchdog.daemon_down(status.classify(snapshot(), DEFAULTS))
    assert not watchdog.daemon_down(status.unreachable("storage down", DEFAULTS))


# Each prints "ready" once its handler is in place (before that, PID 1 ignores SIGTERM).
SIGTERM_EXITS_0 = ("import signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
                   "print('ready', flush=True); time.sleep(600)")
SIGTERM_IGNORED = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"


def _container(name: str, labels: dict[str, str], code: str) -> None:
    cmd = ["docker", "run", "-d", "--name", name, "--network", "none", "--stop-timeout", "30"]
    for key, value in labels.items():
        cmd += ["--label", f"{key}={value}"]
    subprocess.run([*cmd, "--entrypoint", "python", "python:3.13-slim-trixie", "-c", code],
                   check=True, capture_output=True, timeout=120)


def _ready(name: str, times: int = 1) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        if logs.count("ready") >= times:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never got ready")


def _state(name: str) -> dict:
    out = subprocess.run(["docker", "inspect", "-f", "{{json .State}}", name], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


@pytest.mark.docker
def test_pruner_restarts_a_killed_service_and_stops_in_flight_runs():
    """Against real containers of a throwaway project label: a `docker kill`ed daemon is started
    again, a gracefully stopped one is not; on shutdown running run containers get SIGTERM, those
    ignoring it SIGKILL after the grace, and all are removed; another project's are untouched."""
    project, other = f"wd-test-{secrets.token_hex(3)}", f"wd-other-{secrets.token_hex(3)}"
    daemon = f"{project}-daemon"
    runs = {f"{project}-run-polite": SIGTERM_EXITS_0, f"{project}-run-stubborn": SIGTERM_IGNORED}
    foreign = f"{other}-run"
    names = [daemon, *runs, foreign]
    pruner = watchdog.RunContainerPruner(project)
    try:
        _container(daemon, {"com.docker.compose.project": project, "com.docker.compose.service": "daemon",
                            "com.docker.compose.container-number": "1"}, SIGTERM_EXITS_0)
        _ready(daemon)
        assert not pruner.restart_killed("daemon")  # running
        subprocess.run(["docker", "kill", daemon], check=True, capture_output=True)
        assert _state(daemon)["ExitCode"] == 137
        assert pruner.restart_killed("daemon")
        assert _state(daemon)["Running"]
        _ready(daemon, times=2)
        subprocess.run(["docker", "stop", daemon], check=True, capture_output=True)
        assert _state(daemon)["ExitCode"] == 0
        assert not pruner.restart_killed("daemon") and not _state(daemon)["Running"]
        assert not watchdog.RunContainerPruner(other).restart_killed("daemon")  # no such service
        # A one-off `compose run` container of the service is not the service's container.
        _container(f"{project}-oneoff", {"com.docker.compose.project": project, "com.docker.compose.service": "daemon",
                                         "com.docker.compose.oneoff": "True"}, SIGTERM_EXITS_0)
        names.append(f"{project}-oneoff")
        assert not pruner.service_running("daemon")
        subprocess.run(["docker", "kill", f"{project}-oneoff"], check=True, capture_output=True)
        subprocess.run(["docker", "start", daemon], check=True, capture_output=True)
        _ready(daemon, times=3)
        subprocess.run(["docker", "kill", daemon], check=True, capture_output=True)
        assert pruner.restart_killed("daemon") and _state(daemon)["Running"]
        assert not _state(f"{project}-oneoff")["Running"]
        assert pruner.service_running("daemon")
        # A container merely run from the instance image carries the image's compose labels
        # (project, service=daemon) but is not the service's: running, it must not stop a restart.
        _container(f"{project}-from-image", {"com.docker.compose.project": project,
                                             "com.docker.compose.service": "daemon"}, SIGTERM_EXITS_0)
        names.append(f"{project}-from-image")
        _ready(f"{project}-from-image")
        subprocess.run(["docker", "kill", daemon], check=True, capture_output=True)
        assert not pruner.service_running("daemon")
        assert pruner.restart_killed("daemon") and _state(daemon)["Running"]

        for name, code in runs.items():
            _container(name, {watchdog.PROJECT_LABEL: project, watchdog.ROLE_LABEL: "run"}, code)
        _container(foreign, {watchdog.PROJECT_LABEL: other, watchdog.ROLE_LABEL: "run"}, SIGTERM_EXITS_0)
        for name in runs:
            _ready(name)
        started = time.monotonic()
        assert pruner.stop_in_flight(grace_seconds=3) == 1  # the stubborn one needed SIGKILL
        assert time.monotonic() - started < 20
        assert _state(f"{project}-run-polite")["ExitCode"] == 0
        assert _state(f"{project}-run-stubborn")["ExitCode"] == 137
        assert pruner.prune(0, "shutdown") == 2
        assert not _state(f"{project}-run-polite") and not _state(f"{project}-run-stubborn")
        assert _state(foreign)["Running"]
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)


@pytest.mark.docker
def test_shutdown_sweep_removes_never_started_and_late_run_containers():
    """`compose down` stops the daemon mid-launch: a run container it created but never started
    stays "created", and a create it sent just before it stopped can land after the watchdog's
    first look. The sweep removes both; another project's are untouched."""
    project, other = f"wd-test-{secrets.token_hex(3)}", f"wd-other-{secrets.token_hex(3)}"
    created, late, foreign = f"{project}-run-created", f"{project}-run-late", f"{other}-run-created"

    def create(name: str, owner: str) -> None:
        subprocess.run(["docker", "create", "--name", name, "--network", "none", "--label", f"{watchdog.PROJECT_LABEL}={owner}",
                        "--label", f"{watchdog.ROLE_LABEL}=run", "--entrypoint", "python", "python:3.13-slim-trixie",
                        "-c", "pass"], check=True, capture_output=True, timeout=120)

    pruner = watchdog.RunContainerPruner(project)
    try:
        create(created, project)
        create(foreign, other)
        assert _state(created)["Status"] == "created"
        assert pruner.prune(0, "shutdown") == 0 and _state(created)  # the running stack's prune leaves it
        landing = threading.Timer(0.5, create, (late, project))
        landing.start()
        removed = pruner.shutdown_sweep(grace_seconds=3, settle_seconds=2)
        landing.join()
        assert removed == 2
        assert not _state(created) and not _state(late)
        assert _state(foreign)["Status"] == "created"
    finally:
        subprocess.run(["docker", "rm", "-f", created, late, foreign], capture_output=True)
