"""The split of `make test` over two workers (conftest.py): a module is one unit of work, and
the e2e suite one lane (a module may get a lane of its own if it never asks for the session stack)."""

import ast
import importlib.util
import inspect
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)


def test_a_module_is_one_unit_and_the_e2e_suite_one_lane(monkeypatch):
    lane = root_conftest.lane
    assert lane("tests/deploy/test_dagster_yaml.py::test_x") == "tests/deploy/test_dagster_yaml.py"
    assert lane("code_locations/reporting/tests/test_a.py::test_b[p::q]") == "code_locations/reporting/tests/test_a.py"
    assert lane("tests/e2e/test_faults.py::test_x") == lane("tests/e2e/test_stack.py::test_y[a]") == "e2e"
    monkeypatch.setattr(root_conftest, "E2E_OWN_LANE", {"test_load.py"})
    assert lane("tests/e2e/test_load.py::test_x") == "e2e-test_load.py" != lane("tests/e2e/test_faults.py::test_x")


def asks_for_the_session_stack(name: str) -> list[str]:
    """The tests and fixtures of an e2e module that ask for `stack` without the module defining it."""
    module = ast.parse((ROOT / "tests" / "e2e" / name).read_text())
    functions = [node for node in module.body if isinstance(node, ast.FunctionDef)]
    if "stack" in [f.name for f in functions]:
        return []
    return [f.name for f in functions if "stack" in [a.arg for a in f.args.args]]


def test_a_module_with_a_lane_of_its_own_never_asks_for_the_session_stack():
    """Else its worker would bring up a second session stack."""
    assert asks_for_the_session_stack("test_stack.py") and not asks_for_the_session_stack("test_faults.py")
    for name in root_conftest.E2E_OWN_LANE:
        assert not asks_for_the_session_stack(name), name


def test_xdist_still_schedules_by_the_scope_we_override():
    """The lane scheduler overrides LoadScopeScheduling._split_scope; an xdist upgrade that moves it
    fails here instead of silently spreading a module over both workers."""
    assert "nodeid" in inspect.signature(LoadScopeScheduling._split_scope).parameters


class _Node:
    def send_runtest_some(self, indexes):
        pass


def test_an_own_lane_is_handed_out_only_when_nothing_else_is_left(monkeypatch):
    """An own e2e lane runs beside the e2e lane only once the other worker's modules are done."""
    monkeypatch.setattr(root_conftest, "E2E_OWN_LANE", {"test_new_location.py"})

    class Config:
        def getvalue(self, name):
            return "loadgroup"

        def getoption(self, name, default=None):
            return default

        option = type("Option", (), {"loadscopereorder": True, "maxschedchunk": None})()

    scheduler = root_conftest.pytest_xdist_make_scheduler(Config(), log=None)
    ids = ["tests/e2e/test_new_location.py::test_a", "tests/e2e/test_new_location.py::test_b",
           "tests/e2e/test_new_location.py::test_c", "tests/deploy/test_a.py::test_x",
           "tests/e2e/test_stack.py::test_y", "tests/e2e/test_stack.py::test_z",
           "tests/e2e/test_stack.py::test_w", "tests/e2e/test_stack.py::test_v"]
    order = []
    scopes: dict[str, dict[str, bool]] = {}
    for nodeid in ids:
        scopes.setdefault(scheduler._split_scope(nodeid), {})[nodeid] = False
    for scope, work in sorted(scopes.items(), key=lambda item: -len(item[1])):  # as schedule() does
        scheduler.workqueue[scope] = work
    node = _Node()
    scheduler.registered_collections[node] = ids
    while scheduler.workqueue:
        before = set(scheduler.workqueue)
        scheduler._assign_work_unit(node)
        order += sorted(before - set(scheduler.workqueue))
    assert order == ["e2e", "tests/deploy/test_a.py", "e2e-test_new_location.py"]


def test_a_failure_is_named_when_it_happens(monkeypatch):
    """So a run that CI's limit cuts off before the summary still names its failures."""
    written = []

    class Terminal:
        def write(self, text, **markup):
            written.append(text)

        def write_line(self, text, **markup):
            written.append(text)

    class Config:
        pluginmanager = type("PM", (), {"get_plugin": staticmethod(lambda name: Terminal())})()

    monkeypatch.setattr(root_conftest, "_config", Config())
    report = type("Report", (), {"failed": True, "nodeid": "tests/e2e/test_x.py::test_y", "when": "setup",
                                 "duration": 901.2})()
    root_conftest.pytest_runtest_logreport(report)
    report.failed = False
    root_conftest.pytest_runtest_logreport(report)
    assert written == ["\n", "FAILED tests/e2e/test_x.py::test_y (setup, 901 s)"]
