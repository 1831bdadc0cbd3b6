"""The instance config template (dagster.yaml) renders, is valid for this Dagster version, and
forwards to run containers every variable they need to load the instance."""

import copy
import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from dagster._config import Shape, process_config
from dagster._core.instance.config import dagster_instance_config, dagster_instance_config_schema
from dagster._serdes import class_from_code_pointer
from dagster._serdes.config_class import ConfigurableClassData

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "dagster.yaml"
RENDER_SCRIPT = REPO_ROOT / "deploy" / "docker" / "render_dagster_yaml.py"

# What compose passes (PLATFORM_PROJECT always; the rest as "" unless .env sets them).
SAMPLE_ENV = {
    "PLATFORM_PROJECT": "flights",
    "DAGSTER_MAX_CONCURRENT_RUNS": "",
    "DAGSTER_MAX_CONCURRENT_BACKFILL_RUNS": "",
    "DAGSTER_MAX_CONCURRENT_AUTOMATION_RUNS": "3",
}
# What the instance resolves through {env: NAME} when it starts.
INSTANCE_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "sample-secret-password",
    "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",
}


def load_render_module():
    from platform_core import settings  # the script declares its settings; a reload re-declares them

    spec = importlib.util.spec_from_file_location("render_dagster_yaml", RENDER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def render():
    return load_render_module().render


@pytest.fixture(scope="module")
def template() -> str:
    return TEMPLATE_PATH.read_text()


@pytest.fixture(scope="module")
def rendered(render, template) -> str:
    return render(template, dict(SAMPLE_ENV))


@pytest.fixture(scope="module")
def config(rendered) -> dict:
    return yaml.safe_load(rendered)


@pytest.fixture
def instance_env(monkeypatch):
    for name, value in INSTANCE_ENV.items():
        monkeypatch.setenv(name, value)


def env_refs(node) -> set[str]:
    """Names of every `{env: NAME}` reference below node."""
    if isinstance(node, dict):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return {node["env"]}
        return set().union(*(env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(env_refs(v) for v in node)) if node else set()
    return set()


def run_launcher_env_names(cfg: dict) -> set[str]:
    # Entries are NAME (value taken from the launching process) or NAME=value.
    return {entry.split("=", 1)[0] for entry in cfg["run_launcher"]["config"].get("env_vars", [])}


def env_refs_not_forwarded(cfg: dict) -> list[str]:
    """{env: NAME} references a run container would fail to resolve: the launcher does not pass
    them in. Run workers rebuild the instance from this config, storage first."""
    without_launcher_list = {k: v for k, v in cfg.items() if k != "run_launcher"}
    needed = env_refs(without_launcher_list) | env_refs(cfg["run_launcher"].get("config", {}))
    return sorted(needed - run_launcher_env_names(cfg))


# --- rendering --------------------------------------------------------------------------------


def test_render_substitutes_every_placeholder(rendered):
    """Dagster rejects ${...} where it needs an int; nothing of that form may survive."""
    assert "${" not in rendered
    assert re.search(r"max_concurrent_runs:\s*6\b", rendered)


def test_render_keeps_secrets_as_env_references(render, template):
    """Secrets stay {env: ...}, so they never land in the rendered file or the run's instance ref."""
    rendered = render(template, {**SAMPLE_ENV, **INSTANCE_ENV})
    assert "{env: DAGSTER_PG_PASSWORD}" in rendered
    assert INSTANCE_ENV["DAGSTER_PG_PASSWORD"] not in rendered


def test_blank_settings_take_the_declared_defaults(config):
    limits = {entry["key"]: entry["limit"] for entry in config["run_coordinator"]["config"]["tag_concurrency_limits"]}
    assert config["run_coordinator"]["config"]["max_concurrent_runs"] == 6
    assert limits == {"dagster/backfill": 4, "dagster/from_automation_condition": 3}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("DAGSTER_MAX_CONCURRENT_RUNS", "many", "whole number"),
    ("DAGSTER_MAX_CONCURRENT_RUNS", "0", ">= 1"),
    ("RUN_MEM_LIMIT", "lots", "memory size"),
    ("RUN_CPUS", "-1", ">= 0.01"),
    ("RUN_PIDS_LIMIT", "3", ">= 16"),
    ("PLATFORM_PROJECT", "", "PLATFORM_PROJECT"),
])
def test_render_refuses_a_bad_value_naming_the_variable(render, template, name, value, expected):
    """A bad setting stops the container with the variable's name, not start misconfigured."""
    module = load_render_module()
    with pytest.raises(module.settings.SettingError) as excinfo:
        render(template, {**SAMPLE_ENV, name: value})
    assert name in str(excinfo.value) and expected in str(excinfo.value)


