"""platform_core.location_scaffold: `make location NAME=…` copies the template into
code_locations/<name> and adds one dg.toml entry; `make location-remove NAME=…` takes both away
again, unless another location depends on it or git does not hold the folder's work. Every test
works on a copy of the registry and the template."""

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from platform_core.location_scaffold import PLACEHOLDER_NAME, PLACEHOLDER_START, new, remove
from platform_core.locations import LocationError, load, names, registered_paths
from platform_core.locations_compose import render
from tests.deploy.platform_core.repo_copies import REPO, commit_all, copy_registry, git, load_compose, snapshot

REGISTERED = ["platform", "ingestion", "reporting"]


@pytest.fixture
def copy(tmp_path) -> Path:
    return copy_registry(tmp_path)


def files_under(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.rglob("*")) if path.is_file()]


# --- new ---------------------------------------------------------------------------------------


def test_new_copies_the_template_with_no_placeholder_left(copy):
    folder = new("sales", copy)
    assert folder == copy / "code_locations" / "sales"
    template_files = files_under(copy / "deploy" / "location_template")
    created = files_under(folder)
    assert len(created) == len(template_files) > 0
    for path in created:
        relative = path.relative_to(copy).as_posix()
        assert PLACEHOLDER_NAME not in relative and PLACEHOLDER_START not in relative
        text = path.read_text()
        assert "__LOCATION__" not in text, relative
        assert "__START_DATE__" not in text, relative
    assert (folder / "src" / "sales" / "definitions.py").is_file()
    assert "from sales.defs.assets import warehouse_size" in (folder / "src" / "sales" / "definitions.py").read_text()


def test_new_names_the_project_module_and_location(copy):
    folder = new("sales", copy)
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "sales"
    assert pyproject["tool"]["dg"]["project"] == {"root_module": "sales", "code_location_name": "sales"}
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/sales"]


def test_new_starts_the_partitions_a_month_back(copy):
    folder = new("sales", copy)
    assets = (folder / "src" / "sales" / "defs" / "assets.py").read_text()
    start = date.fromisoformat(assets.split('start_date="', 1)[1].split('"', 1)[0])
    today = datetime.now(UTC).date()
    assert today - timedelta(days=31) <= start <= today - timedelta(days=29)


def test_new_adds_exactly_one_registry_entry(copy):
    before_text = (copy / "dg.toml").read_text()
    before = registered_paths(copy)
    new("sales", copy)
    assert registered_paths(copy) == [*before, "code_locations/sales"]
    after_text = (copy / "dg.toml").read_text()
    assert after_text.startswith(before_text.rstrip("\n"))
    assert after_text.count("[[workspace.projects]]") == before_text.count("[[workspace.projects]]") + 1
    assert names(copy) == [*REGISTERED, "sales"]
    sales = load(copy)[-1]
    assert (sales.name, sales.module, sales.package, sales.path) == ("sales", "sales", "sales", Path("code_locations/sales"))
    assert (sales.env, sales.code_server_env, sales.volumes) == ({}, {}, ())


def test_the_new_location_gets_its_compose_service(copy):
    new("acme_sales", copy)
    document = load_compose(render(copy))
    assert document["services"]["acme-sales"]["build"]["args"] == {
        "LOCATION": "acme_sales", "PACKAGE": "acme_sales", "MODULE": "acme_sales", "PLATFORM_EXTRAS": "${PLATFORM_EXTRAS:-}"}
    assert "acme-sales" in document["services"]["code-locations-ready"]["depends_on"]


def test_new_leaves_no_staging_folder_and_no_bytecode(copy):
    pycache = copy / "deploy" / "location_template" / "src" / PLACEHOLDER_NAME / "__pycache__"
    pycache.mkdir()
    (pycache / "assets.cpython-311.pyc").write_bytes(b"\0")
    new("sales", copy)
    assert sorted(path.name for path in (copy / "code_locations").iterdir()) == sorted([*REGISTERED, "sales"])
    assert not list((copy / "code_locations" / "sales").rglob("__pycache__"))


@pytest.mark.parametrize("name", ["Bad-Name", "2sales", "os", "class", "postgres", "ingestion", "a" * 31, "",
                                  "code_location", "pandas"])
def test_new_changes_nothing_on_a_refused_name(copy, name):
    before = snapshot(copy)
    with pytest.raises(LocationError):
        new(name, copy)
    assert snapshot(copy) == before


def test_new_refuses_an_existing_unregistered_folder(copy):
    (copy / "code_locations" / "sales").mkdir()
    (copy / "code_locations" / "sales" / "draft.py").write_text("x = 1\n")
    before = snapshot(copy)
    with pytest.raises(LocationError, match="code_locations/sales already exists but is not registered"):
        new("sales", copy)
    assert snapshot(copy) == before


def test_new_twice_is_refused_the_second_time(copy):
    new("sales", copy)
    before = snapshot(copy)
    with pytest.raises(LocationError, match="location 'sales' already exists"):
        new("sales", copy)
    assert snapshot(copy) == before


# --- remove ------------------------------------------------------------------------------------


def test_remove_after_new_restores_the_registry_byte_for_byte(copy):
    before = snapshot(copy)
    new("sales", copy)
    assert remove("sales", copy, []) == copy / "code_locations" / "sales"
    assert (copy / "dg.toml").read_bytes() == (REPO / "dg.toml").read_bytes()
    assert snapshot(copy) == before


