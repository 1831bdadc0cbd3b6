"""The registry of code locations: Dagster's `dg` workspace file (dg.toml) and each project's
pyproject.toml. Everything that must know the locations (compose services, the instance's
workspace, images, tests, benchmarks) reads them here, so a location is registered by one entry.

Stdlib only: the host-side tools (make location, make prepare) run it with a bare python3."""

from __future__ import annotations

import keyword
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_FILE = "dg.toml"
# Our own table in a location's pyproject.toml: what its code server and run containers need
# beyond the platform's run contract (dagster.yaml, run_launcher).
DEPLOY_TABLE = "flights-platform"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
# Names a location cannot take: the stack's own services and packages, and words that would
# shadow a module or confuse a reader ("shared" is the library both demo locations use).
RESERVED_NAMES = frozenset({
    "postgres", "dagster_init", "webserver", "webserver_viewer", "gateway", "watchdog", "daemon",
    "replay", "preflight", "shared", "flights_shared", "platform_core", "platform_ops", "dagster", "dg",
    "deploy", "tests", "test", "benchmarks", "docs", "src", "definitions", "defs", "location",
    "locations", "workspace", "default", "all", "none", "null", "true", "false",
    # The compose services a location's service (its name, "_" as "-") must not collide with:
    # the templates it extends and the barrier compose.locations.yaml adds.
    "code_location", "location_service", "code_locations_ready",
    # The monitoring profile's services (README "Monitoring").
    "monitoring_exporter", "monitoring_prometheus", "monitoring_alertmanager",
    # The Docker socket proxies (deploy/socket_proxy/).
    "socket_proxy_daemon", "socket_proxy_webserver", "socket_proxy_watchdog",
})  # fmt: skip


class LocationError(ValueError):
    """The registry or a location's project is malformed, or a name is refused; says which."""


@dataclass(frozen=True)
class Location:
    name: str  # the code location's name, also its image name
    path: Path  # its project folder, relative to the repository root
    module: str  # the Python package whose `definitions` module holds `defs`
    package: str  # its distribution name in the uv workspace (`uv sync --package`)
    env: dict[str, str] = field(default_factory=dict)  # code server and run containers
    code_server_env: dict[str, str] = field(default_factory=dict)  # code server only
    volumes: tuple[str, ...] = ()
    # Services the location brings along, run from its image (compose keys, e.g. the demo replay).
    services: dict[str, dict] = field(default_factory=dict)

    @property
    def definitions_module(self) -> str:
        return f"{self.module}.definitions"

    @property
    def service(self) -> str:
        """Its compose service, also the code server's host name: no "_" in DNS names."""
        return self.name.replace("_", "-")


def repo_root(start: Path | None = None) -> Path:
    """The folder holding dg.toml, searched upwards from `start` (default: the working directory,
    where make runs, then this package's checkout)."""
    candidates = [start] if start else [Path.cwd(), Path(__file__).resolve()]
    for candidate in candidates:
        for folder in [candidate, *candidate.parents]:
            if (folder / REGISTRY_FILE).is_file():
                return folder
    raise LocationError(f"no {REGISTRY_FILE} found above {candidates[0]}: run this inside the repository")


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocationError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise LocationError(f"{path} is not valid TOML: {exc}") from None


def registered_paths(root: Path) -> list[str]:
    """The project paths dg.toml lists, in order."""
    data = _read_toml(root / REGISTRY_FILE)
    projects = data.get("workspace", {}).get("projects", [])
    paths = []
    for entry in projects:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise LocationError(f"{root / REGISTRY_FILE}: every [[workspace.projects]] needs a path, got {entry!r}")
        paths.append(entry["path"])
    return paths


