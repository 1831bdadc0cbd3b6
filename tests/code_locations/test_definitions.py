"""Every registered code location (dg.toml, via platform_core.locations) loads and validates and
its asset specs match its committed snapshot, so a newly registered location is tested here
without a line of this file changing; reporting joins ingestion only through the asset-key
contract.

Snapshots: code_locations/<location>/asset_specs.json, in the location's own folder (`make
location` writes the first one). Write or refresh them with

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/code_locations/test_definitions.py -k snapshot

and commit the files (review the diff: keys, deps, partitions and groups are a contract)."""

import difflib
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, EnvVar
from dagster._config.field_utils import IntEnvVar
from dagster._core.definitions.partitions.definition import TimeWindowPartitionsDefinition

from flights_shared.asset_keys import AIRLINES, FLIGHTS, INGESTION_PREFIX, REPORTING_PREFIX
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager
from flights_shared.warehouse import WarehouseResource
from platform_core import locations as registry
from platform_core.locations import Location

LOCATIONS = registry.load()
BY_NAME = {location.name: location for location in LOCATIONS}
# Reporting assets partitioned by day like ingestion/flights (the monthly and whole-history
# ones depend on the days but are partitioned by month / not at all).
REPORTING_DAILY_ASSETS = ["daily_delay_summary", "weather_delay_link"]
REPO = Path(__file__).resolve().parents[2]
SNAPSHOT_FILE = "asset_specs.json"
DAGSTER_CLI = Path(sys.executable).with_name("dagster")
PLACEHOLDER_ENV = {
    "WAREHOUSE_HOST": "warehouse.invalid",
    "WAREHOUSE_PORT": "6543",
    "WAREHOUSE_DB": "placeholder_db",
    "WAREHOUSE_USER": "placeholder_user",
    "WAREHOUSE_PASSWORD": "placeholder-password",
}
# ${NAME}, ${NAME:-default}, ${NAME-default} in a location's [tool.flights-platform.location] env.
COMPOSE_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?\}")


def snapshot_command(name: str) -> str:
    return f"UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/code_locations/test_definitions.py -k 'snapshot and {name}'"


def deployed_env() -> dict[str, str]:
    """The warehouse placeholders plus every location's own env as its code server gets it with
    no deployment setting (compose defaults: "${RUN_RETENTION_DAYS:-}" -> "")."""
    env = dict(PLACEHOLDER_ENV)
    for location in LOCATIONS:
        for name, value in {**location.env, **location.code_server_env}.items():
            env[name] = COMPOSE_VARIABLE.sub(lambda m: m.group(1) or "", value)
    return env


@pytest.fixture
def placeholder_env(monkeypatch) -> dict[str, str]:
    env = deployed_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def location_defs(location: Location | str) -> Definitions:
    if isinstance(location, str):
        location = BY_NAME[location]
    return importlib.import_module(location.definitions_module).defs


def location_ids(location: Location) -> str:
    return location.name


def defined_asset_keys(defs: Definitions) -> set:
    """Keys the location materializes itself (excludes Dagster's auto-created upstream stubs)."""
    return set(defs.resolve_asset_graph().materializable_asset_keys)


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("location", LOCATIONS, ids=location_ids)
def test_defs_load_and_validate(location, placeholder_env):
    """What the code server does on start: build the repository and validate it. Each location
    owns the asset keys under its own name (also its warehouse schema and UI prefix)."""
    defs = location_defs(location)
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = defined_asset_keys(defs)
    assert all(k.path[0] == location.name for k in keys), sorted(k.to_user_string() for k in keys)
    if keys:
        assert repo.get_implicit_global_asset_job_def() is not None


def test_no_asset_key_is_defined_by_two_locations(placeholder_env):
    owners: dict[AssetKey, str] = {}
    for location in LOCATIONS:
        for key in defined_asset_keys(location_defs(location)):
            assert key not in owners, f"{key.to_user_string()} defined by {owners[key]} and {location.name}"
            owners[key] = location.name


def warehouses_of(defs: Definitions) -> list:
    """Every warehouse resource a location wires: its own and its IO manager's."""
    found = [r for r in defs.resources.values() if isinstance(r, WarehouseResource)]
    found += [r.warehouse for r in defs.resources.values() if isinstance(r, PostgresPandasIOManager)]
    return found


@pytest.mark.parametrize("location", LOCATIONS, ids=location_ids)
def test_warehouse_is_configured_from_env_at_run_time(location, placeholder_env):
    """No connection value may be baked in at import time: each comes from a WAREHOUSE_* variable.
    (A location without a warehouse, like platform, has nothing to bake in.)"""
    defs = location_defs(location)
    warehouses = warehouses_of(defs)
    if "io_manager" in defs.resources and isinstance(defs.resources["io_manager"], PostgresPandasIOManager):
        # One warehouse per location: the IO manager's is the one its assets query too.
        assert all(w is defs.resources["io_manager"].warehouse for w in warehouses)
    for warehouse in warehouses:
        for field in ("host", "port", "dbname", "user", "password"):
            assert isinstance(getattr(warehouse, field), (EnvVar, IntEnvVar)), field
        resolved = warehouse.process_config_and_initialize()
        assert isinstance(resolved, WarehouseResource)
        assert (resolved.host, resolved.port, resolved.dbname, resolved.user, resolved.password) == (
            "warehouse.invalid", 6543, "placeholder_db", "placeholder_user", "placeholder-password"
        )  # fmt: skip


