"""A team's own location, end to end, the way a team adds one: the copy of the repository runs,
`make location NAME=acme_sales` scaffolds a location nobody registers by hand, and `make up` brings
it into the running stack. It loads in the UI next to the others, runs its asset in a container
of its own image, shows the step's logs, and a viewer sees it, read-only, through the gateway.
`make location-remove` and `make up` take it out again."""

import hashlib
import secrets
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from platform_core import locations
from tests.e2e.compose_stack import REPO, ComposeStack
from tests.e2e.dagster_graphql import CAPTURED_LOGS, DagsterGraphQL

pytestmark = pytest.mark.compose

NAME = "acme_sales"  # with an underscore: its compose service and host name is acme-sales
ASSET = [NAME, "warehouse_size"]
IMAGE_TAG = "newloc"
VIEWER = ("vic", "viewer-" + secrets.token_urlsafe(9))
UNAUTHORIZED = "UnauthorizedError"


def _copy_of_the_repository(target):
    """What a fresh clone has (tracked and new, unignored files), without this checkout's .env,
    venv or generated files."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def _file_hashes(root) -> dict[str, str]:
    """Every file of the checkout but its venv and git metadata, by content."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in root.rglob("*")
            if path.is_file() and not {".venv", ".git", "__pycache__"} & set(path.relative_to(root).parts)}


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("team-repo")
    _copy_of_the_repository(root)
    return root


@pytest.fixture(scope="module")
def team_stack(request, copy, tmp_path_factory):
    stack = ComposeStack(f"flights-newloc-{secrets.token_hex(3)}", tmp_path_factory.mktemp("newloc"),
                         extra_env={"IMAGE_TAG": IMAGE_TAG}, repo=copy)

    def add_the_location(stack):
        """The stack runs as cloned; then the team scaffolds its location and runs `make up`."""
        assert NAME not in locations.names(copy)
        before = _file_hashes(copy)
        stack.make("location", f"NAME={NAME}", timeout=600)
        after = _file_hashes(copy)
        stack.changed_by_scaffold = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
        stack.make("up", timeout=900)

    with stack.serving(request, then=add_the_location):
        yield stack
    images = [f"flights-platform/{name}:{IMAGE_TAG}" for name in ["dagster", "gateway", *locations.names(copy)]]
    subprocess.run(["docker", "image", "rm", *images], capture_output=True)


@pytest.fixture(scope="module")
def editor(team_stack) -> DagsterGraphQL:
    return DagsterGraphQL(team_stack.base_url, auth=team_stack.admin)


def test_the_location_is_one_folder_and_one_registry_entry(team_stack, copy):
    """`make location` wrote its folder and changed only dg.toml and uv.lock outside it (besides
    the git-ignored files it generates: compose.locations.yaml, .env)."""
    ignored = {"compose.locations.yaml", ".env"}
    outside = [p for p in team_stack.changed_by_scaffold
               if not p.startswith(f"code_locations/{NAME}/") and p not in ignored and not p.startswith(".dagster_dev/")]
    assert outside == ["dg.toml", "uv.lock"], outside
    assert f"code_locations/{NAME}/asset_specs.json" in team_stack.changed_by_scaffold
    assert NAME in locations.names(copy)


def test_it_loads_in_the_ui_next_to_the_others(copy, editor):
    names = locations.names(copy)
    assert len(names) >= 4 and NAME in names
    entries = editor.wait_locations_loaded(names, timeout=300)
    assert {entries[name]["loadStatus"] for name in names} == {"LOADED"}
    assert editor.asset_node(ASSET)["repository"]["location"]["name"] == NAME


@pytest.fixture(scope="module")
def sales_run(editor):
    today = datetime.now(UTC).date().isoformat()
    run_id = editor.launch_asset_run(NAME, ASSET, today)
    return run_id, editor.wait_run(run_id, timeout=600)


def test_its_asset_runs_in_a_container_of_its_own_image(team_stack, editor, sales_run):
    run_id, (status, seen) = sales_run
    assert status == "SUCCESS", seen
    tags = {t["key"]: t["value"] for t in editor.run(run_id)["tags"]}
    image = f"flights-platform/{NAME}:{IMAGE_TAG}"
    assert tags["dagster/image"] == image
    inspect = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "io.flights-platform.location"}} {{.Config.Image}}',
                              tags["docker/container_id"]], capture_output=True, text=True, check=True).stdout.split()
    assert inspect == [NAME, image]
    rows = team_stack.psql("warehouse", f"SELECT count(*), min(database_bytes) > 0 FROM {NAME}.warehouse_size")
    assert rows == "1|t"
    [check] = editor.check_executions(ASSET, "warehouse_size_is_measured")[:1]
    assert check["status"] == "SUCCEEDED", check


def test_its_step_logs_show_in_the_ui(editor, sales_run):
    run_id = sales_run[0]
    keys = [e["fileKey"] for e in editor.events(run_id) if e["__typename"] == "LogsCapturedEvent"]
    assert keys, "no captured-logs event"
    stderr = editor.query(CAPTURED_LOGS, logKey=[run_id, "compute_logs", keys[0]])["capturedLogs"]["stderr"] or ""
    assert "STEP_START" in stderr and "warehouse is" in stderr, stderr[-2000:]


def test_a_viewer_sees_it_read_only_through_the_gateway(team_stack, copy, sales_run):
    team_stack.add_user(VIEWER[0], "viewer", VIEWER[1])
    viewer = DagsterGraphQL(team_stack.base_url, auth=VIEWER)
    entries = viewer.wait_locations_loaded(locations.names(copy), timeout=60)
    assert entries[NAME]["loadStatus"] == "LOADED"
    assert viewer.asset_node(ASSET)["repository"]["location"]["name"] == NAME
    assert viewer.events(sales_run[0]), "a viewer reads the run's events"
    with pytest.raises(AssertionError, match=UNAUTHORIZED):
        viewer.launch_asset_run(NAME, ASSET, datetime.now(UTC).date().isoformat())


def test_remove_takes_it_out_of_the_running_stack(team_stack, copy, editor, sales_run):
    refused = team_stack.make("location-remove", "NAME=ingestion", check=False, timeout=300)
    assert refused.returncode != 0 and "reporting" in refused.stderr, refused.stderr
    assert "ingestion" in locations.names(copy)
    team_stack.make("location-remove", f"NAME={NAME}", timeout=300)
    assert not (copy / "code_locations" / NAME).exists() and NAME not in locations.names(copy)
    team_stack.make("up", timeout=900)
    assert NAME.replace("_", "-") not in team_stack.services()
    editor.wait_for(f"{NAME} to leave the workspace", lambda: NAME not in editor.locations(), timeout=120)
    editor.wait_locations_loaded(locations.names(copy), timeout=120)
