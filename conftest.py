"""Root of the test suite: tests/ and every location's own tests (code_locations/*/tests).

The Postgres fixtures are registered here so a location's tests, which live in its own folder,
use them too. Markers are set from what a test uses, so `make test-fast` (no Docker) can leave
out every test that needs a container without each test having to remember its marker.

`make test` runs on two pytest-xdist workers (-n 2 --dist loadgroup). Each module is one unit of
work, so its module-scoped fixtures (a code server, a throwaway Postgres) are paid once, and the
compose end-to-end suite is one unit: its modules run one after the other on one worker, as they
always have (the fault, load and watchdog tests assert deadlines that two stacks on two cores
would stretch), while the other worker runs everything else."""

import pytest

pytest_plugins = ["tests.postgres_fixtures"]

# E2E lanes: an e2e module listed here runs on a worker of its own, beside the rest of the e2e
# suite (for a module that asserts no deadline; none is listed yet).
E2E_OWN_LANE: set[str] = set()

POSTGRES_FIXTURES = {"postgres_server", "warehouse", "postgres_url", "clean_warehouse", "warehouse_env"}


def lane(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or for the e2e suite its lane."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if "e2e" in parts[:-1]:
        return f"e2e-{parts[-1]}" if parts[-1] in E2E_OWN_LANE else "e2e"
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With --dist loadgroup, schedule by lane(). pytest-xdist's own loadgroup reads xdist_group
    marks through a node-id suffix that pytest 9 no longer keeps, so it would hand a module's
    tests, and the e2e suite, to both workers; its module scheduler with our scopes does not."""
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

