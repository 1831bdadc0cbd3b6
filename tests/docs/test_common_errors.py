"""README "Common errors": each row quotes the message our stack really prints. Every message is
provoked here for real (Dagster's APIs, the `dagster` and `dg` CLIs, our own scripts, a
throwaway Postgres for the warehouse case) and must appear verbatim, in a code span, in its
row, so a Dagster upgrade or an edit that changes a message fails here until the README
follows. Only what varies between machines (paths, colours) is normalised."""

import contextlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, Definitions, materialize
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.test_utils import instance_for_test

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BIN = Path(sys.executable).parent
DG_CLI = BIN / "dg"


PLACEHOLDER_ENV = {
    "WAREHOUSE_HOST": "warehouse.invalid",  # never resolves: nothing provoked here can write
    "WAREHOUSE_PORT": "6543",
    "WAREHOUSE_DB": "placeholder_db",
    "WAREHOUSE_USER": "placeholder_user",
    "WAREHOUSE_PASSWORD": "placeholder-password",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
IMPORT_ERROR = re.compile(
    r"(DagsterImportError: Encountered ImportError: .*? while importing module platform_ops\.definitions\.)"
)


# --- the README side --------------------------------------------------------------------------


def readme_rows() -> dict[str, str]:
    """Rows of the "### Common errors" table by their first cell (the row's name)."""
    text = README.read_text()
    start = text.index("\n### Common errors\n")
    end = min(i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if i > 0)
    lines = text[start:end].splitlines()
    separator = lines.index("|---|---|---|")  # the rows follow the header's separator
    rows = {}
    for line in lines[separator + 1 :]:
        if line.startswith("| "):
            rows[line.split(" | ", 1)[0].removeprefix("| ").strip("* ")] = line
    return rows


def code_span(message: str) -> str:
    """How the message is written in markdown: a message that holds backticks needs `` ``."""
    return f"`` {message} ``" if "`" in message else f"`{message}`"


def assert_quoted(row: str, message: str) -> None:
    rows = readme_rows()
    assert row in rows, f"README 'Common errors' has no row {row!r}; rows: {sorted(rows)}"
    assert code_span(message) in rows[row], (
        f"README 'Common errors', row {row!r}, must quote what the stack prints, verbatim:\n"
        f"  {code_span(message)}\nthe row is:\n  {rows[row]}"
    )


def test_the_table_has_exactly_the_rows_this_module_provokes():
    assert sorted(readme_rows()) == sorted(ROWS)


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def placeholder_env(monkeypatch, tmp_path) -> dict[str, str]:
    env = {**PLACEHOLDER_ENV, "REPORTS_DIR": str(tmp_path / "reports"),
           "LANDING_ZONE_DIR": str(tmp_path / "landing")}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory) -> Iterator[DagsterInstance]:
    """A throwaway DAGSTER_HOME for the `dagster` CLI, the placeholder settings, and the home's
    instance to read runs back."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**PLACEHOLDER_ENV, "DAGSTER_HOME": str(home), "REPORTS_DIR": str(home / "reports"),
                            "LANDING_ZONE_DIR": str(home / "landing")}.items():  # fmt: skip
            patch.setenv(name, value)
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance


def materialize_cli(module: str, *args: str) -> str:
    """`dagster asset materialize -m <module> <args>`, run in this process (the same click command
    as the executable, without importing Dagster and the location again), and the message of
    the error it ends with: the last line the executable prints, after the exception's name."""
    from click.testing import CliRunner
    from dagster._cli.asset import asset_materialize_command

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(asset_materialize_command, ["-m", module, *args])
    assert result.exit_code != 0, result.output
    return str(result.exception)


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of `dg`, a subprocess: placeholders, a throwaway DAGSTER_HOME, nothing of
    the caller's Dagster or warehouse settings (nor the repo's .env: cwd is elsewhere)."""
    home = tmp_path / "dg_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "DAGSTER_"))}
    return {**base, **PLACEHOLDER_ENV, "DAGSTER_HOME": str(home), "NO_COLOR": "1"}


# --- a resource not found ---------------------------------------------------------------------


def test_resource_not_found(placeholder_env):
    """An asset asks for a resource key its location's Definitions do not provide: the location
    does not load. This is the validation `make check` (`dg check defs`) runs."""
    from reporting.defs.assets import on_time_report
    from reporting.defs.resources import build_resources

    resources = build_resources()
    provided = {key: resources[key] for key in ("io_manager", "warehouse")}  # reports_dir left out
    with pytest.raises(Exception) as raised:
        Definitions.validate_loadable(Definitions(assets=[on_time_report], resources=provided))
    assert type(raised.value).__name__ == "DagsterInvalidDefinitionError"
    assert_quoted("a resource not found", str(raised.value))


# --- an invalid asset subset ------------------------------------------------------------------


@pytest.fixture(scope="module")
def daily_and_monthly_reporting_assets() -> tuple[str, str]:
    """A day-partitioned and a month-partitioned asset of reporting, whichever they are today."""
    from dagster import DailyPartitionsDefinition, MonthlyPartitionsDefinition

    from reporting.definitions import defs

    found: dict[type, str] = {}
    for node in defs.resolve_asset_graph().asset_nodes:
        if node.is_executable and type(node.partitions_def) in (DailyPartitionsDefinition, MonthlyPartitionsDefinition):
            found.setdefault(type(node.partitions_def), node.key.to_user_string())
    assert len(found) == 2, f"reporting has no daily and monthly asset to mix: {found}"
    return found[DailyPartitionsDefinition], found[MonthlyPartitionsDefinition]


def test_invalid_asset_subset(daily_and_monthly_reporting_assets, dagster_home):
    daily, monthly = daily_and_monthly_reporting_assets
    cases = {
        "unknown key": ["--select", "reporting/no_such_asset"],
        "mixed partitions": ["--select", f"{daily},{monthly}", "--partition", "2013-01-01"],
        "partitioned without key": ["--select", daily],
        "empty selection": ["--select", "tag:no_such_tag", "--partition", "2013-01-01"],
    }
    runs_before = len(dagster_home.get_runs())
    for name, args in cases.items():
        message = materialize_cli("reporting.definitions", *args)
        assert message.startswith(("AssetKey(s)", "Failure condition")), f"{name}: {message}"
        assert_quoted("an invalid asset subset", message)
    assert len(dagster_home.get_runs()) == runs_before, "a refused selection must not start a run"


def test_a_selection_matching_nothing_starts_every_asset(dagster_home):
    """Dagster does not refuse a selection expression that matches no asset: without
    `--partition` it runs the location's whole asset job (here against a warehouse host that
    cannot resolve, so nothing is written), and the partitioned assets fail like this."""
    from dagster import DagsterEventType

    from reporting.definitions import defs

    runs_before = {run.run_id for run in dagster_home.get_runs()}
    message = materialize_cli("reporting.definitions", "--select", "tag:no_such_tag")
    assert message == "1"  # click's exit: "Error: Materialization failed."
    (run,) = [run for run in dagster_home.get_runs() if run.run_id not in runs_before]
    started = {e.step_key for e in dagster_home.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)}
    executable = {node.key: node for node in defs.resolve_asset_graph().asset_nodes if node.is_executable}
    # every asset whose upstream lies outside the location starts (the rest wait on those)
    roots = [key for key, node in executable.items() if not node.parent_keys & executable.keys()]
    assert len(started) >= len(roots) > 1, (roots, started)
    failures = [e.dagster_event.event_specific_data.error for e in dagster_home.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)]
    causes = {(error.cause or error).message.strip() for error in failures}
    partitioned = [c for c in causes if "Has a PartitionsDefinition" in c]
    assert partitioned, causes
    assert_quoted("an invalid asset subset", partitioned[0].split(": ", 1)[1])


# --- a partition key in the wrong format or out of range --------------------------------------


@pytest.mark.parametrize("key", ["2013/01/01", "2014-01-01"])
def test_partition_key_cli(key, dagster_home):
    message = materialize_cli("ingestion.definitions", "--select", "ingestion/flights", "--partition", key)
    # quoted with the badly formatted key; the out-of-range one prints the same words
    assert_quoted("a partition key in the wrong format or out of range", message.replace(key, "2013/01/01"))


@pytest.mark.parametrize("key", ["2013/01/01", "2014-01-01"])
def test_partition_key_python(key, placeholder_env):
    from ingestion.defs.assets import flights
    from ingestion.defs.resources import build_resources

    with pytest.raises(Exception) as raised:
        materialize([flights], resources=build_resources(), partition_key=key)
    assert type(raised.value).__name__ == "DagsterUnknownPartitionError"
    assert_quoted("a partition key in the wrong format or out of range", str(raised.value).replace(key, "2013/01/01"))


@pytest.mark.parametrize("first", ["2013/01/01", "2014-01-01"])
def test_partition_key_make_backfill(first):
    """`make backfill FROM=…` (deploy/ops/launch_backfill.py) refuses it before calling the API."""
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "ops" / "launch_backfill.py"), first, "2013-12-31"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result
    assert_quoted("a partition key in the wrong format or out of range", result.stderr.strip())


# --- a stale or missing upstream asset ---------------------------------------------------------


def run_daily_summary(day: str):
    from reporting.defs.assets import daily_delay_summary
    from reporting.defs.resources import build_resources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return materialize([daily_delay_summary], resources=build_resources(), partition_key=day,
                           raise_on_error=False)  # fmt: skip


def step_error(result) -> str:
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    assert error.cls_name == "UpstreamNotMaterializedError", error.to_string()
    return error.message.split(": ", 1)[1].strip()


def test_upstream_not_materialized(warehouse_env, monkeypatch, tmp_path, sql_rows):
    """Reporting run for a day ingestion has not landed: first with no ingestion table at all,
    then with the table holding another day only. Nothing is written either time."""
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    result = run_daily_summary("2013-01-01")
    assert not result.success
    assert_quoted("a stale or missing upstream asset", step_error(result))

    with warehouse_env.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA ingestion")
        cursor.execute("CREATE TABLE ingestion.flights (flight_date date)")
        cursor.execute("INSERT INTO ingestion.flights VALUES ('2013-01-01')")
    result = run_daily_summary("2013-01-02")
    assert not result.success
    assert_quoted("a stale or missing upstream asset", step_error(result))
    assert sql_rows(warehouse_env, "SELECT to_regclass('reporting.daily_delay_summary')") == [(None,)]


def true_labels(node, partition: str) -> list[str]:
    """Labels of the conditions in an evaluation tree that hold for `partition`, as the asset's
    Automation tab in the UI names them."""
    label = node.condition.get_label()
    found = [label] if label and partition in node.true_subset.get_internal_subset_value().get_partition_keys() else []
    return found + [lab for child in node.child_results for lab in true_labels(child, partition)]


def test_automation_holds_back_a_day_with_a_missing_upstream(placeholder_env):
    """reporting_automation after ingestion landed 2013-12-31's flights but no weather (the source
    has none for that day): what needs only flights is requested, what needs weather is not, and
    its evaluation says why. Ingestion is stood in for by test-only assets with its keys."""
    from dagster import AssetMaterialization, DailyPartitionsDefinition, asset, evaluate_automation_conditions

    from flights_shared.asset_keys import FLIGHTS, WEATHER
    from flights_shared.partitions import DAYS_OF_2013
    from reporting.definitions import defs as reporting

    @asset(key=FLIGHTS, partitions_def=DAYS_OF_2013)
    def flights_landed() -> None: ...

    @asset(key=WEATHER, partitions_def=DAYS_OF_2013)
    def weather_landed() -> None: ...

    day = "2013-12-31"
    defs = Definitions.merge(reporting, Definitions(assets=[flights_landed, weather_landed]))
    daily = {node.key: node.parent_keys for node in reporting.resolve_asset_graph().asset_nodes
             if node.is_executable and isinstance(node.partitions_def, DailyPartitionsDefinition)}  # fmt: skip
    with warnings.catch_warnings(), DagsterInstance.ephemeral() as instance:
        warnings.simplefilter("ignore")
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(AssetMaterialization(FLIGHTS, partition=day))
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {key for key in daily if day in result.get_requested_partitions(key)}
    needs_weather = {key for key, parents in daily.items() if WEATHER in parents}
    assert needs_weather and requested == set(daily) - needs_weather, (requested, needs_weather)
    for key in needs_weather:
        (evaluation,) = [r for r in result.results if r.key == key]
        assert "any_deps_missing" in true_labels(evaluation, day)
        assert_quoted("a stale or missing upstream asset", "any_deps_missing")


# --- a code location that fails to load -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def image_code_server_command(module: str, location: str, port: int) -> list[str]:
    """The code server command of the location image's CMD (code-location.Dockerfile), for this
    module and location, on 127.0.0.1:port."""
    cmd = next(line for line in (REPO / "deploy/docker/code-location.Dockerfile").read_text().splitlines()
               if line.startswith("CMD "))
    shell = json.loads(cmd[len("CMD "):])[-1]
    shell = shell.replace("${DAGSTER_MODULE}", module).replace("${DAGSTER_LOCATION}", location)
    args = shlex.split(shell.removeprefix("exec "))
    args[args.index("-h") + 1], args[args.index("-p") + 1] = "127.0.0.1", str(port)
    return args


def test_the_code_server_command_is_the_images():
    assert image_code_server_command("m", "loc", 1234) == [
        "dagster", "api", "grpc", "-h", "127.0.0.1", "-p", "1234", "-m", "m.definitions", "--location-name", "loc",
        "--lazy-load-user-code"]


@pytest.fixture(scope="module", autouse=True)
def broken_location(tmp_path_factory) -> Iterator[dict]:
    """A copy of the platform location whose definitions import a package its pyproject.toml does
    not list (so its image would not have it), checked with `dg check defs` and served by
    the command of the location image's CMD, as the stack's code servers run it. Both start as soon as this
    module starts and run on the other core while the in-process tests run."""
    project = tmp_path_factory.mktemp("broken") / "platform"
    shutil.copytree(REPO / "code_locations" / "platform", project,
                    ignore=shutil.ignore_patterns("__pycache__", "tests", "*.egg-info"))  # fmt: skip
    definitions = project / "src" / "platform_ops" / "definitions.py"
    definitions.write_text("import package_not_in_the_lock\n" + definitions.read_text())
    env = cli_env(project.parent)
    env = {**env, "VIRTUAL_ENV": str(BIN.parent), "PATH": f"{BIN}:{env['PATH']}"}
    port = free_port()
    processes = {
        "dg": subprocess.Popen(
            [str(DG_CLI), "check", "defs", "--use-active-venv"], cwd=project, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ),
        "code_server": subprocess.Popen(
            [str(BIN / "dagster"), *image_code_server_command("platform_ops", "platform", port)[1:], "-d", str(project / "src")],
            cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the server it spawns goes with it
        ),
    }  # fmt: skip
    try:
        yield {"project": project, "port": port, **processes}
    finally:
        group = processes["code_server"].pid
        if processes["code_server"].poll() is None:
            os.killpg(group, signal.SIGTERM)
        for process in processes.values():
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
        with contextlib.suppress(ProcessLookupError):  # the server it spawned, if it outlived it
            os.killpg(group, signal.SIGKILL)


def test_location_fails_to_load_blank_setting(placeholder_env, monkeypatch):
    from flights_shared.warehouse import SettingError, warehouse_from_env

    monkeypatch.setenv("WAREHOUSE_PASSWORD", "")
    with pytest.raises(SettingError) as raised:
        warehouse_from_env()
    assert_quoted("a code location that fails to load", str(raised.value))


# --- a run container missing a variable --------------------------------------------------------


def test_run_missing_a_variable_its_resource_reads(placeholder_env, monkeypatch):
    """What a run container prints when a variable its location's resources read (EnvVar) is not
    in its environment: the run fails before any step starts."""
    from reporting.defs.assets import on_time_report
    from reporting.defs.resources import build_resources

    resources = build_resources()
    monkeypatch.delenv("REPORTS_DIR")
    with pytest.raises(Exception) as raised:
        materialize([on_time_report], resources=resources)
    assert type(raised.value).__name__ == "DagsterInvalidConfigError"
    message = re.search(r"PostProcessingError: (You have attempted to fetch[^\n]*)", str(raised.value))
    assert message, raised.value
    assert '"REPORTS_DIR"' in message.group(1)
    assert_quoted("a run container missing a variable", message.group(1))


def render_module():
    """The instance image's entrypoint, deploy/docker/render_dagster_yaml.py (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("render_dagster_yaml", REPO / "deploy/docker/render_dagster_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered_dagster_yaml() -> dict:
    """dagster.yaml as that entrypoint renders it."""
    return yaml.safe_load(render_module().render((REPO / "dagster.yaml").read_text(), {"PLATFORM_PROJECT": "common-errors"}))


