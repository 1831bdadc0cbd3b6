"""Launch a backfill of the daily pipeline (ingestion flights + weather, then the daily reports)
through the webserver's GraphQL API. Runs inside the webserver container (`make backfill`), so
it needs no published port and no credentials:

    docker compose exec -T webserver python - 2013-01-01 2013-12-31 < deploy/ops/launch_backfill.py

The daemon's backfill loop then launches runs in chunks set by each asset's BackfillPolicy
(ingestion: a week per run, reporting: a month per run), ingestion first."""

import json
import sys
import urllib.request
from datetime import date

ASSETS = [
    ["ingestion", "flights"],
    ["ingestion", "weather"],
    ["reporting", "daily_delay_summary"],
    ["reporting", "weather_delay_link"],
]
MUTATION = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
  }
}
"""


def day(text: str) -> str:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"backfill: {text!r} is not a date (YYYY-MM-DD)") from None
    if value.year != 2013:
        raise SystemExit(f"backfill: {text} is outside 2013, the span of the data set")
    return value.isoformat()


def main() -> None:
    first, last = (day(a) for a in (sys.argv[1:3] if len(sys.argv) >= 3 else ("2013-01-01", "2013-12-31")))
    if first > last:
        raise SystemExit(f"backfill: FROM {first} is after TO {last}")
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": path}, "partitions": {"range": {"start": first, "end": last}}} for path in ASSETS
        ],
        "title": f"daily pipeline {first}..{last}",
    }
    request = urllib.request.Request(
        "http://127.0.0.1:3000/graphql",
        data=json.dumps({"query": MUTATION, "variables": {"params": params}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    body = json.load(urllib.request.urlopen(request, timeout=120))
    if body.get("errors"):
        raise SystemExit(f"backfill: GraphQL error: {body['errors']}")
    result = body["data"]["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise SystemExit(f"backfill: refused: {result}")
    print(f"backfill {result['backfillId']} launched for {first}..{last}; follow it under Overview > Backfills")


if __name__ == "__main__":
    main()
