"""The watchdog's one metric (deploy/ops/platform_watchdog.py): after each pruning pass, the exited
run containers it kept (younger than RUN_CONTAINER_KEEP_MINUTES) are what it reports to Prometheus."""

import importlib.util
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "ops"))
_spec = importlib.util.spec_from_file_location("platform_watchdog", REPO_ROOT / "deploy/ops/platform_watchdog.py")
watchdog = importlib.util.module_from_spec(_spec)
sys.modules["platform_watchdog"] = watchdog
_spec.loader.exec_module(watchdog)


class Container:
    def __init__(self, fail: bool = False):
        self.removed = False
        self.fail = fail

    def remove(self, v=False):
        if self.fail:
            raise RuntimeError("removal in progress")
        self.removed = True


class Listed(watchdog.RunContainerPruner):
    """The pruner over a fixed listing (its Docker calls are tested in test_platform_status)."""

    def __init__(self, containers):
        super().__init__("flights-test")
        self.containers = containers

    def list(self):
        return [c for c in self.containers if not c["container"].removed]


def test_exited_left_counts_what_pruning_kept():
    now = time.time()
    old, young, stuck = Container(), Container(), Container(fail=True)
    pruner = Listed([
        {"id": "a" * 12, "name": "old", "state": "exited", "finished_at": now - 7200, "container": old},
        {"id": "b" * 12, "name": "young", "state": "exited", "finished_at": now - 60, "container": young},
        {"id": "c" * 12, "name": "stuck", "state": "dead", "finished_at": now - 7200, "container": stuck},
        {"id": "d" * 12, "name": "running", "state": "running", "finished_at": None, "container": Container()},
    ])
    assert pruner.prune(3600, "test") == 1
    assert old.removed and not young.removed
    assert pruner.exited_left == 2  # the young one, and the one whose removal failed
    assert pruner.prune(0, "shutdown") == 1 and pruner.exited_left == 1  # young removed, stuck stays
