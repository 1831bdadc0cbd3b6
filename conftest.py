"""Root of the test suite: tests/ and every location's own tests (code_locations/*/tests).

The Postgres fixtures are registered here so a location's tests, which live in its own folder,
use them too. Markers are set from what a test uses, so `make test-fast` (no Docker) can leave
out every test that needs a container without each test having to remember its marker.

`make test` runs on two pytest-xdist workers (-n 2 --dist loadgroup). Each module is a group, so
its module-scoped fixtures (a code server, a compose stack) are paid once; the compose end-to-end
modules form two lanes, one per worker: those that bring up stacks of their own
(E2E_OWN_STACK_LANE) and all the others, which share one session stack, so only one worker ever
brings the session stack up."""

import pytest

pytest_plugins = ["tests.postgres_fixtures"]

# The e2e modules that bring up their own stacks (and never the session one), about half of the
# e2e suite's time: the other lane (the session stack's modules, and the watchdog, monitoring and
# backup stacks) takes about as long.
E2E_OWN_STACK_LANE = {"test_faults.py", "test_load.py", "test_new_location.py"}

POSTGRES_FIXTURES = {"postgres_server", "warehouse", "postgres_url", "clean_warehouse", "warehouse_env"}


def lane(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or for the e2e suite one of its two lanes."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if "e2e" in parts[:-1]:
        return "e2e-own-stacks" if parts[-1] in E2E_OWN_STACK_LANE else "e2e-session-stack"
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With --dist loadgroup, schedule by lane(). pytest-xdist's own loadgroup reads xdist_group
    marks through a node-id suffix that pytest 9 no longer keeps, so it would hand a module's
    tests, and a lane's stacks, to both workers; its module scheduler with our scopes does not."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lane(nodeid)

    return LaneScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.compose)