@pytest.fixture
def docker_launcher_instance() -> Iterator[DagsterInstance]:
    """An instance whose run launcher is our dagster.yaml's; it never reaches Docker (the launch
    fails before)."""
    with instance_for_test(overrides={"run_launcher": rendered_dagster_yaml()["run_launcher"]}) as instance:
        yield instance


def test_launch_without_a_contract_variable(docker_launcher_instance, monkeypatch):
    """The daemon launches a queued run holding every variable of the run contract
    (dagster.yaml run_launcher.env_vars); one missing in the daemon fails every launch."""
    for name in rendered_dagster_yaml()["run_launcher"]["config"]["env_vars"]:
        monkeypatch.setenv(name, "placeholder")
    monkeypatch.delenv("WAREHOUSE_PASSWORD")
    origin = JobPythonOrigin(
        "__ASSET_JOB",
        RepositoryPythonOrigin(
            executable_path=sys.executable,
            code_pointer=ModuleCodePointer("reporting.definitions", "defs", working_directory=None),
            container_image="flights-platform/reporting:common-errors",
        ),
    )
    run = DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), job_code_origin=origin)
    launcher = docker_launcher_instance.run_launcher
    assert type(launcher).__name__ == "DockerRunLauncher"
    with pytest.raises(Exception) as raised:
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    assert_quoted("a run container missing a variable", str(raised.value))


