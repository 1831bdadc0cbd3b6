"""The slice of Dagster's GraphQL API the end-to-end tests drive, on 127.0.0.1 only (through
the gateway, with basic auth when given)."""

import time

import requests

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATIONS = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  } }
"""

RUN = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { runId status tags { key value } }
    ... on PythonError { message } } }
"""

RUN_EVENTS = """
query Events($runId: ID!) { logsForRun(runId: $runId, limit: 1000) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message timestamp }
        ... on LogsCapturedEvent { fileKey stepKeys }
        ... on ExecutionStepStartEvent { stepKey timestamp } } }
    ... on PythonError { message } } }
"""

CAPTURED_LOGS = """
query Logs($logKey: [String!]!) { capturedLogs(logKey: $logKey) { stdout stderr } }
"""

ASSET_NODE = """
query Asset($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename
    ... on AssetNode { repository { location { name } }
        dependencyKeys { path } dependedByKeys { path } } } }
"""


MATERIALIZATIONS = """
query Mats($key: AssetKeyInput!, $partitions: [String!]) { assetNodeOrError(assetKey: $key) {
    __typename ... on AssetNode { assetMaterializations(partitions: $partitions) { partition runId } } } }
"""

RUNS = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter, limit: 500) { __typename
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
    ... on PythonError { message } } }
"""

CHECK_EXECUTIONS = """
query Checks($key: AssetKeyInput!, $name: String!) { assetCheckExecutions(assetKey: $key, checkName: $name, limit: 50) {
    runId status evaluation { partition success description } } }
