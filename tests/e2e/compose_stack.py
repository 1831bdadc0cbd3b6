"""A throwaway copy of the whole compose stack: own project name, own passwords, free port.
The UI is reached through the gateway (GATEWAY_PORT) as the admin editor from the env file."""

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from platform_core import locations

REPO = Path(__file__).resolve().parents[2]
# Every registered code location (dg.toml): its name (also its image, flights-platform/<name>:dev)
# and its compose service. Tests about one location's assets name that location instead.
LOCATIONS = locations.load()
LOCATION_NAMES = [location.name for location in LOCATIONS]
LOCATION_SERVICES = [location.service for location in LOCATIONS]
RUN_LABEL = "io.flights-platform.project"
REPLAY_SECONDS_PER_DAY = 3
REPLAY_END = "2013-01-05"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """`docker …`, captured; with check, a failure raises naming the command and its output."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComposeStack:
    def __init__(self, project: str, workdir: Path, extra_env: dict[str, str] | None = None,
                 repo: Path = REPO):
        """extra_env: more lines for the stack's env file (overrides of .env.example settings);
        repo: the checkout to bring up (a copy with a location of a test's own, say)."""
        self.project = project
        self.repo = repo
        # The code-location services are generated from the registry, as `make up` does.
        subprocess.run(["make", "-s", "locations"], cwd=repo, check=True, capture_output=True)
        self.port = free_port()
        self.admin = ("admin", secrets.token_urlsafe(18))
        self.env_file = workdir / f"{project}.env"
        self.env_file.write_text(
            "\n".join(
                [
                    f"POSTGRES_PASSWORD={secrets.token_urlsafe(18)}",
                    f"DAGSTER_PG_PASSWORD={secrets.token_urlsafe(18)}",
                    f"WAREHOUSE_PASSWORD={secrets.token_urlsafe(18)}",
                    "GATEWAY_BIND=127.0.0.1",
                    f"GATEWAY_PORT={self.port}",
                    f"GATEWAY_ADMIN_USER={self.admin[0]}",
                    f"GATEWAY_ADMIN_PASSWORD={self.admin[1]}",
                    f"DOCKER_GID={os.stat('/var/run/docker.sock').st_gid}",
                    # A fast replay of the first days of 2013 drives the live pipeline tests.
                    f"REPLAY_SECONDS_PER_DAY={REPLAY_SECONDS_PER_DAY}",
                    f"REPLAY_END={REPLAY_END}",
                    *(f"{k}={v}" for k, v in (extra_env or {}).items()),
                ]
            )
            + "\n"
        )
        # The shell's own settings must not leak into the test stack.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "WAREHOUSE_", "POSTGRES_", "WEBSERVER_", "GATEWAY_", "COMPOSE_"))}
        self.env.pop("PASSWORD", None)
        self.env["COMPOSE_PROJECT_NAME"] = project

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        cmd = ["docker", "compose", "--project-directory", str(self.repo), "-p", self.project,
               "--env-file", str(self.env_file), *args]
        result = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    @contextmanager
    def serving(self, request, then: Callable[["ComposeStack"], None] | None = None) -> Iterator["ComposeStack"]:
        """up() (and `then`, more bring-up), yield, down(); the logs are printed when the bring-up
        or any test of the session failed."""
        try:
            self.up()
            if then:
                then(self)
        except Exception:
            print(self.logs())
            self.down()
            raise
        try:
            yield self
        finally:
            if request.session.testsfailed:
                print(f"\n===== compose logs of {self.project} =====\n{self.logs()}")
            self.down()

    def up(self) -> None:
        self.compose("up", "-d", "--build", "--wait", "--wait-timeout", "300")

    def make(self, *args: str, input: str | None = None, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
        """A Makefile target (e.g. the documented `make user`) against this stack."""
        env = {**self.env, "COMPOSE_ENV_FILES": str(self.env_file)}
        result = subprocess.run(["make", "-s", *args], cwd=self.repo, env=env, input=input,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"make {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def add_user(self, name: str, role: str, password: str) -> None:
        """`make user NAME=… ROLE=… PASSWORD=…`, as the README documents it."""
        self.make("user", f"NAME={name}", f"ROLE={role}", f"PASSWORD={password}")

    def services(self) -> dict[str, dict]:
        out = self.compose("ps", "-a", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def psql(self, database: str, query: str) -> str:
        """Run one query as superuser inside the postgres service; unaligned, tuples only."""
        return self.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", database,
                            "-At", "-v", "ON_ERROR_STOP=1", "-c", query).stdout.strip()

    def run_containers(self, *filters: str) -> list[str]:
        cmd = ["docker", "ps", "-aq", "--filter", f"label={RUN_LABEL}={self.project}"]
        for f in filters:
            cmd += ["--filter", f]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()

    def write_landing_file(self, relative_path: str, content: str) -> None:
        """Drop a file into the landing volume as the upstream would (the replay's user)."""
        subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", "--user", "10001:10001",
             "-v", f"{self.project}_landing:/landing", "--entrypoint", "sh",
             "flights-platform/ingestion:dev", "-c",
             f'mkdir -p "$(dirname /landing/{relative_path})" && cat > "/landing/{relative_path}.tmp" '
             f'&& mv "/landing/{relative_path}.tmp" "/landing/{relative_path}"'],
            input=content, text=True, check=True, capture_output=True,
        )

    def set_env(self, **values: str) -> None:
        """Replace keys in this stack's env file (takes effect on the next `compose up` of a service)."""
        lines = [line for line in self.env_file.read_text().splitlines() if line.split("=", 1)[0] not in values]
        self.env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")

    def landed(self, dataset: str) -> dict[str, int]:
        """Landed day -> line count (header included) of every file of a dataset in the landing volume."""
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "-v", f"{self.project}_landing:/landing:ro",
             "--entrypoint", "sh", "flights-platform/ingestion:dev", "-c",
             f'cd /landing/{dataset} 2>/dev/null && for f in *.csv; do [ -e "$f" ] && echo "$f $(wc -l < "$f")"; done'],
            text=True, capture_output=True, check=False,
        ).stdout
        return {name.removesuffix(".csv"): int(n) for name, n in (line.split() for line in out.splitlines())}

    def read_landing_file(self, relative_path: str) -> str:
        """The file's text, or "" while it has not landed."""
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "-v", f"{self.project}_landing:/landing:ro",
             "--entrypoint", "cat", "flights-platform/ingestion:dev", f"/landing/{relative_path}"],
            text=True, check=False, capture_output=True,
        ).stdout

    def service_addresses(self, service: str) -> list[str]:
        """The IP addresses of a service's containers, on every network they are on."""
        addresses = []
        for container in self.compose("ps", "-q", service).stdout.split():
            out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container).stdout
            addresses += out.split()
        assert addresses, f"{service} has no running container with an address"
        return addresses

    def logs(self, tail: int = 200) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), check=False).stdout

    def down(self) -> None:
        ids = self.run_containers()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        # The daemon may have launched one more run while compose was stopping it; that container
        # would hold the volumes and the network.
        ids = self.run_containers()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
            self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        # Volumes a run container created before compose did are not compose's to remove.
        leftovers = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name=^{self.project}_"],
                                   capture_output=True, text=True).stdout.split()
        if leftovers:
            subprocess.run(["docker", "volume", "rm", "-f", *leftovers], capture_output=True)
        self.env_file.unlink(missing_ok=True)
