"""Full-year backfill of the daily pipeline (ingestion + daily reports) on a throwaway stack.

    uv run python benchmarks/backfill_year.py [--to 2013-12-31]

The replay is off at start and both the landing sensor and reporting's automation sensor are
stopped, so only the backfill runs. The whole range is landed at once, then `make backfill`
launches it; we wait for the backfill to finish and report wall time, number of runs and
their outcome. Writes benchmarks/results/<date>-backfill.json and prints a table."""

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.compose_stack import ComposeStack  # noqa: E402
from tests.e2e.dagster_graphql import DagsterGraphQL  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SENSOR = """query S($sel: SensorSelector!) { sensorOrError(sensorSelector: $sel) { __typename
  ... on Sensor { sensorState { id status } } } }"""
STOP = "mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }"


def stop_sensor(client: DagsterGraphQL, location: str, name: str) -> None:
    sel = {"repositoryLocationName": location, "repositoryName": "__repository__", "sensorName": name}
    state = client.query(SENSOR, sel=sel)["sensorOrError"]["sensorState"]
    client.query(STOP, id=state["id"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", default="2013-12-31")
    args = parser.parse_args()
    stack = ComposeStack("flights-backfill", RESULTS)
    text = stack.env_file.read_text()
    stack.env_file.write_text(text + "REPLAY_ENABLED=false\n")
    try:
        stack.up()
        client = DagsterGraphQL(stack.base_url, auth=stack.admin, timeout=120)
        client.wait_locations_loaded(["ingestion", "reporting"])
        stop_sensor(client, "ingestion", "landing_zone_sensor")
        stop_sensor(client, "reporting", "reporting_automation")
        stack.compose("run", "--rm", "--no-deps", "-e", "REPLAY_ENABLED=true", "-e", "REPLAY_SECONDS_PER_DAY=0",
                      "-e", f"REPLAY_END={args.to}", "--entrypoint", "timeout", "replay", "60",
                      "python", "-m", "ingestion.replay", check=False)
        start = time.monotonic()
        out = stack.make("backfill", "FROM=2013-01-01", f"TO={args.to}").stdout
        backfill_id = re.search(r"backfill (\w+) launched", out).group(1)
        status = client.wait_for(
            "the backfill", lambda: (b := client.backfill(backfill_id))["status"] not in ("REQUESTED", "CANCELING") and b,
            timeout=3600, interval=5)
        wall = time.monotonic() - start
        runs = client.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    finally:
        stack.down()
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run["status"]] = by_status.get(run["status"], 0) + 1
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "range": ["2013-01-01", args.to],
              "backfill_status": status["status"], "wall_s": round(wall, 1), "runs": len(runs), "runs_by_status": by_status}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{dt.date.today().isoformat()}-backfill.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print("| range | status | wall s | runs | by status |\n|---|---|---|---|---|")
    print(f"| 2013-01-01..{args.to} | {status['status']} | {result['wall_s']} | {len(runs)} | {by_status} |")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
