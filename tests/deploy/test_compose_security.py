"""docker-compose.yml keeps the attack surface README "Security" describes: the Docker socket
(root on the host) only where run containers are launched or stopped, and nothing but the
gateway published to the host."""

import re
from pathlib import Path

import pytest
import yaml
from platform_core import locations

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SOCKET = "/var/run/docker.sock"
# The socket proxies of the daemon (launches runs), the webserver (terminates them) and the
# watchdog (removes them); their clients reach Docker only through them
# (tests/deploy/socket_proxy/test_compose_wiring.py).
SOCKET_SERVICES = {"socket-proxy-webserver", "socket-proxy-daemon", "socket-proxy-watchdog"}
SOCKET_SERVICES_IF_PRESENT: set[str] = set()
PUBLISHED = {"gateway"}
# The code servers, one per registered location (dg.toml).
CODE_SERVERS = tuple(location.service for location in locations.load())
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?-)([^}]*)|:?\?[^}]*)?\}")


def with_defaults(text: str) -> str:
    """Interpolate as compose does with no variable set (defaults only)."""
    return VARIABLE.sub(lambda m: m.group(3) if m.group(2) else "", text)


def volume_target(volume) -> str:
    if isinstance(volume, dict):
        return volume.get("target", "")
    parts = with_defaults(volume).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def test_volume_parsing_sees_the_socket_behind_a_variable():
    assert volume_target("${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock") == SOCKET
    assert volume_target("compute-logs:/opt/dagster/compute_logs:ro") == "/opt/dagster/compute_logs"
    assert volume_target({"type": "bind", "source": SOCKET, "target": SOCKET}) == SOCKET


def test_only_run_launching_services_mount_the_docker_socket(services):
    mounting = {name for name, svc in services.items()
                if any(volume_target(v) == SOCKET for v in svc.get("volumes") or [])}
    assert SOCKET_SERVICES <= mounting, f"{SOCKET_SERVICES - mounting} can no longer launch/stop runs"
    expected = SOCKET_SERVICES | (SOCKET_SERVICES_IF_PRESENT & services.keys())
    assert mounting <= expected, f"the Docker socket is root on the host; also mounted in {mounting - expected}"
    assert mounting == expected
    for name in ("gateway", "webserver", "webserver-viewer", "daemon", "watchdog", "postgres", *CODE_SERVERS, "replay"):
        assert name not in mounting


def test_socket_access_is_by_group_not_privilege(services):
    for name, svc in services.items():
        assert not svc.get("privileged"), f"{name} is privileged"
        assert svc.get("network_mode") != "host", f"{name} shares the host network"
        assert svc.get("pid") != "host", f"{name} shares the host pid namespace"
    for name in SOCKET_SERVICES | (SOCKET_SERVICES_IF_PRESENT & services.keys()):
        assert services[name].get("group_add"), f"{name} needs the socket's group (DOCKER_GID), not root"


def test_only_the_gateway_publishes_a_port(services):
    publishing = {name for name, svc in services.items() if svc.get("ports")}
    assert publishing == PUBLISHED
    for name in ("postgres", "webserver", "webserver-viewer", "daemon"):
        assert not services[name].get("ports"), f"{name} publishes {services[name]['ports']}"
    # Code servers may be generated outside this file (compose.locations.yaml): where they are
    # here, they publish nothing either.
    for name in CODE_SERVERS:
        assert not services.get(name, {}).get("ports"), f"{name} publishes {services[name]['ports']}"


def test_gateway_binds_to_loopback_by_default(services):
    for port in services["gateway"]["ports"]:
        host = with_defaults(port if isinstance(port, str) else str(port.get("host_ip", "")))
        assert host.startswith("127.0.0.1:") or host == "127.0.0.1", port
