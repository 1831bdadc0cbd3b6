"""Which Docker Engine API calls each platform process may make through the socket proxy.

The Docker socket is root on the host. The daemon launches run containers (DockerRunLauncher:
create, start, inspect, stop), the editors' webserver terminates them (inspect, stop) and the
watchdog lists, stops and removes them and starts a killed daemon again. Everything else is
refused: exec, attach, images, volumes, networks, other projects' containers, and a container
create that would escape (privileged, added capabilities, host namespaces, devices, host paths,
volumes-from, unconfined security profiles, published ports) or that does not carry this
project's run labels.

Pure functions, no I/O: the server (docker_socket_proxy.py) looks the target container's labels
up and passes them in. Stdlib only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

PROJECT_LABEL = "io.flights-platform.project"
ROLE_LABEL = "io.flights-platform.role"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_ONEOFF_LABEL = "com.docker.compose.oneoff"  # `docker compose run` containers
# Only on containers compose created: compose labels the images it builds with project and
# service, so a container run from the instance image would otherwise pass for the daemon.
COMPOSE_CONTAINER_NUMBER_LABEL = "com.docker.compose.container-number"

ROLES = ("daemon", "webserver", "watchdog")
# Compose services of the project the watchdog may start again (it restarts a killed daemon).
WATCHDOG_STARTABLE_SERVICES = frozenset({"daemon"})

# /v1.47/containers/<id>/stop -> ("v1.47", "/containers/<id>/stop"). No %-escapes, no dots as
# path segments: what is checked is exactly what Docker routes.
_PATH = re.compile(r"^(?:/v(\d+\.\d+))?(/[A-Za-z0-9_./-]*)$")
_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_CONTAINER = re.compile(rf"^/containers/({_ID})(?:/(json|start|stop|kill))?$")
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# HostConfig keys a run container may set to a non-empty value. Anything else (Privileged,
# CapAdd, Devices, PidMode=host, VolumesFrom, Sysctls, Runtime, CgroupParent, PortBindings, ...)
# is refused unless it is empty/false. Keys with their own rule are checked below.
_HOST_CONFIG_FREE = frozenset({
    "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
    "CpusetCpus", "PidsLimit", "CapDrop", "RestartPolicy", "LogConfig", "Init", "ShmSize",
    "Ulimits", "OomScoreAdj", "AutoRemove", "ReadonlyRootfs", "Tmpfs", "ExtraHosts", "Dns",
    "DnsOptions", "DnsSearch", "StopTimeout", "Isolation",
})
_HOST_CONFIG_CHECKED = frozenset({"NetworkMode", "Binds", "Mounts", "SecurityOpt", "IpcMode",
                                  "CgroupnsMode"})
_SECURITY_OPT_ALLOWED = frozenset({"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"})


class Refused(Exception):
    """A call the policy does not allow; str() is the reason sent back to the client."""


@dataclass(frozen=True)
class Decision:
    """An allowed call. target: the container id/name whose labels must be checked before the call
    is forwarded, with the check to apply (see target_allowed)."""
    target: str | None = None
    action: str = ""


@dataclass(frozen=True)
class Policy:
    role: str
    project: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown socket-proxy role {self.role!r}; one of {', '.join(ROLES)}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.project or ""):
            raise ValueError(f"project {self.project!r} is not a compose project name")

    # --- the request line ---------------------------------------------------------------------

    def check_request(self, method: str, target: str, body: bytes) -> Decision:
        """The decision for one request, or Refused. target: the request target (path?query)."""
        path, _, query = target.partition("?")
        match = _PATH.match(path)
        if not match or "//" in path or any(seg in (".", "..") for seg in path.split("/")):
            raise Refused(f"malformed path {path!r}")
        route = match.group(2).rstrip("/") or "/"
        params = parse_qs(query, keep_blank_values=True)

        if route in ("/_ping", "/version") and method in ("GET", "HEAD"):
            return Decision()
        if route == "/containers/json" and method == "GET":
            self._check_list_filters(params)
            return Decision()
        if route == "/containers/create" and method == "POST":
            if self.role != "daemon":
                raise Refused(f"{self.role} may not create containers")
            unknown = set(params) - {"name", "platform"}
            if unknown:
                raise Refused(f"container create with query parameters {sorted(unknown)}")
            self.check_create(body)
            return Decision()
        found = _CONTAINER.match(route)
        if found:
            ident, verb = found.group(1), found.group(2)
            if verb is None and method == "DELETE":
                action = "remove"
            elif verb == "json" and method == "GET":
                action = "inspect"
            elif verb in ("start", "stop", "kill") and method == "POST":
                action = verb
            else:
                raise Refused(f"{method} {route} is not allowed")
            if action not in self._container_actions():
                raise Refused(f"{self.role} may not {action} containers")
            if action == "remove" and any(v not in ("0", "false", "False") for v in params.get("v", [])):
                raise Refused("removing a container's volumes is not allowed")
            if action == "remove" and any(v not in ("0", "false", "False") for v in params.get("link", [])):
                raise Refused("removing links is not allowed")
            return Decision(target=ident, action=action)
        raise Refused(f"{method} {route} is not allowed")

    def _container_actions(self) -> frozenset[str]:
        return {
            "daemon": frozenset({"inspect", "start", "stop"}),
            "webserver": frozenset({"inspect", "stop"}),
            "watchdog": frozenset({"inspect", "start", "stop", "kill", "remove"}),
        }[self.role]

    def _check_list_filters(self, params: dict[str, list[str]]) -> None:
        """Listing is allowed only filtered to this project's containers (the list shows every
        container's labels, image and command)."""
        raw = params.get("filters", [])
        if len(raw) != 1:
            raise Refused("container list without a filter on this project's label")
        try:
            filters = json.loads(raw[0])
        except ValueError:
            raise Refused("container list filters are not JSON") from None
        labels = filters.get("label") if isinstance(filters, dict) else None
        if isinstance(labels, dict):  # the API's other form: {"label": {"k=v": true}}
            labels = [k for k, v in labels.items() if v]
        if not isinstance(labels, list):
            raise Refused("container list without a filter on this project's label")
        mine = {f"{PROJECT_LABEL}={self.project}"}
        if self.role == "watchdog":
            mine.add(f"{COMPOSE_PROJECT_LABEL}={self.project}")
        if not mine & set(labels):
            raise Refused(f"container list must filter on label {sorted(mine)[0]}")

    # --- the container a call acts on ---------------------------------------------------------

    def target_allowed(self, action: str, labels: dict[str, str]) -> None:
        """Refused unless the container (by its labels) is one this role may act on: a run
        container of this project; for the watchdog also the project's compose services (inspect)
        and its daemon service (start)."""
        labels = labels or {}
        is_run = labels.get(PROJECT_LABEL) == self.project and labels.get(ROLE_LABEL) == "run"
        if is_run:
            return
        is_service = labels.get(COMPOSE_PROJECT_LABEL) == self.project
        if self.role == "watchdog" and is_service:
            if action == "inspect":
                return
            if (action == "start" and labels.get(COMPOSE_SERVICE_LABEL) in WATCHDOG_STARTABLE_SERVICES
                    and labels.get(COMPOSE_ONEOFF_LABEL, "False") != "True"
                    and COMPOSE_CONTAINER_NUMBER_LABEL in labels):
                return
        raise Refused(f"{self.role} may not {action} a container that is not a run container of project {self.project}")

    # --- container create ---------------------------------------------------------------------

    def check_create(self, body: bytes) -> None:
        """A run container of this project that cannot escape to the host."""
        try:
            spec = json.loads(body or b"{}")
        except ValueError:
            raise Refused("container create body is not JSON") from None
        if not isinstance(spec, dict):
            raise Refused("container create body is not a JSON object")
        labels = spec.get("Labels") or {}
        if not isinstance(labels, dict) or labels.get(PROJECT_LABEL) != self.project or labels.get(ROLE_LABEL) != "run":
            raise Refused(f"container create without labels {PROJECT_LABEL}={self.project} and {ROLE_LABEL}=run")
        host = spec.get("HostConfig") or {}
        if not isinstance(host, dict):
            raise Refused("HostConfig is not an object")
        for key, value in host.items():
            if key in _HOST_CONFIG_FREE or key in _HOST_CONFIG_CHECKED:
                continue
            if value not in (None, False, 0, "", [], {}):
                raise Refused(f"container create with HostConfig.{key}={json.dumps(value)[:80]}")
        self._check_network(host.get("NetworkMode") or "")
        endpoints = (spec.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        for name in endpoints:
            self._check_network(name)
        for mode_key, allowed in (("IpcMode", ("", "private", "none", "shareable")), ("CgroupnsMode", ("", "private"))):
            if (host.get(mode_key) or "") not in allowed:
                raise Refused(f"container create with HostConfig.{mode_key}={host.get(mode_key)!r}")
        for opt in host.get("SecurityOpt") or []:
            if opt not in _SECURITY_OPT_ALLOWED:
                raise Refused(f"container create with security option {opt!r}")
        for bind in host.get("Binds") or []:
            source = str(bind).split(":", 1)[0]
            self._check_volume(source, f"bind {bind!r}")
        for mount in host.get("Mounts") or []:
            if not isinstance(mount, dict):
                raise Refused("a mount is not an object")
            kind = mount.get("Type")
            if kind == "tmpfs":
                continue
            if kind != "volume":
                raise Refused(f"container create with a {kind} mount of {mount.get('Source')!r}: only named volumes")
            options = mount.get("VolumeOptions") or {}
            if (options.get("DriverConfig") or {}).get("Options") or (options.get("DriverConfig") or {}).get("Name") not in (None, "", "local"):
                raise Refused("container create with a volume driver configuration (it can bind host paths)")
            self._check_volume(str(mount.get("Source") or ""), f"mount of {mount.get('Source')!r}")

    def _check_network(self, name: str) -> None:
        if name in ("", "none") or name.startswith(f"{self.project}_"):
            return
        raise Refused(f"container create on network {name!r}: only this project's networks ({self.project}_*)")

    def _check_volume(self, source: str, what: str) -> None:
        if not _VOLUME_NAME.match(source):
            raise Refused(f"container create with {what}: host paths are not allowed, only named volumes")
        if not source.startswith(f"{self.project}_"):
            raise Refused(f"container create with {what}: only this project's volumes ({self.project}_*)")
