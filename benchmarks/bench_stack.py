"""The harness's own throwaway stack: tests/e2e's ComposeStack plus compose.bench.yml (webserver
and Postgres on 127.0.0.1), replay off so nothing but the benchmarks makes runs, and helpers
to wait for the stack, wipe it between cold starts and sample container memory."""

import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from platform_core import locations  # noqa: E402
from tests.e2e.compose_stack import ComposeStack, free_port  # noqa: E402
from tests.e2e.dagster_graphql import DagsterGraphQL  # noqa: E402

HERE = Path(__file__).resolve().parent
# Every registered code location (dg.toml).
LOCATIONS = locations.names()
SENSOR = """query S($sel: SensorSelector!) { sensorOrError(sensorSelector: $sel) { __typename
  ... on Sensor { sensorState { id status } } } }"""
STOP_SENSOR = "mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }"
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]


class BenchStack(ComposeStack):
    def __init__(self, workdir: Path, **settings: str):
        """settings: .env overrides on top of the harness's (the soak turns the replay on)."""
        self.webserver_port, self.postgres_port = free_port(), free_port()
        super().__init__(f"flights-bench-{secrets.token_hex(3)}", workdir, extra_env={
            "REPLAY_ENABLED": "false",
            "BENCH_WEBSERVER_PORT": str(self.webserver_port),
            "BENCH_POSTGRES_PORT": str(self.postgres_port),
            # The latency benchmark opens many connections at once; the login limit is not its subject.
            "GATEWAY_LOGIN_BURST": "200",
            **settings,
        })
        self.env["COMPOSE_FILE"] = os.pathsep.join(["docker-compose.yml", str(HERE / "compose.bench.yml")])
        self.client = DagsterGraphQL(self.base_url, auth=self.admin, timeout=120)
        self.direct = DagsterGraphQL(f"http://127.0.0.1:{self.webserver_port}", timeout=120)

    @property
    def postgres_dsn(self) -> dict:
        password = re.search(r"^POSTGRES_PASSWORD=(.*)$", self.env_file.read_text(), re.M).group(1)
        return {"host": "127.0.0.1", "port": self.postgres_port, "user": "postgres", "password": password,
                "dbname": "warehouse"}

    def build(self) -> None:
        self.compose("build", timeout=1800)

    def wipe(self) -> None:
        """Stop everything and delete the volumes, keeping the env file (for the next cold start)."""
        ids = self.run_containers()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)

    def down(self) -> None:
        """ComposeStack.down, then once more for run containers the daemon started while the
        services were stopping (they hold the volumes)."""
        self.compose("stop", "--timeout", "10", "daemon", check=False)
        super().down()
        ids = self.run_containers()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        leftovers = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name=^{self.project}_"],
                                   capture_output=True, text=True).stdout.split()
        if leftovers:
            subprocess.run(["docker", "volume", "rm", "-f", *leftovers], capture_output=True)

    def wait_loaded(self, timeout: float = 300) -> None:
        self.client.wait_locations_loaded(LOCATIONS, timeout=timeout)

    def wait_quiet(self, timeout: float = 600) -> None:
        """Until no run is queued or running (e.g. the reference tables' first automation runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.client.runs(statuses=IN_FLIGHT):
                return
            time.sleep(1)
        raise RuntimeError(f"runs still in flight after {timeout}s")

    def stop_sensor(self, location: str, name: str) -> None:
        sel = {"repositoryLocationName": location, "repositoryName": "__repository__", "sensorName": name}
        state = self.client.query(SENSOR, sel=sel)["sensorOrError"]["sensorState"]
        self.client.query(STOP_SENSOR, id=state["id"])

    def usage(self, runs: bool = True) -> dict[str, tuple[float, float]]:
        """One `docker stats` of this stack's running containers by name: (memory MiB, CPU cores)
        of the services, and of the run containers unless runs=False."""
        ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}"],
                             capture_output=True, text=True, check=True).stdout.split()
        if runs:
            ids += self.run_containers("status=running")
        if not ids:
            return {}
        out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}", *ids],
                             capture_output=True, text=True, check=False).stdout
        usage = {}
        for line in out.splitlines():
            name, mem, cpu = line.split("\t")
            usage[name] = (self.parse_mib(mem.split("/")[0].strip()), float(cpu.rstrip("%") or 0) / 100)
        return usage

    def service_containers(self) -> list[str]:
        """"<full id>\t<name>" of each running service container of this stack."""
        return subprocess.run(["docker", "ps", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}", "--filter",
                               f"label=com.docker.compose.project={self.project}"],
                              capture_output=True, text=True, check=True).stdout.splitlines()

    def anon_mib(self, runs: bool = True) -> dict[str, float]:
        """Anonymous (private, non-reclaimable) memory of each running container by name, from its
        cgroup: what a leak grows. `docker stats` also counts the page cache and shared memory
        (Postgres' shared_buffers), which fill up to their bound as data grows. {} where unreadable."""
        out = self.service_containers()
        if runs:
            ids = self.run_containers("status=running")
            if ids:
                out += subprocess.run(["docker", "inspect", "-f", "{{.Id}}\t{{.Name}}", *ids], capture_output=True,
                                      text=True, check=False).stdout.replace("\t/", "\t").splitlines()
        anon = {}
        for line in out:
            container_id, name = line.split("\t")
            mib = cgroup_anon_mib(container_id)
            if mib is not None:
                anon[name] = mib
        return anon

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time each running service container has used since it started, by service, from its
        cgroup (v1 cpuacct or v2 cpu.stat, cgroupfs or systemd layout); {} where neither is readable."""
        used = {}
        for line in self.service_containers():
            container_id, name = line.split("\t")
            seconds = cgroup_cpu_seconds(container_id)
            if seconds is not None:
                used[self.service_name(name)] = seconds
        return used

    def one_shot_seconds(self) -> dict[str, float]:
        """Wall time of the services that ran and exited (preflight, init): their cgroups are gone."""
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", "status=exited", "--filter",
                              f"label=com.docker.compose.project={self.project}"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return {}
        out = subprocess.run(["docker", "inspect", "-f", "{{.Name}}\t{{.State.StartedAt}}\t{{.State.FinishedAt}}", *ids],
                             capture_output=True, text=True, check=True).stdout
        walls = {}
        for line in out.splitlines():
            name, started, finished = line.split("\t")
            walls[self.service_name(name.lstrip("/"))] = docker_time(finished) - docker_time(started)
        return walls

    def memory_mib(self, runs: bool = True) -> dict[str, float]:
        """Current memory of this stack's running containers by name (usage())."""
        return {name: mib for name, (mib, _) in self.usage(runs).items()}

    @staticmethod
    def parse_mib(value: str) -> float:
        """`docker stats` memory ("12.5MiB", "1.2GiB") in MiB."""
        number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]iB|B)", value).groups()
        return float(number) * {"B": 2**-20, "KiB": 2**-10, "MiB": 1, "GiB": 1024}[unit]

    def service_name(self, container: str) -> str:
        """flights-bench-abc123-webserver-viewer-1 -> webserver-viewer."""
        prefix = self.project + "-"
        return container[len(prefix):].rsplit("-", 1)[0] if container.startswith(prefix) else "run:" + container[:12]


