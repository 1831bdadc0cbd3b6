"""platform_core.locations: the registry (dg.toml and each project's pyproject.toml) every other
tool reads, the errors that name the file at fault, and the rules for a new location's name."""

from pathlib import Path

import pytest

from platform_core import locations
from platform_core.locations import Location, LocationError, check_new_name, load, names, repo_root
from tests.deploy.platform_core.repo_copies import REPO, add_project, copy_registry, project, snapshot

@pytest.fixture
def copy(tmp_path) -> Path:
    return copy_registry(tmp_path)


# --- the real registry -------------------------------------------------------------------------


def test_the_real_registry_lists_platform_ingestion_reporting_in_order():
    assert names(REPO) == ["platform", "ingestion", "reporting"]
    assert [location.path for location in load(REPO)] == [
        Path("code_locations/platform"), Path("code_locations/ingestion"), Path("code_locations/reporting")]


def test_the_real_registry_reads_each_projects_module_package_env_and_volumes():
    by_name = {location.name: location for location in load(REPO)}
    platform, ingestion, reporting = by_name["platform"], by_name["ingestion"], by_name["reporting"]

    assert (platform.module, platform.package, platform.definitions_module) == (
        "platform_ops", "platform-ops", "platform_ops.definitions")
    assert platform.env == {"RUN_RETENTION_DAYS": "${RUN_RETENTION_DAYS:-}"}
    assert platform.code_server_env == {"ALERT_WEBHOOK_URL": "${ALERT_WEBHOOK_URL:-}"}
    assert (platform.volumes, platform.services) == ((), {})

    assert (ingestion.module, ingestion.package) == ("ingestion", "ingestion")
    assert ingestion.env == {"LANDING_ZONE_DIR": "/opt/dagster/landing"}
    assert ingestion.code_server_env == {}
    assert ingestion.volumes == ("landing:/opt/dagster/landing:ro",)
    assert list(ingestion.services) == ["replay"]
    assert ingestion.services["replay"]["command"] == ["python", "-m", "ingestion.replay"]

    assert (reporting.module, reporting.package) == ("reporting", "reporting")
    assert reporting.env == {"REPORTS_DIR": "/opt/dagster/reports"}
    assert reporting.volumes == ("reports:/opt/dagster/reports",)
    assert reporting.services == {}


def test_every_registered_module_has_a_definitions_file():
    for location in load(REPO):
        assert (REPO / location.path / "src" / location.module / "definitions.py").is_file(), location


def test_the_service_name_is_the_location_name_as_a_host_name():
    location = Location(name="acme_sales", path=Path("code_locations/acme_sales"), module="acme_sales", package="acme_sales")
    assert location.service == "acme-sales"
    assert location.definitions_module == "acme_sales.definitions"


def test_repo_root_searches_upwards_from_start(copy, tmp_path_factory):
    nested = copy / "code_locations" / "ingestion"
    assert repo_root(nested) == copy
    assert repo_root(copy / "dg.toml") == copy
    outside = tmp_path_factory.mktemp("no-registry")
    with pytest.raises(LocationError, match="no dg.toml found"):
        repo_root(outside)


def test_load_defaults_to_the_checkout():
    assert repo_root() == REPO
    assert names() == names(REPO)


# --- a malformed registry or project names the file at fault -----------------------------------


def test_malformed_dg_toml(copy):
    (copy / "dg.toml").write_text('[workspace\nprojects = "oops"\n')
    with pytest.raises(LocationError, match="is not valid TOML") as raised:
        load(copy)
    assert str(copy / "dg.toml") in str(raised.value)


def test_missing_dg_toml(copy):
    (copy / "dg.toml").unlink()
    with pytest.raises(LocationError, match="does not exist") as raised:
        load(copy)
    assert str(copy / "dg.toml") in str(raised.value)


@pytest.mark.parametrize("entry", ['[[workspace.projects]]\nfolder = "code_locations/x"\n',
                                   '[[workspace.projects]]\npath = 3\n'])
def test_a_registry_entry_without_a_path_string(copy, entry):
    with (copy / "dg.toml").open("a") as registry:
        registry.write("\n" + entry)
    with pytest.raises(LocationError, match="needs a path") as raised:
        load(copy)
    assert str(copy / "dg.toml") in str(raised.value)


def test_a_registered_folder_without_pyproject(copy):
    with (copy / "dg.toml").open("a") as registry:
        registry.write('\n[[workspace.projects]]\npath = "code_locations/ghost"\n')
    with pytest.raises(LocationError, match="does not exist") as raised:
        load(copy)
    assert str(copy / "code_locations" / "ghost" / "pyproject.toml") in str(raised.value)


