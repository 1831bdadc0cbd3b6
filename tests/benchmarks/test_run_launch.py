"""The launch profile (benchmarks/run_launch.py): phases come from the run's first event of each
kind and the container's start, and a launch missing one of them is left out, not guessed."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import run_launch  # noqa: E402


def _event(kind: str, at_s: float) -> dict:
    return {"__typename": kind, "timestamp": str(int(at_s * 1000))}


def test_phases_split_the_launch_at_dequeue_container_start_and_run_start():
    events = [_event("RunEnqueuedEvent", 100.1), _event("RunStartingEvent", 100.6),
              _event("EngineEvent", 100.7), _event("RunStartEvent", 102.0),
              _event("ExecutionStepStartEvent", 102.3), _event("RunStartingEvent", 110.0),
              {"__typename": "LogsCapturedEvent"}]
    phases = run_launch.launch_phases(100.0, events, started=101.0, first_step=102.3)
    assert phases == pytest.approx({"queue": 0.6, "launcher": 0.4, "boot": 1.0, "plan": 0.3})
    assert sum(phases.values()) == pytest.approx(2.3)


@pytest.mark.parametrize("missing", ["RunStartingEvent", "RunStartEvent", "container"])
def test_a_launch_without_a_phase_boundary_is_not_profiled(missing):
    events = [e for e in (_event("RunStartingEvent", 1), _event("RunStartEvent", 3)) if e["__typename"] != missing]
    started = None if missing == "container" else 2.0
    assert run_launch.launch_phases(0.0, events, started=started, first_step=4.0) == {}
