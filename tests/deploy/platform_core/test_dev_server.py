"""platform_core.dev_server (`make dev LOCATION=…`): the location's settings as this machine sees
them, the `dagster dev` it starts (checked against Dagster's own CLI and workspace schema), and,
with Docker, the real thing: `make dev LOCATION=platform` serves the location, named as in the
stack, loaded."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from platform_core import dev_server
from platform_core.dev_server import command, local_value, workspace_file
from platform_core.locations import load
from tests.deploy.platform_core.repo_copies import REPO

LOCATIONS = {location.name: location for location in load(REPO)}


# --- local_value -------------------------------------------------------------------------------


def test_container_paths_are_mapped_under_the_dev_folder(tmp_path):
    assert local_value("/opt/dagster/landing", tmp_path) == str(tmp_path / "landing")
    assert (tmp_path / "landing").is_dir()
    assert local_value("/opt/dagster/reports/daily", tmp_path) == str(tmp_path / "reports" / "daily")
    assert (tmp_path / "reports" / "daily").is_dir()


def test_a_mapped_folder_that_exists_is_reused(tmp_path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "2013-01-01.csv").write_text("kept")
    assert local_value("/opt/dagster/landing", tmp_path) == str(tmp_path / "landing")
    assert (tmp_path / "landing" / "2013-01-01.csv").read_text() == "kept"


@pytest.mark.parametrize("value", ["/opt/dagsterish/x", "/srv/data", "relative/opt/dagster/x", "plain", "", "42"])
def test_other_values_pass_unchanged(tmp_path, value):
    assert local_value(value, tmp_path) == value
    assert list(tmp_path.iterdir()) == []


def test_interpolation_takes_the_shell_value(tmp_path, monkeypatch):
    monkeypatch.setenv("DEV_TEST_SETTING", "from-shell")
    assert local_value("${DEV_TEST_SETTING:-fallback}", tmp_path) == "from-shell"
    assert local_value("${DEV_TEST_SETTING}", tmp_path) == "from-shell"
    assert local_value("a-${DEV_TEST_SETTING:-x}-b", tmp_path) == "a-from-shell-b"


def test_interpolation_falls_back_to_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("DEV_TEST_SETTING", raising=False)
    assert local_value("${DEV_TEST_SETTING:-fallback}", tmp_path) == "fallback"
    assert local_value("${DEV_TEST_SETTING:-}", tmp_path) == ""
    assert local_value("${DEV_TEST_SETTING}", tmp_path) == ""
    monkeypatch.setenv("DEV_TEST_SETTING", "")  # blank is unset, as compose's ":-" has it
    assert local_value("${DEV_TEST_SETTING:-fallback}", tmp_path) == "fallback"


def test_an_interpolated_container_path_is_mapped_too(tmp_path, monkeypatch):
    monkeypatch.delenv("DEV_TEST_DIR", raising=False)
    assert local_value("${DEV_TEST_DIR:-/opt/dagster/reports}", tmp_path) == str(tmp_path / "reports")
    assert (tmp_path / "reports").is_dir()
    monkeypatch.setenv("DEV_TEST_DIR", str(tmp_path / "mine"))
    assert local_value("${DEV_TEST_DIR:-/opt/dagster/reports}", tmp_path) == str(tmp_path / "mine")


def test_the_real_locations_settings_map_to_local_ones(tmp_path, monkeypatch):
    monkeypatch.delenv("RUN_RETENTION_DAYS", raising=False)
    assert local_value(LOCATIONS["ingestion"].env["LANDING_ZONE_DIR"], tmp_path) == str(tmp_path / "landing")
    assert local_value(LOCATIONS["reporting"].env["REPORTS_DIR"], tmp_path) == str(tmp_path / "reports")
    assert local_value(LOCATIONS["platform"].env["RUN_RETENTION_DAYS"], tmp_path) == ""


# --- the dagster dev it runs -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOCATIONS))
def test_the_workspace_names_the_location_as_the_stack_does(tmp_path, name):
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    location = LOCATIONS[name]
    path = workspace_file(REPO, location, tmp_path)
    assert path.parent == tmp_path
    entry = json.loads(path.read_text())["load_from"][0]["python_module"]
    assert entry == {"module_name": location.definitions_module, "location_name": name,
                     "working_directory": str(REPO / location.path)}
    [origin] = WorkspaceFileTarget(paths=[str(path)]).create_origins()  # Dagster's own reading
    assert origin.location_name == name
    assert origin.loadable_target_origin.module_name == location.definitions_module


def test_the_command_uses_only_options_dagster_dev_has(tmp_path):
    """`dagster dev --location-name` does not exist: the first version of this module failed with
    "No such option" before serving anything."""
    from dagster._cli.dev import dev_command

    workspace = workspace_file(REPO, LOCATIONS["platform"], tmp_path)
    argv = command(workspace, 3123)
    assert argv[:2] == ["dagster", "dev"]
    options = {option for parameter in dev_command.params for option in parameter.opts}
    for flag in (arg for arg in argv[2:] if arg.startswith("-")):
        assert flag in options, flag
    assert argv[2:] == ["-w", str(workspace), "-h", "127.0.0.1", "-p", "3123"]
    result = dev_command.make_context("dev", argv[2:])
    assert result.params["port"] == "3123" and result.params["host"] == "127.0.0.1"


def test_an_unknown_location_is_refused_listing_the_registered_ones(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as raised:
        dev_server.main(["sales"])
    assert str(raised.value) == "usage: make dev LOCATION=<name>; registered: platform, ingestion, reporting"
    with pytest.raises(SystemExit, match="usage: make dev LOCATION=<name>"):
        dev_server.main([])


def test_a_bad_port_is_refused_before_anything_starts(monkeypatch):
    monkeypatch.setenv("DEV_PORT", "http")
    with pytest.raises(SystemExit, match="make dev: DEV_PORT"):
        dev_server.main(["platform"])


# --- make dev, for real ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WORKSPACE_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def location_entries(port: int) -> list[dict] | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": WORKSPACE_QUERY}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_group(process: subprocess.Popen) -> None:
    """Ctrl-C for the whole session, then SIGKILL for whatever still runs after 30 s."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def restore_interrupts() -> None:
    """A shell starting pytest in the background leaves SIGINT ignored, and Dagster maps SIGTERM
    to SIGINT's handler: restore what a terminal gives `make dev`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.docker
def test_make_dev_serves_the_platform_location(tmp_path):
    ui_port, pg_port = free_port(), free_port()
    container = f"flights-dev-postgres-{pg_port}"
    log = tmp_path / "make-dev.log"
    env = {**os.environ, "DEV_PORT": str(ui_port), "DEV_POSTGRES_PORT": str(pg_port)}
    env.pop("MAKEFLAGS", None)
    with log.open("w") as output:
        process = subprocess.Popen(["make", "dev", "LOCATION=platform"], cwd=REPO, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=restore_interrupts)
    try:
        entries, deadline = None, time.monotonic() + 180
        while time.monotonic() < deadline:
            entries = location_entries(ui_port)
            if entries and entries[0]["loadStatus"] == "LOADED":
                break
            assert process.poll() is None, f"make dev exited with {process.returncode}:\n{log.read_text()}"
            time.sleep(2)
        assert entries == [{"name": "platform", "loadStatus": "LOADED"}], log.read_text()
        assert f"make dev: platform at http://127.0.0.1:{ui_port}" in log.read_text()
        running = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True, text=True)
        assert running.stdout.strip() == "true"
    finally:
        stop_group(process)
        process.wait(timeout=10)
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True)
        subprocess.run(["docker", "volume", "rm", container], capture_output=True)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of it is left running
    assert subprocess.run(["docker", "inspect", container], capture_output=True).returncode != 0
    assert subprocess.run(["docker", "volume", "inspect", container], capture_output=True).returncode != 0
