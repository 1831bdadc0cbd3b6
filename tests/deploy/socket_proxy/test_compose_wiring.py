"""docker-compose.yml wires each Docker client to its own socket proxy: the client reaches Docker
only through DOCKER_HOST on an internal network it shares with its proxy alone, the proxy's role
is the client's, and nothing else (gateway, viewer, code servers, run containers) can reach one."""

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENTS = {"webserver": "webserver", "daemon": "daemon", "watchdog": "watchdog"}  # service: role


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def networks_of(service: dict) -> set[str]:
    nets = service.get("networks") or []
    return set(nets if isinstance(nets, list) else nets.keys())


@pytest.mark.parametrize("client, role", CLIENTS.items())
def test_each_client_talks_to_its_own_proxy_only(compose, client, role):
    services = compose["services"]
    proxy_name = f"socket-proxy-{client}"
    proxy, svc = services[proxy_name], services[client]
    assert svc["environment"]["DOCKER_HOST"] == f"tcp://{proxy_name}:2375"
    assert proxy["environment"]["SOCKET_PROXY_ROLE"] == role
    assert proxy["environment"]["PLATFORM_PROJECT"] == "${COMPOSE_PROJECT_NAME}"
    (api_net,) = networks_of(proxy)
    assert compose["networks"][api_net].get("internal") is True, f"{api_net} must be internal"
    on_it = {name for name, s in services.items() if api_net in networks_of(s)}
    assert on_it == {proxy_name, client}, f"{api_net} is shared with {on_it - {proxy_name, client}}"
    assert not proxy.get("ports"), f"{proxy_name} publishes a port"
    assert svc["depends_on"][proxy_name]["condition"] == "service_healthy"


def test_the_proxies_are_unprivileged(compose):
    for name in (f"socket-proxy-{c}" for c in CLIENTS):
        proxy = compose["services"][name]
        assert proxy["cap_drop"] == ["ALL"] and proxy["read_only"] is True
        assert "no-new-privileges:true" in proxy["security_opt"]
        assert not proxy.get("privileged")


def test_no_other_service_reaches_docker(compose):
    for name, svc in compose["services"].items():
        if name in CLIENTS or name.startswith("socket-proxy-"):
            continue
        env = svc.get("environment") or {}
        assert not (isinstance(env, dict) and "DOCKER_HOST" in env), f"{name} has DOCKER_HOST"
        assert not any(n.startswith("docker-api-") for n in networks_of(svc)), f"{name} is on a Docker API network"


def test_the_run_contract_gives_run_containers_no_docker_access():
    """Run containers join only the networks dagster.yaml lists and get only the env vars it names."""
    launcher = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["run_launcher"]["config"]
    assert not any("docker-api" in n for n in launcher["networks"])
    assert "DOCKER_HOST" not in launcher["env_vars"]