def test_new_remove_new_again(copy):
    new("sales", copy)
    remove("sales", copy, [])
    new("sales", copy)
    assert names(copy) == [*REGISTERED, "sales"]


def test_remove_refuses_when_others_depend_on_it(copy):
    new("sales", copy)
    before = snapshot(copy)
    dependants = ["reporting: reporting/sales_summary <- sales/orders", "billing: billing/invoices <- sales/orders"]
    with pytest.raises(LocationError) as raised:
        remove("sales", copy, dependants)
    message = str(raised.value)
    assert message.startswith("refusing to remove 'sales': other locations depend on its assets by key")
    for dependant in dependants:
        assert dependant in message
    assert snapshot(copy) == before


def test_remove_refuses_an_unknown_name_listing_the_registered_ones(copy):
    before = snapshot(copy)
    with pytest.raises(LocationError) as raised:
        remove("sales", copy, [])
    assert str(raised.value) == "no location named 'sales' in dg.toml; registered: platform, ingestion, reporting"
    assert snapshot(copy) == before


def test_remove_of_an_entry_in_the_middle_keeps_the_others(copy):
    before = (copy / "dg.toml").read_text()
    remove("ingestion", copy, [])
    assert registered_paths(copy) == ["code_locations/platform", "code_locations/reporting"]
    after = (copy / "dg.toml").read_text()
    assert after == before.replace('[[workspace.projects]]\npath = "code_locations/ingestion"\n\n', "")
    assert not (copy / "code_locations" / "ingestion").exists()
    assert (copy / "code_locations" / "reporting" / "pyproject.toml").is_file()


def test_remove_of_the_first_entry_keeps_the_header(copy):
    remove("platform", copy, [])
    text = (copy / "dg.toml").read_text()
    assert text.startswith("# The registry of code locations")
    assert 'directory_type = "workspace"\n\n[workspace]\n\n[[workspace.projects]]\npath = "code_locations/ingestion"' in text
    assert registered_paths(copy) == ["code_locations/ingestion", "code_locations/reporting"]


def test_remove_does_not_touch_a_location_whose_path_shares_a_prefix(copy):
    from tests.deploy.platform_core.repo_copies import add_project, project

    add_project(copy, "code_locations/reporting_eu", project(name="reporting_eu"))
    remove("reporting", copy, [])
    assert registered_paths(copy) == ["code_locations/platform", "code_locations/ingestion", "code_locations/reporting_eu"]
    assert (copy / "code_locations" / "reporting_eu" / "pyproject.toml").is_file()


# --- remove and git ----------------------------------------------------------------------------


@pytest.fixture
def committed(copy) -> Path:
    """The copy as a git checkout holding a committed `sales` location."""
    commit_all(copy, "the platform")
    new("sales", copy)
    commit_all(copy, "sales")
    return copy


def test_remove_of_a_committed_location_succeeds(committed):
    remove("sales", committed, [])
    assert (committed / "dg.toml").read_bytes() == (REPO / "dg.toml").read_bytes()
    assert not (committed / "code_locations" / "sales").exists()


def test_remove_refuses_a_changed_file_unless_forced(committed):
    assets = committed / "code_locations" / "sales" / "src" / "sales" / "defs" / "assets.py"
    assets.write_text(assets.read_text() + "\n# my work\n")
    before = snapshot(committed)
    with pytest.raises(LocationError) as raised:
        remove("sales", committed, [])
    message = str(raised.value)
    assert message.startswith("refusing to remove 'sales': code_locations/sales has changes git does not hold (1 file(s)")
    assert "code_locations/sales/src/sales/defs/assets.py" in message and "FORCE=1" in message
    assert snapshot(committed) == before

    remove("sales", committed, [], force=True)
    assert not (committed / "code_locations" / "sales").exists()
    assert "code_locations/sales" not in registered_paths(committed)


def test_remove_refuses_an_untracked_file_unless_forced(committed):
    (committed / "code_locations" / "sales" / "notes.md").write_text("ideas\n")
    before = snapshot(committed)
    with pytest.raises(LocationError, match="has changes git does not hold"):
        remove("sales", committed, [])
    assert snapshot(committed) == before
    remove("sales", committed, [], force=True)
    assert not (committed / "code_locations" / "sales").exists()


def test_remove_refuses_a_never_committed_location_unless_forced(copy):
    commit_all(copy, "the platform")
    new("sales", copy)
    before = snapshot(copy)
    with pytest.raises(LocationError, match="has changes git does not hold"):
        remove("sales", copy, [])
    assert snapshot(copy) == before
    remove("sales", copy, [], force=True)
    assert (copy / "dg.toml").read_bytes() == (REPO / "dg.toml").read_bytes()
    assert git(copy, "status", "--porcelain") == ""


def test_changes_elsewhere_do_not_block_a_remove(committed):
    (committed / "code_locations" / "ingestion" / "pyproject.toml").write_text(
        (committed / "code_locations" / "ingestion" / "pyproject.toml").read_text() + "\n# edited\n")
    remove("sales", committed, [])
    assert not (committed / "code_locations" / "sales").exists()


def test_force_does_not_override_dependants(committed):
    (committed / "code_locations" / "sales" / "notes.md").write_text("ideas\n")
    before = snapshot(committed)
    with pytest.raises(LocationError, match="other locations depend on its assets"):
        remove("sales", committed, ["reporting: reporting/x <- sales/orders"], force=True)
    assert snapshot(committed) == before