def test_a_malformed_pyproject(copy):
    pyproject = copy / "code_locations" / "reporting" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.dg\n")
    with pytest.raises(LocationError, match="is not valid TOML") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


@pytest.mark.parametrize("text", [
    '[project]\nname = "sales"\n',  # no [tool.dg] at all
    '[project]\nname = "sales"\n[tool.dg]\ndirectory_type = "project"\n',  # no [tool.dg.project]
    '[project]\nname = "sales"\n[tool.dg.project]\ncode_location_name = "sales"\n',  # no root_module
])
def test_a_project_without_tool_dg_project_root_module(copy, text):
    pyproject = add_project(copy, "code_locations/sales", text)
    with pytest.raises(LocationError, match=r"has no \[tool.dg.project\] root_module") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


def test_the_location_name_falls_back_to_the_project_name(copy):
    add_project(copy, "code_locations/sales", '[project]\nname = "sales"\n[tool.dg.project]\nroot_module = "sales"\n')
    assert names(copy)[-1] == "sales"


@pytest.mark.parametrize("bad", ["Sales", "sales-eu", "1sales", "a" * 31])
def test_a_project_whose_location_name_is_not_an_identifier(copy, bad):
    pyproject = add_project(copy, "code_locations/sales", project(name=bad, module="sales", package="sales"))
    with pytest.raises(LocationError, match="must be a lowercase identifier") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


def test_two_projects_with_the_same_location_name(copy):
    add_project(copy, "code_locations/ingestion_copy", project(name="ingestion", module="ingestion_copy"))
    with pytest.raises(LocationError, match="two projects are both named 'ingestion'") as raised:
        load(copy)
    assert str(copy / "dg.toml") in str(raised.value)


@pytest.mark.parametrize("deploy, table", [
    ('env = ["A=1"]\n', "env"),
    ('env = { A = 1 }\n', "env"),
    ('env = { A = true }\n', "env"),
    ('code_server_env = "A=1"\n', "code_server_env"),
    ('code_server_env = { A = { nested = "x" } }\n', "code_server_env"),
])
def test_env_tables_must_map_names_to_strings(copy, deploy, table):
    pyproject = add_project(copy, "code_locations/sales", project(deploy="\n[tool.flights-platform.location]\n" + deploy))
    with pytest.raises(LocationError, match=f"{table} must map names to strings") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


@pytest.mark.parametrize("deploy", [
    'volumes = "data:/opt/dagster/data"\n',  # not a list
    'volumes = [1]\n',  # not strings
    'volumes = ["data"]\n',  # no target
    'volumes = ["data:/a:ro:extra"]\n',  # too many parts
    'volumes = { data = "/opt/dagster/data" }\n',
])
def test_volumes_must_be_volume_path_strings(copy, deploy):
    pyproject = add_project(copy, "code_locations/sales", project(deploy="\n[tool.flights-platform.location]\n" + deploy))
    with pytest.raises(LocationError, match="volumes must be 'volume:/path") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


def test_services_must_be_tables(copy):
    pyproject = add_project(copy, "code_locations/sales", project(
        deploy='\n[tool.flights-platform.location]\nservices = { worker = "python -m x" }\n'))
    with pytest.raises(LocationError, match="must be tables of compose keys") as raised:
        load(copy)
    assert str(pyproject) in str(raised.value)


def test_a_well_formed_new_project_loads_with_its_deploy_table(copy):
    add_project(copy, "code_locations/sales", project(package="acme-sales", deploy=(
        "\n[tool.flights-platform.location]\n"
        'env = { SALES_DIR = "/opt/dagster/sales" }\n'
        'code_server_env = { TOKEN = "${SALES_TOKEN:-}" }\n'
        'volumes = ["sales:/opt/dagster/sales", "shared:/opt/dagster/shared:ro"]\n')))
    sales = load(copy)[-1]
    assert sales == Location(name="sales", path=Path("code_locations/sales"), module="sales", package="acme-sales",
                             env={"SALES_DIR": "/opt/dagster/sales"}, code_server_env={"TOKEN": "${SALES_TOKEN:-}"},
                             volumes=("sales:/opt/dagster/sales", "shared:/opt/dagster/shared:ro"))


# --- a new location's name ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sales", "sales_2", "s", "acme_sales", "a" * 30])
def test_valid_new_names(copy, name):
    before = snapshot(copy)
    check_new_name(name, copy)  # no error
    assert snapshot(copy) == before


