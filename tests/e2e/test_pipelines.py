"""The live platform: the replay lands days, the daemon's sensor ingests them, reporting follows
across the location boundary by automation alone, and a bad file is stopped by its checks."""

import re

import pytest

from tests.e2e.compose_stack import REPLAY_END

pytestmark = pytest.mark.compose

FLIGHTS = ["ingestion", "flights"]
WEATHER = ["ingestion", "weather"]
DAILY_SUMMARY = ["reporting", "daily_delay_summary"]
DAYS = ["2013-01-01", "2013-01-02", "2013-01-03"]
BAD_DAY = "2013-01-20"  # after REPLAY_END, so only the test's own file lands for it
assert BAD_DAY > REPLAY_END


def _all_materialized(dagster, path, days):
    found = dagster.materialized_partitions(path, days)
    return found if set(days) <= set(found) else None


def test_sensor_ingests_each_replayed_day_without_a_manual_launch(stack, dagster):
    found = dagster.wait_for(
        f"{FLIGHTS} and {WEATHER} for {DAYS}",
        lambda: _all_materialized(dagster, FLIGHTS, DAYS) and _all_materialized(dagster, WEATHER, DAYS),
        timeout=300,
    )
    sensor_runs = {r["runId"]: r for r in dagster.runs(pipelineName="ingest_landed_day")}
    for day in DAYS:
        runs = [sensor_runs.get(run_id) for run_id in found[day]]
        assert any(r and r["tags"].get("dagster/sensor_name") == "landing_zone_sensor" for r in runs), (day, runs)
    for day in DAYS:
        expected = stack.read_landing_file(f"flights/{day}.csv").count("\n") - 1
        count = stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{day}'")
        assert int(count) == expected, day


def test_reporting_follows_by_automation_across_locations(stack, dagster):
    found = dagster.wait_for(
        f"{DAILY_SUMMARY} for {DAYS}", lambda: _all_materialized(dagster, DAILY_SUMMARY, DAYS), timeout=300
    )
    for day in DAYS:
        tags = [dagster.run(run_id)["tags"] for run_id in found[day]]
        assert any({"key": "dagster/from_automation_condition", "value": "true"} in t for t in tags), (day, tags)
        total = stack.psql("warehouse", f"SELECT sum(flights) FROM reporting.daily_delay_summary WHERE flight_date = '{day}'")
        flights = stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{day}'")
        assert int(total) == int(flights), day


def test_malformed_landing_file_fails_its_check_and_keeps_earlier_days(stack, dagster):
    _all_materialized(dagster, FLIGHTS, DAYS) or pytest.fail("earlier days were not ingested")
    before = stack.psql("warehouse", "SELECT flight_date, count(*) FROM ingestion.flights GROUP BY 1 ORDER BY 1")
    good = stack.read_landing_file("flights/2013-01-01.csv").splitlines(keepends=True)
    header, rows = good[0], [line.replace("2013,1,1,", "2013,1,20,", 1) for line in good[1:]]
    stack.write_landing_file(f"flights/{BAD_DAY}.csv", header + "".join(rows) + rows[0])  # one row twice

    def failed_run():
        runs = dagster.runs(pipelineName="ingest_landed_day", tags=[{"key": "dagster/partition", "value": BAD_DAY}])
        return [r for r in runs if r["status"] == "FAILURE"]

    dagster.wait_for(f"the failed run for {BAD_DAY}", failed_run, timeout=240)
    evaluations = [e for e in dagster.check_executions(FLIGHTS, "no_duplicate_rows") if e["evaluation"]]
    assert any(e["evaluation"]["partition"] == BAD_DAY and not e["evaluation"]["success"] for e in evaluations), evaluations
    assert stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{BAD_DAY}'") == "0"
    after = stack.psql("warehouse", f"SELECT flight_date, count(*) FROM ingestion.flights WHERE flight_date <> '{BAD_DAY}' GROUP BY 1 ORDER BY 1")
    assert after.startswith(before) or set(before.splitlines()) <= set(after.splitlines()), (before, after)
    assert BAD_DAY not in dagster.materialized_partitions(DAILY_SUMMARY, [BAD_DAY])


def test_make_backfill_replaces_landed_days_in_few_runs(stack, dagster):
    """`make backfill` re-runs landed days through the daemon's backfill loop: a range per run
    (not a run per day), ingestion before reporting, and the rows are replaced, not duplicated."""
    _all_materialized(dagster, FLIGHTS, DAYS) or pytest.fail("earlier days were not ingested")
    out = stack.make("backfill", f"FROM={DAYS[0]}", f"TO={DAYS[-1]}").stdout
    backfill_id = re.search(r"backfill (\w+) launched", out).group(1)
    done = dagster.wait_for(
        f"backfill {backfill_id}",
        lambda: (b := dagster.backfill(backfill_id))["status"] not in ("REQUESTED", "CANCELING") and b,
        timeout=400,
    )
    assert done["status"] == "COMPLETED_SUCCESS", done
    runs = dagster.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    assert len(runs) <= 3, f"{len(runs)} runs for {len(DAYS)} days: {[r['tags'] for r in runs]}"
    for day in DAYS:
        expected = stack.read_landing_file(f"flights/{day}.csv").count("\n") - 1
        count = stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{day}'")
        total = stack.psql("warehouse", f"SELECT sum(flights) FROM reporting.daily_delay_summary WHERE flight_date = '{day}'")
        assert int(count) == int(total) == expected, day


def test_make_backfill_refuses_days_outside_2013(stack):
    result = stack.make("backfill", "FROM=2012-12-31", "TO=2013-01-02", check=False)
    assert result.returncode != 0
    assert "2012-12-31 is outside 2013" in result.stderr + result.stdout
