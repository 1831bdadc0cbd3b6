"""`make dev LOCATION=…`: `dagster dev` for one location on this machine, the way Dagster users
develop, with nothing of the stack touched.

The instance is a local one (SQLite under .dagster_dev/home, Dagster's default), the warehouse a
local Postgres container of its own (127.0.0.1:DEV_POSTGRES_PORT, data kept in a volume between
sessions), and the location's own settings from its pyproject.toml, container paths mapped under
.dagster_dev/. Edit the code and reload the location in the UI."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from platform_core import settings
from platform_core.locations import Location, LocationError, load, repo_root

UI_PORT = settings.integer("DEV_PORT", 3001, minimum=1, maximum=65535, doc="port of `make dev`'s UI on 127.0.0.1")
POSTGRES_PORT = settings.integer("DEV_POSTGRES_PORT", 5433, minimum=1, maximum=65535,
                                 doc="port of `make dev`'s own Postgres (the warehouse) on 127.0.0.1")
POSTGRES_IMAGE = "postgres:17-trixie"
CONTAINER_PATH = "/opt/dagster/"
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def local_value(value: str, home: Path) -> str:
    """A location setting as this machine sees it: ${NAME:-default} from the shell, container
    paths under .dagster_dev/."""
    value = INTERPOLATION.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
    if value.startswith(CONTAINER_PATH):
        local = home / value.removeprefix(CONTAINER_PATH)
        local.mkdir(parents=True, exist_ok=True)
        return str(local)
    return value


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def local_postgres(home: Path, port: int) -> dict[str, str]:
    """Start (or reuse) the dev warehouse; returns its WAREHOUSE_* settings."""
    password_file = home / "postgres.password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(18))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    name = f"flights-dev-postgres-{port}"
    if _docker("inspect", name).returncode != 0:
        started = _docker("run", "-d", "--name", name, "--label", "flights-platform.dev=postgres",
                          "-e", f"POSTGRES_PASSWORD={password}", "-e", "POSTGRES_DB=warehouse",
                          "-p", f"127.0.0.1:{port}:5432", "-v", f"{name}:/var/lib/postgresql/data", POSTGRES_IMAGE)
        if started.returncode != 0:
            raise SystemExit(f"make dev: could not start the local Postgres ({POSTGRES_IMAGE}): {started.stderr.strip()}")
    else:
        _docker("start", name)
    deadline = time.monotonic() + 60
    while _docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "warehouse").returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"make dev: the local Postgres {name} did not get ready in 60 s (docker logs {name})")
        time.sleep(0.5)
    return {"WAREHOUSE_HOST": "127.0.0.1", "WAREHOUSE_PORT": str(port), "WAREHOUSE_DB": "warehouse",
            "WAREHOUSE_USER": "postgres", "WAREHOUSE_PASSWORD": password}


def workspace_file(root: Path, location: Location, home: Path) -> Path:
    """A workspace of this one location. `dagster dev -m MODULE` names the location after its
    module (platform_ops.definitions) and has no option to name it otherwise; the workspace's
    `location_name` names it as the stack does (platform). JSON is YAML."""
    path = home / f"workspace.{location.name}.yaml"
    entry = {"module_name": location.definitions_module, "location_name": location.name,
             "working_directory": str(root / location.path)}
    path.write_text(json.dumps({"load_from": [{"python_module": entry}]}, indent=2) + "\n", encoding="utf-8")
    return path


def command(workspace: Path, port: int) -> list[str]:
    return ["dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]


def main(argv: list[str]) -> int:
    root = repo_root()
    by_name = {location.name: location for location in load(root)}
    if len(argv) != 1 or argv[0] not in by_name:
        raise SystemExit(f"usage: make dev LOCATION=<name>; registered: {', '.join(by_name)}")
    location = by_name[argv[0]]
    try:
        ui_port, pg_port = UI_PORT.get(), POSTGRES_PORT.get()
    except settings.SettingError as exc:
        raise SystemExit(f"make dev: {exc}") from None
    home = root / ".dagster_dev"
    (home / "home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home / "home"), **local_postgres(home, pg_port)}
    env.update({name: local_value(value, home) for name, value in {**location.env, **location.code_server_env}.items()})
    print(f"make dev: {location.name} at http://127.0.0.1:{ui_port} (instance {home / 'home'}, "
          f"warehouse 127.0.0.1:{pg_port})", flush=True)
    argv = command(workspace_file(root, location, home), ui_port)
    os.chdir(root / location.path)
    os.execvpe(argv[0], argv, env)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LocationError as exc:
        raise SystemExit(f"make dev: {exc}") from None
