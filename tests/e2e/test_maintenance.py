"""Run retention and bad partition keys on the shared compose stack, through the gateway's
GraphQL like an operator in the UI: prune_old_runs (platform location) in a run container against
the real instance database, and flights launched for days outside 2013."""

import re
import uuid

import pytest

from tests.e2e.dagster_graphql import LAUNCH, RUN

pytestmark = pytest.mark.compose

# Run retention belongs to the deployment: the platform location (code_locations/platform).
LOCATION, JOB = "platform", "prune_old_runs"


def prune_config(**config) -> dict:
    return {"ops": {"delete_old_runs": {"config": config}}}


def run_ids_literal(run_ids: list[str]) -> str:
    """psql -c takes no bind parameters: only canonical UUIDs (Dagster's run ids) go in."""
    for run_id in run_ids:
        assert str(uuid.UUID(run_id)) == run_id, run_id
    return "ARRAY[" + ",".join(f"'{run_id}'" for run_id in run_ids) + "]"


def storage_count(stack, table: str, run_ids: list[str]) -> int:
    assert table in ("runs", "event_logs")
    return int(
        stack.psql("dagster", f"SELECT count(*) FROM {table} WHERE run_id = ANY({run_ids_literal(run_ids)})")
    )


def finished(dagster, run_id: str, expected: str) -> str:
    status, seen = dagster.wait_run(run_id, timeout=600)
    assert status == expected, (run_id, seen, messages(dagster, run_id)[-10:])
    return run_id


# Errors (a failed step's exception and its causes) are not in the event's message.
EVENT_TEXTS = """
query Events($runId: ID!) { logsForRun(runId: $runId, limit: 1000) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message }
        ... on ErrorEvent { error { message causes { message } } } } }
    ... on PythonError { message } } }
"""


def messages(dagster, run_id: str) -> list[str]:
    """Every event message of the run, then the text of every error it carries."""
    result = dagster.query(EVENT_TEXTS, runId=run_id)["logsForRun"]
    assert result["__typename"] == "EventConnection", result
    texts = []
    for event in result["events"]:
        if event.get("message"):
            texts.append(event["message"])
        error = event.get("error") or {}
        texts += [e["message"] for e in [error, *error.get("causes", [])] if e.get("message")]
    return texts


def test_prune_old_runs_dry_run_then_real_run(stack, dagster):
    # Finished runs of this test only: two to age (one success, one failure) and one recent.
    # A dry run that matches nothing (retention of 100 years) makes a cheap successful run; a
    # retention of 0 is refused by the job itself, a real failed run.
    aged = [
        finished(dagster, dagster.launch_job_run(LOCATION, JOB, prune_config(retention_days=36500, dry_run=True)), "SUCCESS"),
        finished(dagster, dagster.launch_job_run(LOCATION, JOB, prune_config(retention_days=0)), "FAILURE"),
    ]  # fmt: skip
    refused = messages(dagster, aged[1])
    assert any("retention_days must be a whole number of days >= 1, got 0" in m for m in refused), refused
    recent = finished(
        dagster,
        dagster.launch_job_run(LOCATION, JOB, prune_config(retention_days=36500, dry_run=True)),
        "SUCCESS",
    )
    events_of_aged = storage_count(stack, "event_logs", aged)
    assert events_of_aged > 0
    stack.psql(
        "dagster",
        "UPDATE runs SET create_timestamp = create_timestamp - interval '400 days' "
        f"WHERE run_id = ANY({run_ids_literal(aged)})",
    )
    old_finished = int(
        stack.psql(
            "dagster",
            "SELECT count(*) FROM runs WHERE create_timestamp < now() AT TIME ZONE 'UTC' - interval '30 days' "
            "AND status IN ('SUCCESS', 'FAILURE', 'CANCELED')",
        )
    )
    assert old_finished == len(aged)  # nothing else on the shared stack is that old

    dry = finished(dagster, dagster.launch_job_run(LOCATION, JOB, prune_config(dry_run=True)), "SUCCESS")
    assert f"dry run: would delete {len(aged)} run(s) in 1 batch(es)" in "\n".join(messages(dagster, dry))
    assert storage_count(stack, "runs", aged) == len(aged)
    # >=: the daemon may still append to a finished run (the retry daemon notes why it does not
    # retry the failed one); a dry run must not have removed any of them.
    assert storage_count(stack, "event_logs", aged) >= events_of_aged

    real = finished(
        dagster, dagster.launch_job_run(LOCATION, JOB, prune_config(retention_days=30)), "SUCCESS"
    )
    log = "\n".join(messages(dagster, real))
    assert re.search(rf"deleted {len(aged)} run\(s\) in 1 batch\(es\); \d+ run\(s\) remain", log), log
    assert storage_count(stack, "runs", aged) == 0
    assert storage_count(stack, "event_logs", aged) == 0
    for run_id in aged:
        assert dagster.query(RUN, runId=run_id)["runOrError"]["__typename"] == "RunNotFoundError"
    for run_id in (recent, dry, real):
        assert dagster.run(run_id)["status"] == "SUCCESS"
        assert storage_count(stack, "event_logs", [run_id]) > 0


def out_of_range_rows(stack) -> str:
    return stack.psql(
        "warehouse",
        "SELECT CASE WHEN to_regclass('ingestion.flights') IS NULL THEN 0 ELSE ("
        "SELECT count(*) FROM ingestion.flights WHERE flight_date NOT BETWEEN '2013-01-01' AND '2013-12-31') END",
    )


@pytest.mark.parametrize("key", ["2014-01-01", "2012-12-31"])
def test_flights_for_a_day_outside_2013_is_refused_naming_it(stack, dagster, key):
    runs_before = {r["runId"] for r in dagster.runs()}
    params = {
        "selector": {
            "repositoryLocationName": "ingestion",
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["ingestion", "flights"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
    }
    result = dagster.query(LAUNCH, params=params)["launchRun"]
    if result["__typename"] == "LaunchRunSuccess":  # accepted, then it must fail naming the key
        run_id = result["run"]["runId"]
        finished(dagster, run_id, "FAILURE")
        assert any(key in m for m in messages(dagster, run_id)), messages(dagster, run_id)
    else:
        assert key in str(result), result
        assert {r["runId"] for r in dagster.runs()} == runs_before
    assert out_of_range_rows(stack) == "0"
    assert dagster.materialized_partitions(["ingestion", "flights"], [key]) == {}