def test_every_placeholder_is_declared(template):
    """Each ${NAME} of the template has a declared setting behind it in render_dagster_yaml.py."""
    module = load_render_module()
    assert set(module.PLACEHOLDER.findall(template)) == set(module.values(SAMPLE_ENV))


def test_the_run_contract_is_rendered(config):
    """What every run container gets: network, labels, limits, no capabilities (dagster.yaml)."""
    launcher = config["run_launcher"]["config"]
    kwargs = launcher["container_kwargs"]
    assert launcher["networks"] == ["flights_runs"]
    assert kwargs["labels"]["io.flights-platform.project"] == "flights"
    assert (kwargs["mem_limit"], kwargs["nano_cpus"], kwargs["pids_limit"]) == ("1g", 1_000_000_000, 512)
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["mounts"] == [{"Type": "volume", "Source": "flights_compute_logs", "Target": "/opt/dagster/compute_logs"}]
    assert {"WAREHOUSE_PASSWORD", "DAGSTER_PG_PASSWORD"} <= set(launcher["env_vars"])


# --- validity for this Dagster version ----------------------------------------------------------


def test_rendered_config_is_a_valid_instance_config(rendered, tmp_path, instance_env):
    """Same loader the webserver and daemon use; an unknown key or wrong type fails here, not at deploy."""
    (tmp_path / "dagster.yaml").write_text(rendered)
    validated, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert validated["run_coordinator"]["config"]["max_concurrent_runs"] == 6

    resolved = process_config(Shape(dagster_instance_config_schema()), yaml.safe_load(rendered))
    assert resolved.success, resolved.errors
    pg = resolved.value["storage"]["postgres"]["postgres_db"]
    assert pg["hostname"] == INSTANCE_ENV["DAGSTER_PG_HOST"]
    assert pg["port"] == int(INSTANCE_ENV["DAGSTER_PG_PORT"])
    assert pg["password"] == INSTANCE_ENV["DAGSTER_PG_PASSWORD"]


@pytest.mark.parametrize("section", ["run_coordinator", "run_launcher", "compute_logs"])
def test_pluggable_class_accepts_its_config(config, section, instance_env):
    """The instance schema lets a class's config through unchecked; check it against the class."""
    entry = config[section]
    # ConfigurableClassData is how the instance resolves module names (dagster.core -> dagster._core).
    pointer = ConfigurableClassData(entry["module"], entry["class"], "{}")
    klass = class_from_code_pointer(pointer.module_name, pointer.class_name)
    result = process_config(klass.config_type(), entry.get("config") or {})
    assert result.success, [e.message for e in result.errors]


# --- deployment guards ------------------------------------------------------------------------


def test_storage_env_refs_are_forwarded_to_run_containers(config):
    """Run containers load the instance from this config; every {env: NAME} in it must be in
    run_launcher.config.env_vars or runs die before their first step."""
    storage_refs = env_refs(config["storage"])
    assert storage_refs, "expected the storage section to read its connection from {env: ...}"
    assert storage_refs <= run_launcher_env_names(config)
    assert env_refs_not_forwarded(config) == []


@pytest.mark.parametrize("name", sorted({"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}))
def test_forwarding_guard_catches_a_removed_variable(config, name):
    """The guard above must actually fail when a storage variable is dropped from env_vars."""
    broken = copy.deepcopy(config)
    broken["run_launcher"]["config"]["env_vars"].remove(name)
    assert env_refs_not_forwarded(broken) == [name]


def test_storage_and_operational_settings(config):
    """Bare postgresql:// picks psycopg 3 (not installed); monitoring/retries keep runs from hanging."""
    pg = config["storage"]["postgres"]["postgres_db"]
    assert pg["scheme"] == "postgresql+psycopg2"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_retries"]["enabled"] is True
    assert config["telemetry"]["enabled"] is False
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
