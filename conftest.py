"""Root of the test suite: tests/ and every location's own tests (code_locations/*/tests).

The Postgres fixtures are registered here so a location's tests, which live in its own folder,
use them too. Markers are set from what a test uses, so `make test-fast` (no Docker) can leave
out every test that needs a container without each test having to remember its marker.

`make test` runs on two pytest-xdist workers (-n 2 --dist loadgroup). Each module is one unit of
work, so its module-scoped fixtures (a code server, a throwaway Postgres) are paid once, and the
compose end-to-end suite is one unit: its modules run one after the other on one worker, as they
always have (the fault, load and watchdog tests assert deadlines that two stacks on two cores
would stretch), while the other worker runs everything else and then the e2e modules that
assert no deadline (E2E_OWN_LANE)."""

import pytest

pytest_plugins = ["tests.postgres_fixtures"]

# E2E lanes: an e2e module listed here runs on the other worker, beside the rest of the e2e suite,
# once that worker's other modules are done. Only a module with a stack of its own that asserts
# no deadline: a team's new location (~7 min: its image build and `make up`, nothing timed).
E2E_OWN_LANE: set[str] = {"test_new_location.py"}
OWN_LANE_PREFIX = "e2e-"

POSTGRES_FIXTURES = {"postgres_server", "warehouse", "postgres_url", "clean_warehouse", "warehouse_env"}


def lane(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or for the e2e suite its lane."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if "e2e" in parts[:-1]:
        return f"{OWN_LANE_PREFIX}{parts[-1]}" if parts[-1] in E2E_OWN_LANE else "e2e"
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

        def _assign_work_unit(self, node) -> None:
            """An own e2e lane goes last: it starts once the other worker has nothing else to do
            (while the first runs the e2e lane), so its stack shares the machine with one other
            stack, never with the unit tests' bursts as well."""
            for scope in [s for s in self.workqueue if s.startswith(OWN_LANE_PREFIX)]:
                self.workqueue.move_to_end(scope)
            super()._assign_work_unit(node)

    return LaneScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.compose)


_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _config
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) prints
        _config = config


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A failure is named the moment it happens, not only in the summary: a run cut off by CI's
    limit still says which tests failed, and how long they took."""
    terminal = _config.pluginmanager.get_plugin("terminalreporter") if _config is not None else None
    if report.failed and terminal is not None:
        terminal.write("\n")  # after the progress dots of -q
        terminal.write_line(f"FAILED {report.nodeid} ({report.when}, {report.duration:.0f} s)", red=True)