REFUSED = {
    "uppercase": ("Sales", "is not valid: use a lowercase identifier"),
    "leading digit": ("2sales", "is not valid: use a lowercase identifier"),
    "hyphen": ("sales-eu", "is not valid: use a lowercase identifier"),
    "dot": ("sales.eu", "is not valid: use a lowercase identifier"),
    "too long": ("a" * 31, "at most 30 characters"),
    "empty": ("", "is not valid"),
    "leading underscore": ("_sales", "is not valid"),
    "reserved postgres": ("postgres", "is reserved"),
    "reserved webserver": ("webserver", "is reserved"),
    "reserved shared": ("shared", "is reserved"),
    "reserved dagster": ("dagster", "is reserved"),
    "reserved tests": ("tests", "is reserved"),
    "keyword": ("class", "is reserved"),
    "stdlib os": ("os", "is reserved"),
    "stdlib json": ("json", "is reserved"),
    "registered": ("ingestion", "location 'ingestion' already exists"),
    "registered platform": ("platform", "is reserved"),  # the stdlib's platform module, and registered
    # Compose services a location's service would collide with (its name with "_" as "-").
    "template service": ("code_location", "is reserved"),
    "companion template": ("location_service", "is reserved"),
    "barrier service": ("code_locations_ready", "is reserved"),
    # Distributions the workspace already locks: the new project would shadow them.
    "locked package": ("pandas", "is taken by the package 'pandas' in uv.lock"),
    "locked package by normalized name": ("dagster_webserver", "is taken by the package 'dagster-webserver' in uv.lock"),
    "the workspace root": ("flights_platform", "is taken by the package 'flights-platform' in uv.lock"),
}


@pytest.mark.parametrize("name, message", REFUSED.values(), ids=REFUSED.keys())
def test_refused_new_names(copy, name, message):
    before = snapshot(copy)
    with pytest.raises(LocationError, match="^location|^code_locations/") as raised:
        check_new_name(name, copy)
    assert message in str(raised.value)
    assert repr(name) in str(raised.value) or name in str(raised.value)
    assert snapshot(copy) == before


def test_the_lowercase_rule_says_what_is_allowed(copy):
    with pytest.raises(LocationError) as raised:
        check_new_name("Bad-Name", copy)
    assert str(raised.value) == (
        "location name 'Bad-Name' is not valid: use a lowercase identifier (a-z, 0-9, _; starting with a "
        "letter; at most 30 characters), e.g. sales or sales_reports")


def test_an_existing_unregistered_folder_is_refused(copy):
    (copy / "code_locations" / "sales").mkdir()
    (copy / "code_locations" / "sales" / "notes.txt").write_text("someone's work")
    before = snapshot(copy)
    with pytest.raises(LocationError, match="code_locations/sales already exists but is not registered"):
        check_new_name("sales", copy)
    assert snapshot(copy) == before


def test_a_module_installed_in_the_venv_is_refused(copy):
    """Top-level modules whose distribution is named otherwise (pyyaml's yaml)."""
    site_packages = copy / ".venv" / "lib" / "python3.11" / "site-packages"
    (site_packages / "yaml").mkdir(parents=True)
    (site_packages / "fancymod.py").write_text("")
    for name in ("yaml", "fancymod"):
        with pytest.raises(LocationError, match=f"is taken by the module '{name}' installed in .venv"):
            check_new_name(name, copy)
    check_new_name("sales", copy)


def test_a_leftover_lock_entry_of_the_same_location_is_not_a_conflict(copy):
    """After `make location-remove` the lock may still list the removed project until `uv lock`."""
    lock = copy / "uv.lock"
    lock.write_text(lock.read_text() + '\n[[package]]\nname = "sales"\nversion = "0.1.0"\n'
                    'source = { editable = "code_locations/sales" }\n')
    check_new_name("sales", copy)
    lock.write_text(lock.read_text() + '\n[[package]]\nname = "sales-eu"\nversion = "1.0"\n'
                    'source = { registry = "https://pypi.org/simple" }\n')
    with pytest.raises(LocationError, match="is taken by the package 'sales-eu'"):
        check_new_name("sales_eu", copy)


def test_reserved_names_cover_every_service_of_the_root_compose_file():
    """A location named like one of docker-compose.yml's services (with "_" for "-") would collide."""
    from platform_core.locations_compose import READY_SERVICE, _root_services

    services = _root_services((REPO / "docker-compose.yml").read_text()) | {READY_SERVICE}
    assert {"postgres", "webserver", "daemon", "code-location", "location-service"} <= services
    for service in services:
        assert service.replace("-", "_") in locations.RESERVED_NAMES, service