def render_entrypoint(tmp_path: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    """The instance image's entrypoint, rendering the repository's dagster.yaml, then `command`."""
    home = tmp_path / "instance_home"
    home.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "DAGSTER_"))}
    return subprocess.run(
        [sys.executable, str(REPO / "deploy/docker/render_dagster_yaml.py"), *command],
        env={**base, **env, "DAGSTER_HOME": str(home), "DAGSTER_YAML_TEMPLATE": str(REPO / "dagster.yaml"),
             "PLATFORM_PROJECT": "common-errors"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_daemon_without_a_contract_variable_refuses_to_start(tmp_path):
    """Our own check, in the instance image's entrypoint: a daemon that could not launch a single
    run stops at once, naming the variable and where it goes, instead of failing every run."""
    contract = {name: "placeholder" for name in rendered_dagster_yaml()["run_launcher"]["config"]["env_vars"]}
    without = {k: v for k, v in contract.items() if k != "WAREHOUSE_PASSWORD"}
    refused = render_entrypoint(tmp_path, without, "dagster-daemon", "run")
    assert refused.returncode == 1, refused
    assert_quoted("a run container missing a variable", refused.stderr.strip())
    # only the daemon launches runs: another process of the image starts without it
    assert render_entrypoint(tmp_path, without, "true").returncode == 0
    render = render_module()
    rendered = render.render((REPO / "dagster.yaml").read_text(), {"PLATFORM_PROJECT": "common-errors"})
    assert render.missing_run_contract_env(rendered, contract) == []  # a complete daemon starts


# last in the module: by now the subprocesses started by broken_location have had time to finish
def test_location_fails_to_load_dg_check_defs(broken_location):
    process = broken_location["dg"]
    output, _ = process.communicate(timeout=300)
    output = ANSI.sub("", output)
    assert process.returncode != 0, output
    header = re.search(r"ERROR - (Validation failed for code location platform:)", output)
    cause = re.search(IMPORT_ERROR, output)
    assert header and cause, output
    assert f"{broken_location['project']}/src" in output  # the broken copy, not the installed package
    assert_quoted("a code location that fails to load", header.group(1))
    assert_quoted("a code location that fails to load", cause.group(1))


def test_location_fails_to_load_code_server(broken_location):
    """The code server keeps running and serves the load error: what the webserver shows for the
    location (the UI's Deployment page) is this error."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=broken_location["port"], host="127.0.0.1")
    deadline = time.monotonic() + 240
    while True:
        try:
            client.ping("ready?")
            break
        except Exception:
            assert broken_location["code_server"].poll() is None, "the code server exited"
            assert time.monotonic() < deadline, "the code server did not answer within 240 s"
            time.sleep(0.5)
    served = client.list_repositories()
    assert '"cls_name": "DagsterImportError"' in served, served
    cause = re.search(IMPORT_ERROR, served)
    assert cause, served
    assert_quoted("a code location that fails to load", cause.group(1))


ROWS = [
    "a resource not found",
    "an invalid asset subset",
    "a partition key in the wrong format or out of range",
    "a stale or missing upstream asset",
    "a code location that fails to load",
    "a run container missing a variable",
]