def test_ingestion_and_reporting_write_through_the_warehouse_io_manager(placeholder_env):
    for name in ("ingestion", "reporting"):
        assert isinstance(location_defs(name).resources["io_manager"], PostgresPandasIOManager), name
    reporting = location_defs("reporting").resources
    assert reporting["warehouse"] is reporting["io_manager"].warehouse


@pytest.mark.parametrize("location", LOCATIONS, ids=location_ids)
def test_dagster_cli_validates_location(location, tmp_path):
    """`dagster definitions validate` is the loader the deployment uses; it must exit 0."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "DAGSTER_"))},
        **deployed_env(),
        "DAGSTER_HOME": str(dagster_home),
    }
    result = subprocess.run(
        [str(DAGSTER_CLI), "definitions", "validate", "-m", location.definitions_module],
        cwd=tmp_path,  # keep the repo's .env (real passwords) out of the subprocess
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"Validation successful for code location {location.definitions_module}" in output


# --- cross-location contract ------------------------------------------------------------------


def test_ingestion_publishes_the_contract_keys():
    """Reporting depends on these keys; ingestion must materialize them, partitioned by day."""
    defs = location_defs("ingestion")
    assert {FLIGHTS, AIRLINES} <= defined_asset_keys(defs)
    assert all(k.path[0] == INGESTION_PREFIX for k in defined_asset_keys(defs))
    flights_spec = next(s for s in defs.resolve_all_asset_specs() if s.key == FLIGHTS)
    assert flights_spec.metadata[PARTITION_EXPR_METADATA] == "flight_date"


def test_reporting_depends_on_but_does_not_define_ingestion_assets():
    """A stub or copy of ingestion/flights in reporting would be a second definition of the same
    table in the workspace; reporting must only name it as a dependency."""
    reporting = location_defs("reporting")
    ingestion = location_defs("ingestion")
    defined = defined_asset_keys(reporting)
    assert defined
    assert all(k.path[0] == REPORTING_PREFIX for k in defined), sorted(map(str, defined))
    assert FLIGHTS not in defined
    # Nothing passed to Definitions(assets=...) carries an ingestion key, external or not.
    passed_keys = {key for a in reporting.assets or [] for key in getattr(a, "keys", [getattr(a, "key", None)])}
    assert not {k for k in passed_keys if k is not None and k.path[0] == INGESTION_PREFIX}
    assert not defined & defined_asset_keys(ingestion)

    graph = reporting.resolve_asset_graph()
    daily = {AssetKey([REPORTING_PREFIX, name]) for name in REPORTING_DAILY_ASSETS}
    assert daily <= defined
    ingestion_flights = next(s for s in ingestion.resolve_all_asset_specs() if s.key == FLIGHTS)
    for key in daily:
        assert FLIGHTS in graph.get(key).parent_keys
        # Same partitions as upstream, so a reporting day maps 1:1 onto an ingestion day.
        assert graph.get(key).partitions_def == ingestion_flights.partitions_def


# --- snapshot of asset specs ------------------------------------------------------------------


def _partitions_summary(partitions_def) -> dict | None:
    if partitions_def is None:
        return None
    summary: dict = {"type": type(partitions_def).__name__, "description": str(partitions_def)}
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        summary.update(
            start=partitions_def.start.isoformat(),
            end=partitions_def.end.isoformat() if partitions_def.end else None,
            timezone=partitions_def.timezone,
            cron_schedule=partitions_def.cron_schedule,
            fmt=partitions_def.fmt,
        )
    return summary


def _automation_label(condition) -> str | None:
    if condition is None:
        return None
    return condition.get_label() or getattr(condition, "name", None) or type(condition).__name__


def asset_summary(defs: Definitions) -> list[dict]:
    defined = defined_asset_keys(defs)
    specs = sorted(
        (s for s in defs.resolve_all_asset_specs() if s.key in defined),
        key=lambda s: s.key.to_user_string(),
    )
    return [
        {
            "key": spec.key.to_user_string(),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "group": spec.group_name,
            "partitions": _partitions_summary(spec.partitions_def),
            "metadata_keys": sorted(spec.metadata),
            "partition_expr": spec.metadata.get(PARTITION_EXPR_METADATA),
            "kinds": sorted(spec.kinds),
            "automation_condition": _automation_label(spec.automation_condition),
        }
        for spec in specs
    ]


def snapshot_path(location: Location) -> Path:
    return REPO / location.path / SNAPSHOT_FILE


@pytest.mark.parametrize("location", LOCATIONS, ids=location_ids)
def test_asset_specs_match_snapshot(location, placeholder_env):
    """Keys, deps, partitions and groups are the contract other locations and the UI rely on;
    changing them must be a deliberate snapshot update (UPDATE_SNAPSHOTS=1)."""
    actual = json.dumps(asset_summary(location_defs(location)), indent=2, sort_keys=True) + "\n"
    path = snapshot_path(location)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.is_file():
        pytest.fail(
            f"code location {location.name!r} ({location.path}) has no asset snapshot at "
            f"{path.relative_to(REPO)}: write it with\n    {snapshot_command(location.name)}\n"
            "then review and commit the file.",
            pytrace=False,
        )
    expected = path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path.name} (committed)",
                tofile=f"{location.name} (current definitions)",
            )
        )
        pytest.fail(
            f"asset specs of {location.name} differ from {path}; if intended, rerun with\n    "
            f"{snapshot_command(location.name)}\nand commit the file.\n{diff}",
            pytrace=False,
        )

