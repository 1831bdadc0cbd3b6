"""The Docker socket proxies on the shared stack: the daemon, webserver and watchdog have no Docker
socket, only DOCKER_HOST to their own proxy; through it a privileged container, a bind mount of
`/` and an exec into a service are refused with the proxy's reason (as docker-py raises it), while
a run is still launched (and succeeds) through the daemon's proxy. Services without Docker access
(code servers, the viewer) cannot reach a proxy at all."""

import json

import pytest

from tests.e2e.compose_stack import LOCATION_SERVICES

pytestmark = pytest.mark.compose

# Run inside a client container with docker-py (the instance image): each forbidden call's outcome.
ATTEMPTS = r"""
import json, os, sys
import docker
project, postgres_id = sys.argv[1], sys.argv[2]
client = docker.from_env(timeout=30)
labels = {"io.flights-platform.project": project, "io.flights-platform.role": "run"}
image = "flights-platform/dagster:dev"
net = project + "_platform"
attempts = {
    "privileged": lambda: client.containers.create(image, "true", labels=labels, network=net, privileged=True),
    "bind_root": lambda: client.containers.create(image, "true", labels=labels, network=net, volumes=["/:/host"]),
    "exec_postgres": lambda: client.api.exec_create(postgres_id, ["id"]),
    "unfiltered_list": lambda: client.containers.list(all=True),
    "pull": lambda: client.images.pull("alpine", tag="latest"),
}
out = {"socket_mounted": os.path.exists("/var/run/docker.sock"),
       "docker_host": os.environ.get("DOCKER_HOST"),
       "ping": client.ping()}
for name, call in attempts.items():
    try:
        call()
        out[name] = {"allowed": True}
    except docker.errors.APIError as exc:
        out[name] = {"status": exc.response.status_code, "message": exc.explanation}
print(json.dumps(out))
"""

REACH = r"""
import socket, sys
for host in sys.argv[1:]:
    try:
        socket.create_connection((host, 2375), timeout=3).close()
        print(host, "reachable")
    except OSError as exc:
        print(host, "unreachable", type(exc).__name__)
"""

PROXIES = ["socket-proxy-daemon", "socket-proxy-webserver", "socket-proxy-watchdog"]


def attempt_from(stack, service: str) -> dict:
    postgres_id = stack.compose("ps", "-q", "postgres").stdout.strip()
    result = stack.compose("exec", "-T", service, "python", "-c", ATTEMPTS, stack.project, postgres_id)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("service", ["daemon", "webserver", "watchdog"])
def test_forbidden_calls_are_refused_through_each_clients_proxy(stack, service):
    out = attempt_from(stack, service)
    assert out["socket_mounted"] is False, f"{service} still mounts the Docker socket"
    assert out["docker_host"] == f"tcp://socket-proxy-{service}:2375"
    assert out["ping"] is True
    for name in ("privileged", "bind_root", "exec_postgres", "unfiltered_list", "pull"):
        assert out[name].get("status") == 403, f"{service}: {name} was not refused: {out[name]}"
        assert out[name]["message"].startswith("socket proxy: "), out[name]
    if service == "daemon":  # the one client that may create: refused for what the body asks
        assert "Privileged" in out["privileged"]["message"]
        assert "host paths are not allowed" in out["bind_root"]["message"]
    else:
        assert f"{service} may not create containers" in out["privileged"]["message"]


def test_nothing_else_reaches_a_proxy(stack):
    for service in [*LOCATION_SERVICES, "webserver-viewer"]:
        result = stack.compose("exec", "-T", service, "python", "-c", REACH, *PROXIES)
        assert "reachable" in result.stdout and not any(
            line.endswith(" reachable") for line in result.stdout.splitlines()), f"{service}: {result.stdout}"
    # Each client reaches its own proxy only.
    result = stack.compose("exec", "-T", "webserver", "python", "-c", REACH, *PROXIES)
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["socket-proxy-webserver"] == "reachable"
    assert lines["socket-proxy-daemon"].startswith("unreachable") and lines["socket-proxy-watchdog"].startswith("unreachable")


def test_runs_are_still_launched_through_the_daemons_proxy(stack, finished_run):
    logs = stack.compose("logs", "--no-color", "socket-proxy-daemon").stdout
    assert "POST /v1.47/containers/create" in logs or "/containers/create" in logs, logs[-2000:]
    assert "/start" in logs
    # The gateway publishes the only port; the proxies publish none.
    for proxy in PROXIES:
        assert stack.compose("port", proxy, "2375", check=False).stdout.strip() in ("", ":0")
