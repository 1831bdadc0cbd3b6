"""The soak's verdicts (benchmarks/soak.py) on made-up samples: a leak, a pile-up of exited
run containers and an over-budget peak are each called out; steady figures pass."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import soak  # noqa: E402


def _samples(memory, exited=None, connections=None, every_s=60):
    return [{"t": i * every_s, "memory_mib": m, "cpu_cores": {}, "exited_run_containers": (exited or [0] * len(memory))[i],
             "connections": (connections or [{}] * len(memory))[i]} for i, m in enumerate(memory)]


def test_slope_is_per_hour():
    assert soak.slope_per_hour([0, 1800, 3600], [100, 110, 120]) == pytest.approx(20)
    assert soak.slope_per_hour([0], [5]) == 0


def test_a_leak_is_not_flat_and_noise_is():
    leaking = [{"daemon": 300 + i * 2, "webserver": 250 + (i % 3)} for i in range(60)]  # daemon +120 MiB/h
    verdicts = soak.memory_verdicts(_samples(leaking), warm_up_s=300)
    assert verdicts["daemon"]["flat"] is False and verdicts["daemon"]["slope_mib_per_h"] == pytest.approx(120, rel=0.01)
    assert verdicts["webserver"]["flat"] is True
    assert verdicts["daemon"]["first_mib"] == 310  # the warm-up's samples are left out


def test_a_small_service_is_not_called_leaking_for_noise():
    proxy = [{"socket-proxy": 12.8 + (i % 5) * 0.1 + i * 0.027} for i in range(60)]  # +1.6 MiB/h on 14 MiB
    assert soak.memory_verdicts(_samples(proxy), warm_up_s=300)["socket-proxy"]["flat"] is True


def test_exited_run_containers_must_stop_growing():
    steady = _samples([{}] * 10, exited=[1, 3, 5, 6, 6, 5, 6, 4, 6, 5])
    growing = _samples([{}] * 10, exited=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert soak.exited_verdict(steady)["bounded"] is True
    assert soak.exited_verdict(growing) == {"max_first_half": 5, "max_second_half": 10, "last": 10, "bounded": False}
    plateau = _samples([{}] * 6, exited=[40, 120, 133, 131, 134, 130])  # one run more at the plateau
    assert soak.exited_verdict(plateau)["bounded"] is True


def test_memory_is_judged_on_the_series_asked_for():
    samples = _samples([{"postgres": 100 + i * 3} for i in range(60)])  # docker stats: cache filling
    for i, sample in enumerate(samples):
        sample["anon_mib"] = {"postgres": 40 + (i % 2)}
    assert soak.memory_verdicts(samples, 300)["postgres"]["flat"] is False
    assert soak.memory_verdicts(samples, 300, "anon_mib")["postgres"]["flat"] is True


def test_connections_are_held_to_the_budget_and_the_role_limits():
    fine = _samples([{}] * 2, connections=[{"dagster": 40, "warehouse": 10}, {"dagster": 50, "warehouse": 4}])
    assert soak.connection_verdict(fine)["within_budget"] is True
    assert soak.connection_verdict(fine)["max_by_role"] == {"dagster": 50, "warehouse": 10}
    over = _samples([{}] * 1, connections=[{"dagster": 90, "warehouse": 20}])
    assert soak.connection_verdict(over)["within_budget"] is False


def test_the_busiest_ten_minutes_count_not_the_average():
    quiet_then_busy = [{"t": t, "cpu_cores": {"daemon": 0.1 if t < 1800 else 0.9}} for t in range(0, 3600, 60)]
    assert soak.rolling_max_mean(quiet_then_busy, 600) == pytest.approx(0.9)
    short = [{"t": t, "cpu_cores": {"x": 0.2}} for t in range(0, 300, 60)]
    assert soak.rolling_max_mean(short, 600) == pytest.approx(0.2)


def _evaluation(run_id, check, success, blocking=True, partition="2013-02-12"):
    specific = {"__class__": "AssetCheckEvaluation", "asset_key": {"__class__": "AssetKey", "path": ["ingestion", "weather"]},
                "check_name": check, "success": success, "blocking": blocking, "partition": partition}
    return run_id, json.dumps({"dagster_event": {"event_specific_data": specific}})


def test_a_run_refused_by_a_blocking_check_is_told_apart_from_a_platform_failure():
    rows = [_evaluation("r1", "required_columns", True), _evaluation("r1", "values_in_physical_range", False),
            _evaluation("r2", "no_duplicate_rows", False, blocking=False), _evaluation("r3", "no_null_keys", True)]
    assert soak.failed_blocking_checks(rows) == {"r1": ["ingestion/weather/values_in_physical_range 2013-02-12"]}


def test_run_containers_cpu_is_all_containers_less_the_services():
    before = (100.0, {"daemon": 10.0, "postgres": 50.0}, 1000.0)
    after = (110.0, {"daemon": 11.0, "postgres": 53.0}, 1012.0)  # 12 CPU-s in 10 s, 4 of them the services'
    assert soak.cpu_between(before, after) == pytest.approx({"daemon": 0.1, "postgres": 0.3, "run containers": 0.8})