"""


class DagsterGraphQL:
    def __init__(self, base_url: str, timeout: float = 30, auth: tuple[str, str] | None = None):
        self.url = f"{base_url.rstrip('/')}/graphql"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = auth

    def query(self, query: str, **variables) -> dict:
        response = self.session.post(
            self.url, json={"query": query, "variables": variables}, timeout=self.timeout
        )
        if response.status_code != 200:
            raise AssertionError(f"GraphQL HTTP {response.status_code}: {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def locations(self) -> dict[str, dict]:
        data = self.query(LOCATIONS)["workspaceOrError"]
        assert data["__typename"] == "Workspace", data
        return {entry["name"]: entry for entry in data["locationEntries"]}

    def wait_locations_loaded(self, names, timeout: float = 180) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        entries: dict = {}
        while time.monotonic() < deadline:
            try:
                entries = self.locations()
            except (requests.RequestException, AssertionError):  # not up yet: refused, 502, 401 race
                entries = {}
            if all(
                entries.get(n, {}).get("loadStatus") == "LOADED"
                and entries[n]["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                for n in names
            ):
                return entries
            time.sleep(1)
        raise AssertionError(f"locations {names} not loaded within {timeout}s: {entries}")

    def launch_asset_run(self, location: str, asset_path: list[str], partition: str | None = None,
                         partition_range: tuple[str, str] | None = None) -> str:
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        if partition_range:  # one run over several partitions, as a backfill's ranged run
            tags += [{"key": "dagster/asset_partition_range_start", "value": partition_range[0]},
                     {"key": "dagster/asset_partition_range_end", "value": partition_range[1]}]
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": asset_path}],
            },
            "executionMetadata": {"tags": tags},
        }
        result = self.query(LAUNCH, params=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_job_run(self, location: str, job_name: str, run_config: dict | None = None) -> str:
        """Launch a (non-asset) job with this run config; returns the run id."""
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": job_name,
            },
            "runConfigData": run_config or {},
        }
        result = self.query(LAUNCH, params=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict:
        result = self.query(RUN, runId=run_id)["runOrError"]
        assert result["__typename"] == "Run", result
        return result

    def wait_run(self, run_id: str, timeout: float = 300) -> tuple[str, list[str]]:
        """Final status and every distinct status seen on the way."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run(run_id)["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in TERMINAL:
                return status, seen
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} not finished within {timeout}s; statuses {seen}")

    def events(self, run_id: str) -> list[dict]:
        result = self.query(RUN_EVENTS, runId=run_id)["logsForRun"]
        assert result["__typename"] == "EventConnection", result
        return result["events"]

    def step_stdout(self, run_id: str) -> str:
        """Concatenated captured stdout of every step of the run, as the UI would show it."""
        file_keys = [e["fileKey"] for e in self.events(run_id) if e["__typename"] == "LogsCapturedEvent"]
        assert file_keys, f"run {run_id} has no captured-logs event"
        return "".join(
            self.query(CAPTURED_LOGS, logKey=[run_id, "compute_logs", key])["capturedLogs"]["stdout"] or ""
            for key in file_keys
        )

    def asset_node(self, path: list[str]) -> dict:
        result = self.query(ASSET_NODE, key={"path": path})["assetNodeOrError"]
        assert result["__typename"] == "AssetNode", result
        return result

    def materialized_partitions(self, path: list[str], partitions: list[str]) -> dict[str, list[str]]:
        """Partition -> run ids that materialized it."""
        result = self.query(MATERIALIZATIONS, key={"path": path}, partitions=partitions)["assetNodeOrError"]
        assert result["__typename"] == "AssetNode", result
        found: dict[str, list[str]] = {}
        for event in result["assetMaterializations"]:
            found.setdefault(event["partition"], []).append(event["runId"])
        return found

    def runs(self, **run_filter) -> list[dict]:
        result = self.query(RUNS, filter=run_filter)["runsOrError"]
        assert result["__typename"] == "Runs", result
        for run in result["results"]:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return result["results"]

    def check_executions(self, path: list[str], check_name: str) -> list[dict]:
        return self.query(CHECK_EXECUTIONS, key={"path": path}, name=check_name)["assetCheckExecutions"]

    def wait_for(self, what: str, probe, timeout: float = 300, interval: float = 2):
        """Poll `probe` until it returns something truthy; fail naming `what` and the last value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")

    def backfill(self, backfill_id: str) -> dict:
        result = self.query(
            'query B($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename '
            '... on PartitionBackfill { status numPartitions } ... on PythonError { message } } }',
            id=backfill_id,
        )["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        return result

    # Fault-injection and load tests (tests/e2e/test_faults.py, test_load.py).

    def sensor(self, location: str, name: str) -> dict:
        """The sensor's id, status and latest ticks (newest first)."""
        result = self.query(
            "query S($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename "
            "... on Sensor { id sensorState { status ticks(limit: 10) { tickId status timestamp cursor runIds } "
            "typeSpecificData { __typename ... on SensorData { lastCursor } } } } "
            "... on PythonError { message } ... on SensorNotFoundError { message } } }",
            s={"repositoryLocationName": location, "repositoryName": "__repository__", "sensorName": name},
        )["sensorOrError"]
        assert result["__typename"] == "Sensor", result
        return result

    def stop_sensor(self, location: str, name: str) -> str:
        result = self.query(
            "mutation Stop($id: String!) { stopSensor(id: $id) { __typename "
            "... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }",
            id=self.sensor(location, name)["id"],
        )["stopSensor"]
        assert result["__typename"] == "StopSensorMutationResult", result
        return result["instigationState"]["status"]

    def terminate_run(self, run_id: str) -> dict:
        result = self.query(
            "mutation T($runId: String!) { terminateRun(runId: $runId) { __typename "
            "... on TerminateRunSuccess { run { runId status } } ... on TerminateRunFailure { message } "
            "... on PythonError { message } ... on RunNotFoundError { message } ... on UnauthorizedError { message } } }",
            runId=run_id,
        )["terminateRun"]
        assert result["__typename"] == "TerminateRunSuccess", result
        return result

    def claimed_concurrency_slots(self) -> dict[str, list[dict]]:
        """Concurrency key -> slots still claimed (run id, step key)."""
        limits = self.query(
            "{ instance { concurrencyLimits { concurrencyKey claimedSlots { runId stepKey } } } }"
        )["instance"]["concurrencyLimits"]
        return {c["concurrencyKey"]: c["claimedSlots"] for c in limits}
