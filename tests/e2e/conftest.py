"""One compose stack for the whole e2e session; its logs are printed when a test failed."""

import secrets

import pytest

from tests.e2e.compose_stack import LOCATION_NAMES, ComposeStack
from tests.e2e.dagster_graphql import DagsterGraphQL


@pytest.fixture(scope="session")
def stack(request, tmp_path_factory):
    stack = ComposeStack(f"flights-e2e-{secrets.token_hex(3)}", tmp_path_factory.mktemp("compose"))
    with stack.serving(request):
        yield stack


@pytest.fixture(scope="session")
def dagster(stack) -> DagsterGraphQL:
    client = DagsterGraphQL(stack.base_url, auth=stack.admin)  # the admin editor, via the gateway
    client.wait_locations_loaded(LOCATION_NAMES)
    return client


@pytest.fixture(scope="module")
def finished_run(stack, dagster) -> str:
    """A run of this module's own that loaded 2013-01-01's flights: a run, events, step logs
    (it used the warehouse password) and warehouse rows to back up, restore or search."""
    day = "2013-01-01"
    dagster.wait_for(f"flights/{day}.csv to land", lambda: stack.read_landing_file(f"flights/{day}.csv"), timeout=300)
    run_id = dagster.launch_asset_run("ingestion", ["ingestion", "flights"], day)
    status, seen = dagster.wait_run(run_id, timeout=600)
    assert status == "SUCCESS", seen
    return run_id