def _location(root: Path, relative: str) -> Location:
    pyproject = root / relative / "pyproject.toml"
    data = _read_toml(pyproject)
    project = data.get("tool", {}).get("dg", {}).get("project")
    if not isinstance(project, dict) or not project.get("root_module"):
        raise LocationError(f"{pyproject} has no [tool.dg.project] root_module: is {relative} a Dagster project?")
    module = project["root_module"]
    name = project.get("code_location_name") or data.get("project", {}).get("name", "")
    if not NAME_RE.match(name):
        raise LocationError(f"{pyproject}: code location name {name!r} must be a lowercase identifier")
    deploy = data.get("tool", {}).get(DEPLOY_TABLE, {}).get("location", {})
    env = deploy.get("env", {})
    code_server_env = deploy.get("code_server_env", {})
    volumes = deploy.get("volumes", [])
    for table_name, table in (("env", env), ("code_server_env", code_server_env)):
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise LocationError(f"{pyproject}: [tool.{DEPLOY_TABLE}.location] {table_name} must map names to strings")
    if not isinstance(volumes, list) or not all(isinstance(v, str) and v.count(":") in (1, 2) for v in volumes):
        raise LocationError(f"{pyproject}: [tool.{DEPLOY_TABLE}.location] volumes must be 'volume:/path[:ro]' strings")
    services = deploy.get("services", {})
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise LocationError(f"{pyproject}: [tool.{DEPLOY_TABLE}.location.services.NAME] must be tables of compose keys")
    package = data.get("project", {}).get("name", "")
    return Location(name=name, path=Path(relative), module=module, package=package, env=dict(env),
                    code_server_env=dict(code_server_env), volumes=tuple(volumes), services=dict(services))


def load(root: Path | None = None) -> list[Location]:
    """Every registered location, in dg.toml's order; refuses duplicates by name."""
    root = root or repo_root()
    locations = [_location(root, relative) for relative in registered_paths(root)]
    seen: set[str] = set()
    for location in locations:
        if location.name in seen:
            raise LocationError(f"{root / REGISTRY_FILE}: two projects are both named {location.name!r}")
        seen.add(location.name)
    return locations


def names(root: Path | None = None) -> list[str]:
    return [location.name for location in load(root)]


def check_new_name(name: str, root: Path) -> None:
    """A new location's name: a lowercase identifier, free, and not a reserved word."""
    if not NAME_RE.match(name or ""):
        raise LocationError(
            f"location name {name!r} is not valid: use a lowercase identifier (a-z, 0-9, _; starting "
            "with a letter; at most 30 characters), e.g. sales or sales_reports"
        )
    if name in RESERVED_NAMES or keyword.iskeyword(name) or name in sys.stdlib_module_names:
        raise LocationError(f"location name {name!r} is reserved (a service, package, Python keyword or standard module): choose another")
    if name in names(root):
        raise LocationError(f"location {name!r} already exists ({REGISTRY_FILE}): choose another name or remove it first")
    if (root / "code_locations" / name).exists():
        raise LocationError(f"code_locations/{name} already exists but is not registered in {REGISTRY_FILE}: move it away or register it")
    taken = _installed_as(name, root)
    if taken:
        raise LocationError(f"location name {name!r} is taken by {taken}: its package would shadow that one; choose another")


def _installed_as(name: str, root: Path) -> str | None:
    """What already goes by `name` in this workspace's Python environment: a locked distribution
    (uv.lock, other than a leftover of code_locations/<name> itself) or, when the venv exists, a
    top-level module of its site-packages (yaml, grpc, ...). The template names the location's
    distribution and module after it."""
    wanted = re.sub(r"[-_.]+", "-", name)
    lock = root / "uv.lock"
    if lock.is_file():
        for package in _read_toml(lock).get("package", []):
            source = package.get("source", {})
            own = source.get("editable") == f"code_locations/{name}" or source.get("virtual") == f"code_locations/{name}"
            if re.sub(r"[-_.]+", "-", str(package.get("name", "")).lower()) == wanted and not own:
                return f"the package {package['name']!r} in uv.lock"
    for site_packages in (root / ".venv" / "lib").glob("python3*/site-packages"):
        if (site_packages / name).is_dir() or any(site_packages.glob(f"{name}.py")) or any(site_packages.glob(f"{name}.*.so")):
            return f"the module {name!r} installed in .venv"
    return None