def cgroup_cpu_seconds(container_id: str) -> float | None:
    return _cpu_counter([f"cpuacct/docker/{container_id}/cpuacct.usage",
                         f"cpu,cpuacct/docker/{container_id}/cpuacct.usage",
                         f"system.slice/docker-{container_id}.scope/cpu.stat",
                         f"docker/{container_id}/cpu.stat"])


def all_containers_cpu_seconds() -> float | None:
    """CPU time every Docker container used since the engine started, exited and removed ones
    included (a parent cgroup keeps its children's charge): the only way to count run containers
    that live a few seconds between two samples. None with the systemd cgroup driver (no parent)."""
    return _cpu_counter(["cpuacct/docker/cpuacct.usage", "cpu,cpuacct/docker/cpuacct.usage", "docker/cpu.stat"])


def _cpu_counter(paths: list[str]) -> float | None:
    """Seconds from the first readable of these cgroup files: v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec)."""
    for relative in paths:
        path = Path("/sys/fs/cgroup") / relative
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.name == "cpu.stat":
            return int(dict(line.split() for line in text.splitlines())["usage_usec"]) * 1e-6
        return int(text) * 1e-9
    return None


def cgroup_anon_mib(container_id: str) -> float | None:
    candidates = [
        (Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.stat"), "total_rss"),
        (Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat"), "anon"),
        (Path(f"/sys/fs/cgroup/docker/{container_id}/memory.stat"), "anon"),
    ]
    for path, key in candidates:
        try:
            stat = dict(line.split() for line in path.read_text().splitlines())
        except OSError:
            continue
        return int(stat[key]) / 2**20
    return None


def docker_time(value: str) -> float:
    """Docker's RFC 3339 nanosecond timestamps as epoch seconds."""
    whole, _, fraction = value.rstrip("Z").partition(".")
    return dt.datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00").timestamp()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
