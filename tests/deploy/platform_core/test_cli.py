"""platform_core.cli, as the Makefile runs it: `python -m platform_core.cli …` in a copy of the
repository (its own platform_core first on the path, so the copy's registry is the one changed).
`new`, `names` and `compose` need only the standard library (run here with -S: no site-packages);
`remove` loads the locations' definitions, so it runs with the venv's packages."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from platform_core.locations import registered_paths
from tests.deploy.platform_core.repo_copies import (
    REPO, cli, commit_all, copy_platform_core, copy_registry, copy_sources, git, load_compose, snapshot)

REGISTERED = ["platform", "ingestion", "reporting"]


@pytest.fixture
def copy(tmp_path) -> Path:
    root = copy_registry(tmp_path)
    copy_platform_core(root)
    return root


@pytest.fixture(scope="module")
def committed_sources(tmp_path_factory) -> Path:
    """A git checkout of the registry and every location's sources (module-scoped: the tests using
    it change nothing, which each checks)."""
    root = copy_sources(tmp_path_factory.mktemp("repo"))
    commit_all(root)
    # The CLI must act on this copy, never on the checkout its venv installs from.
    where = subprocess.run([sys.executable, "-c", "from platform_core.locations import repo_root; print(repo_root())"],
                           cwd=root, env=cli_env(root), capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == root
    return root


def cli_env(root: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(root / "deploy" / "platform_core" / "src")}


def test_the_cli_acts_on_the_copy(copy):
    result = cli(copy, "names")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == REGISTERED


def test_new_with_a_bad_name_changes_nothing(copy):
    before = snapshot(copy)
    result = cli(copy, "new", "Bad-Name")
    assert result.returncode == 1
    assert result.stderr.startswith("error: location name 'Bad-Name' is not valid: use a lowercase identifier")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert (copy / "dg.toml").read_bytes() == (REPO / "dg.toml").read_bytes()
    assert not (copy / "code_locations" / "Bad-Name").exists()
    assert snapshot(copy) == before


@pytest.mark.parametrize("name, message", [
    ("postgres", "is reserved"),
    ("json", "is reserved"),
    ("class", "is reserved"),
    ("ingestion", "location 'ingestion' already exists"),
    ("sales-eu", "is not valid"),
    ("", "is not valid"),
    ("code_location", "is reserved"),
    ("pandas", "is taken by the package 'pandas' in uv.lock"),
])
def test_new_refuses_with_a_clear_message(copy, name, message):
    before = snapshot(copy)
    result = cli(copy, "new", name)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert snapshot(copy) == before


def test_new_refuses_an_existing_unregistered_folder(copy):
    (copy / "code_locations" / "sales").mkdir()
    before = snapshot(copy)
    result = cli(copy, "new", "sales")
    assert result.returncode == 1
    assert "error: code_locations/sales already exists but is not registered" in result.stderr
    assert snapshot(copy) == before


def test_new_scaffolds_and_registers_with_the_standard_library_only(copy):
    result = cli(copy, "new", "sales")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created code_locations/sales and registered it in dg.toml"
    assert registered_paths(copy)[-1] == "code_locations/sales"
    assert (copy / "code_locations" / "sales" / "src" / "sales" / "definitions.py").is_file()
    assert cli(copy, "names").stdout.split() == [*REGISTERED, "sales"]


def test_compose_writes_the_copys_file(copy):
    result = cli(copy, "compose")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote compose.locations.yaml"
    document = load_compose((copy / "compose.locations.yaml").read_text())
    assert {"platform", "ingestion", "reporting", "code-locations-ready"} <= set(document["services"])


def test_compose_reports_a_broken_registry_as_an_error(copy):
    (copy / "dg.toml").write_text("[workspace\n")
    result = cli(copy, "compose")
    assert result.returncode == 1
    assert re.match(r"error: .*dg\.toml is not valid TOML", result.stderr)
    assert not (copy / "compose.locations.yaml").exists()


@pytest.mark.parametrize("args, code", [([], 2), (["--help"], 0), (["new"], 2), (["new", "a", "b"], 2),
                                        (["remove", "sales", "--yes"], 2), (["frobnicate"], 2)])
def test_usage(copy, args, code):
    before = snapshot(copy)
    result = cli(copy, *args)
    assert result.returncode == code
    assert "new NAME" in result.stdout + result.stderr
    assert snapshot(copy) == before


# --- remove: needs the venv (it loads every location's definitions) -----------------------------


def test_remove_refuses_a_location_others_depend_on(committed_sources):
    root = committed_sources
    before = snapshot(root)
    result = cli(root, "remove", "ingestion", stdlib_only=False)
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: refusing to remove 'ingestion': other locations depend on its assets by key")
    assert "reporting: reporting/daily_delay_summary <- ingestion/flights" in error
    assert (root / "dg.toml").read_bytes() == (REPO / "dg.toml").read_bytes()
    assert (root / "code_locations" / "ingestion" / "pyproject.toml").is_file()
    assert snapshot(root) == before
    assert git(root, "status", "--porcelain") == ""


def test_remove_with_force_still_refuses_dependants(committed_sources):
    root = committed_sources
    before = snapshot(root)
    result = cli(root, "remove", "ingestion", "--force", stdlib_only=False)
    assert result.returncode == 1
    assert "reporting: reporting/" in result.stderr
    assert snapshot(root) == before


def test_remove_of_an_unknown_location(committed_sources):
    root = committed_sources
    before = snapshot(root)
    result = cli(root, "remove", "sales", stdlib_only=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: no location named 'sales' in dg.toml; registered: platform, ingestion, reporting")
    assert snapshot(root) == before


def test_remove_of_a_location_nobody_depends_on(tmp_path):
    root = copy_sources(tmp_path)
    commit_all(root)
    assert subprocess.run([sys.executable, "-c", "from platform_core.locations import repo_root; print(repo_root())"],
                          cwd=root, env=cli_env(root), capture_output=True, text=True).stdout.strip() == str(root)
    result = cli(root, "remove", "reporting", stdlib_only=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed code_locations/reporting and its entry in dg.toml"
    assert registered_paths(root) == ["code_locations/platform", "code_locations/ingestion"]
    assert not (root / "code_locations" / "reporting").exists()
    assert (REPO / "code_locations" / "reporting" / "pyproject.toml").is_file()  # the checkout is untouched
    assert (REPO / "dg.toml").read_text().count("[[workspace.projects]]") == 3
