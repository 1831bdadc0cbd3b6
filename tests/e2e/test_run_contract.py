"""The run contract, written once in dagster.yaml's run launcher, holds for a real run container
of every registered location: network, labels, the shared environment by name, memory, CPU and
process limits, no capabilities, no privilege escalation, the compute-log volume, and the stop
timeout Dagster gives a terminated run."""

import json
import subprocess

import pytest
import yaml

from tests.e2e.compose_stack import LOCATION_NAMES, LOCATION_SERVICES, docker

pytestmark = pytest.mark.compose

SHARED_ENV = ["DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
              "DAGSTER_GRPC_TIMEOUT_SECONDS", "WAREHOUSE_HOST", "WAREHOUSE_PORT", "WAREHOUSE_DB", "WAREHOUSE_USER",
              "WAREHOUSE_PASSWORD"]
ASSETS = """query Assets { assetNodes { assetKey { path } isExecutable isPartitioned partitionKeys
  repository { location { name } } } }"""


def _one_asset_per_location(dagster) -> dict[str, dict]:
    """The first executable asset of each location (a partitioned one with its last partition)."""
    chosen: dict[str, dict] = {}
    for node in dagster.query(ASSETS)["assetNodes"]:
        location = node["repository"]["location"]["name"]
        if node["isExecutable"] and (not node["isPartitioned"] or node["partitionKeys"]):
            best = chosen.get(location)
            if best is None or (best["isPartitioned"] and not node["isPartitioned"]):
                chosen[location] = node
    return chosen


@pytest.fixture(scope="module")
def run_containers(stack, dagster) -> dict[str, dict]:
    """A run of every location, launched now; its container's `docker inspect` (the run need not
    succeed: the contract is about the container it ran in)."""
    assets = _one_asset_per_location(dagster)
    missing = sorted(set(LOCATION_NAMES) - set(assets))
    assert not missing, f"no executable asset found in location(s) {missing}"
    runs = {name: dagster.launch_asset_run(name, assets[name]["assetKey"]["path"],
                                           assets[name]["partitionKeys"][-1] if assets[name]["isPartitioned"] else None)
            for name in LOCATION_NAMES}
    inspected = {}
    for name, run_id in runs.items():
        dagster.wait_run(run_id, timeout=600)
        tags = {t["key"]: t["value"] for t in dagster.run(run_id)["tags"]}
        out = subprocess.run(["docker", "inspect", tags["docker/container_id"]], capture_output=True, text=True, check=True)
        inspected[name] = json.loads(out.stdout)[0]
    return inspected


@pytest.mark.parametrize("location", LOCATION_NAMES)
def test_every_run_container_keeps_the_contract(stack, run_containers, location):
    container = run_containers[location]
    host, config = container["HostConfig"], container["Config"]
    assert list(container["NetworkSettings"]["Networks"]) == [f"{stack.project}_runs"]
    labels = config["Labels"]
    assert labels["io.flights-platform.project"] == stack.project
    assert labels["io.flights-platform.role"] == "run"
    assert labels["io.flights-platform.location"] == location
    assert labels["com.docker.compose.project"] == "" and labels["com.docker.compose.service"] == ""
    env_names = [entry.split("=", 1)[0] for entry in config["Env"]]
    assert set(SHARED_ENV) <= set(env_names), sorted(set(SHARED_ENV) - set(env_names))
    assert host["Memory"] == 1024**3  # RUN_MEM_LIMIT=1g
    assert host["NanoCpus"] == 1_000_000_000  # RUN_CPUS=1.0
    assert host["PidsLimit"] == 512  # RUN_PIDS_LIMIT
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    mounts = {m["Destination"]: m for m in container["Mounts"]}
    assert mounts["/opt/dagster/compute_logs"]["Name"] == f"{stack.project}_compute_logs"


# Run in a run container's image on its networks: which of (host, port) it can open. "open" or why not.
PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def probe(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "open"
    except OSError as exc:
        return type(exc).__name__

targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(dict(zip(targets, pool.map(probe, targets)))))
"""


@pytest.mark.parametrize("location", LOCATION_NAMES)
def test_a_run_container_reaches_postgres_and_no_webserver(stack, run_containers, location):
    """The editor webserver answers GraphQL without a login on its network, so a run (any code
    a location ships) must not reach it, nor the viewer's, nor a code server: by name or by
    address. A probe in the run's image, on exactly the networks its container had, tries."""
    container = run_containers[location]
    networks = list(container["NetworkSettings"]["Networks"])
    closed = []
    for service, port in [("webserver", 3000), ("webserver-viewer", 3000), *((s, 4000) for s in LOCATION_SERVICES)]:
        closed += [f"{host}:{port}" for host in (service, *stack.service_addresses(service))]
    args = ["run", "--rm", "--cap-drop", "ALL", "--entrypoint", "python"]
    for network in networks:
        args += ["--network", network]
    out = docker(*args, container["Config"]["Image"], "-c", PROBE,
                 json.dumps(["postgres:5432", *closed]), timeout=120).stdout
    reached = json.loads(out.strip().splitlines()[-1])
    assert reached.pop("postgres:5432") == "open", f"the probe on {networks} cannot reach Postgres: {out}"
    assert set(reached) == set(closed), out
    assert not [target for target, how in reached.items() if how == "open"], reached


def test_a_location_adds_only_its_own_settings(stack, run_containers):
    """Each location's context adds its own variables and volumes on top of the contract; the
    compute-log volume is never replaced by a location's `volumes`."""
    ingestion = run_containers.get("ingestion")
    if ingestion is None:
        pytest.skip("the demo's ingestion location is not registered")
    mounts = {m["Destination"]: m for m in ingestion["Mounts"]}
    assert mounts["/opt/dagster/landing"]["Name"] == f"{stack.project}_landing"
    assert mounts["/opt/dagster/landing"]["RW"] is False
    assert "/opt/dagster/compute_logs" in mounts
    assert "LANDING_ZONE_DIR=/opt/dagster/landing" in ingestion["Config"]["Env"]


def test_terminated_runs_get_the_contract_s_stop_timeout(stack):
    """Dagster applies stop_timeout when it stops a run's container (docker stop -t), not when it
    creates it, so it is read from the launcher config the daemon launches with."""
    rendered = stack.compose("exec", "-T", "daemon", "sh", "-c", "cat $DAGSTER_HOME/dagster.yaml").stdout
    launcher = yaml.safe_load(rendered)["run_launcher"]["config"]
    assert launcher["container_kwargs"]["stop_timeout"] == 60
    assert launcher["networks"] == [f"{stack.project}_runs"]
