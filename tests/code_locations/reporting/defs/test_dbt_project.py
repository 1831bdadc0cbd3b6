"""The dbt project inside the reporting package: credentials only through env_var() of the
warehouse's own variables, nothing fetched from a hub, and a manifest that a deployed package
must bring (prepared at image build) while a source checkout re-parses when a model changes."""

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from dagster_dbt.errors import DagsterDbtManifestNotFoundError

from flights_shared.warehouse import WAREHOUSE_ENV
from reporting.defs import dbt_project
from reporting.defs.dbt_project import DBT_PROJECT, DBT_PROJECT_DIR, DBT_VARS, PARSE_TARGET, RUN_TARGET

ENV_VAR = re.compile(r"""^\{\{\s*env_var\('([A-Z_]+)'\)\s*(\|\s*as_number\s*)?\}\}$""")
PROFILE_FIELDS = {"host": "WAREHOUSE_HOST", "port": "WAREHOUSE_PORT", "dbname": "WAREHOUSE_DB",
                  "user": "WAREHOUSE_USER", "password": "WAREHOUSE_PASSWORD"}  # fmt: skip


def profile() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())[DBT_PROJECT.name]


def test_run_target_reads_each_warehouse_setting_from_its_variable_without_default():
    outputs = profile()["outputs"]
    run = outputs[RUN_TARGET]
    found = {}
    for field, variable in PROFILE_FIELDS.items():
        match = ENV_VAR.match(str(run[field]))
        assert match, f"{field}: {run[field]!r} is not {{{{ env_var('{variable}') }}}}"
        found[field] = match.group(1)
    assert found == PROFILE_FIELDS
    # The very variables the warehouse resource reads (flights_shared.warehouse), no others.
    assert set(found.values()) == set(WAREHOUSE_ENV)
    # Models land in the schema their keys name; the parse target describes the same tables.
    assert run["schema"] == outputs[PARSE_TARGET]["schema"] == "reporting"
    assert "env_var" not in yaml.safe_dump(outputs[PARSE_TARGET])


def test_nothing_is_fetched_from_the_dbt_hub_and_no_usage_is_reported():
    assert not (DBT_PROJECT_DIR / "packages.yml").exists()
    assert not (DBT_PROJECT_DIR / "dependencies.yml").exists()
    flags = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["flags"]
    assert flags == {"send_anonymous_usage_stats": False, "version_check": False}


def test_shared_vars_are_defined_once_in_the_project():
    from reporting.defs.assets.daily import ON_TIME_MINUTES

    assert ON_TIME_MINUTES == DBT_VARS["on_time_minutes"] == 15
    sql = "\n".join(p.read_text() for p in (DBT_PROJECT_DIR / "models").rglob("*.sql"))
    assert "var('on_time_minutes')" in sql and "15" not in sql


def _copy_package(tmp_path: Path, source_checkout: bool, with_manifest: bool = False) -> Path:
    """reporting/dbt and reporting/defs/dbt_project.py laid out as installed (site-packages) or
    as a source checkout (with the location's pyproject.toml two levels above the package)."""
    root = tmp_path / ("checkout" if source_checkout else "site-packages")
    package = root / "src" / "reporting" if source_checkout else root / "reporting"
    shutil.copytree(DBT_PROJECT_DIR, package / "dbt", ignore=shutil.ignore_patterns("target", "logs"))
    if with_manifest:
        (package / "dbt" / "target").mkdir()
        shutil.copy2(DBT_PROJECT.manifest_path, package / "dbt" / "target" / "manifest.json")
    (package / "defs").mkdir(parents=True)
    shutil.copy(dbt_project.__file__, package / "defs" / "dbt_project.py")
    if source_checkout:
        (root / "pyproject.toml").write_text("[project]\nname = 'reporting'\n")
    return package / "defs" / "dbt_project.py"


def _load(module_path: Path):
    spec = importlib.util.spec_from_file_location(f"copied_dbt_project_{abs(hash(module_path))}", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_package_without_manifest_fails_naming_the_build_step(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    module = _load(_copy_package(tmp_path, source_checkout=False))
    with pytest.raises(DagsterDbtManifestNotFoundError, match="prepare-and-package"):
        module.ensure_manifest()
    assert not module.DBT_PROJECT.manifest_path.exists()  # nothing was parsed at load


def test_source_checkout_parses_a_missing_manifest_without_warehouse_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    for name in WAREHOUSE_ENV:  # parsing must not need the warehouse settings
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    module = _load(_copy_package(tmp_path, source_checkout=True))
    assert not module.DBT_PROJECT.manifest_path.exists()
    manifest = module.ensure_manifest()
    nodes = json.loads(manifest.read_text())["nodes"]
    assert {n["name"] for n in nodes.values() if n["resource_type"] == "model"} >= {"daily_delay_summary"}


def test_source_checkout_sees_a_model_edited_after_the_last_parse(tmp_path):
    module = _load(_copy_package(tmp_path, source_checkout=True, with_manifest=True))
    assert not module._manifest_is_stale()
    built = module.DBT_PROJECT.manifest_path.stat().st_mtime_ns
    model = next((module.DBT_PROJECT_DIR / "models").rglob("daily_delay_summary.sql"))
    os.utime(model, ns=(built + 10**9, built + 10**9))
    assert module._manifest_is_stale()
