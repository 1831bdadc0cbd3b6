"""The socket proxy's policy (deploy/socket_proxy/docker_api_policy.py): what each client may ask
Docker, checked on the request bodies docker-py really sends (no Docker needed)."""

import json
import sys
from pathlib import Path

import docker
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "deploy" / "socket_proxy"))
from docker_api_policy import Policy, Refused  # noqa: E402

PROJECT = "flights"
RUN_LABELS = {"io.flights-platform.project": PROJECT, "io.flights-platform.role": "run"}


def create_body(**kwargs) -> bytes:
    """The body docker-py POSTs to /containers/create for containers.create(**kwargs)."""
    client = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.47")
    sent = {}

    def capture(config, name=None, platform=None):
        sent["config"] = config
        raise RuntimeError("captured")

    client.api.create_container_from_config = capture
    with pytest.raises(RuntimeError, match="captured"):
        client.containers.create(**kwargs)
    return json.dumps(sent["config"]).encode()


def launcher_kwargs(**extra) -> dict:
    """What DockerRunLauncher passes for a run under dagster.yaml's run contract plus a
    location's volumes (platform_core.locations_compose)."""
    kwargs = dict(
        image="flights-platform/ingestion:dev", command=["dagster", "api", "execute_run", "{}"], detach=True,
        environment={"DAGSTER_PG_HOST": "postgres", "DAGSTER_RUN_JOB_NAME": "__ASSET_JOB"},
        network=f"{PROJECT}_runs",
        labels={**RUN_LABELS, "com.docker.compose.project": "", "com.docker.compose.service": "",
                "dagster/run_id": "abc", "dagster/job_name": "__ASSET_JOB"},
        mounts=[docker.types.Mount(target="/opt/dagster/compute_logs", source=f"{PROJECT}_compute_logs", type="volume")],
        volumes=[f"{PROJECT}_landing:/opt/dagster/landing:ro"],
        mem_limit="2g", nano_cpus=1_000_000_000, pids_limit=512, cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
    )
    kwargs.update(extra)
    return kwargs


@pytest.fixture
def daemon() -> Policy:
    return Policy("daemon", PROJECT)


def refused(policy: Policy, method: str, target: str, body: bytes = b"") -> str:
    with pytest.raises(Refused) as info:
        policy.check_request(method, target, body)
    return str(info.value)


def test_the_run_launchers_create_is_allowed(daemon):
    decision = daemon.check_request("POST", "/v1.47/containers/create", create_body(**launcher_kwargs()))
    assert decision.target is None


@pytest.mark.parametrize("extra, why", [
    ({"privileged": True}, "Privileged"),
    ({"cap_add": ["SYS_ADMIN"]}, "CapAdd"),
    ({"network_mode": "host", "network": None}, "network 'host'"),
    ({"pid_mode": "host"}, "PidMode"),
    ({"ipc_mode": "host"}, "IpcMode"),
    ({"userns_mode": "host"}, "UsernsMode"),
    ({"devices": ["/dev/sda:/dev/sda"]}, "Devices"),
    ({"volumes": ["/:/host"]}, "host paths"),
    ({"volumes": {"/": {"bind": "/host", "mode": "rw"}}}, "host paths"),
    ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "host paths"),
    ({"volumes": ["other_postgres_data:/data"]}, "only this project's volumes"),
    ({"mounts": [docker.types.Mount(target="/host", source="/", type="bind")]}, "bind mount"),
    ({"mounts": [docker.types.Mount(target="/h", source=f"{PROJECT}_x", type="volume",
                                    driver_config=docker.types.DriverConfig("local", {"o": "bind", "device": "/", "type": "none"}))]},
     "driver configuration"),
    ({"volumes_from": ["flights-socket-proxy-daemon-1"]}, "VolumesFrom"),
    ({"security_opt": ["seccomp=unconfined"]}, "seccomp=unconfined"),
    ({"security_opt": ["apparmor=unconfined"]}, "apparmor"),
    ({"sysctls": {"kernel.shmmax": "1"}}, "Sysctls"),
    ({"ports": {"80/tcp": 8080}}, "PortBindings"),
    ({"cgroup_parent": "/"}, "CgroupParent"),
    ({"runtime": "runc-privileged"}, "Runtime"),
    ({"network": "bridge"}, "network 'bridge'"),
    ({"labels": {"io.flights-platform.project": "other", "io.flights-platform.role": "run"}}, "without labels"),
    ({"labels": {}}, "without labels"),
])
def test_escaping_creates_are_refused(daemon, extra, why):
    assert why in refused(daemon, "POST", "/v1.47/containers/create", create_body(**launcher_kwargs(**extra)))


def test_create_body_must_be_a_json_object(daemon):
    assert "not JSON" in refused(daemon, "POST", "/containers/create", b"{")
    assert "not a JSON object" in refused(daemon, "POST", "/containers/create", b"[]")


def test_only_the_daemon_creates(daemon):
    body = create_body(**launcher_kwargs())
    for role in ("webserver", "watchdog"):
        assert "may not create" in refused(Policy(role, PROJECT), "POST", "/containers/create", body)
    assert "query parameters" in refused(daemon, "POST", "/containers/create?name=x&fromImage=y", body)


@pytest.mark.parametrize("method, target", [
    ("POST", "/v1.47/containers/abc/exec"),
    ("POST", "/v1.47/exec/abc/start"),
    ("POST", "/v1.47/containers/abc/attach?stream=1"),
    ("GET", "/v1.47/containers/abc/logs"),
    ("POST", "/v1.47/images/create?fromImage=alpine"),
    ("POST", "/v1.47/volumes/create"),
    ("POST", "/v1.47/networks/flights_platform/connect"),
    ("POST", "/v1.47/build"),
    ("GET", "/v1.47/events"),
    ("POST", "/v1.47/containers/abc/update"),
    ("PUT", "/v1.47/containers/abc/archive?path=/"),
    ("POST", "/v1.47/swarm/init"),
    ("GET", "/v1.47/containers/../exec"),
    ("GET", "/v1.47/containers/a%2Fb/json"),
    ("GET", "/v1.47//containers/abc/json"),
])
def test_everything_else_is_refused_for_every_role(method, target):
    for role in ("daemon", "webserver", "watchdog"):
        refused(Policy(role, PROJECT), method, target)


def test_ping_and_version_for_everyone():
    for role in ("daemon", "webserver", "watchdog"):
        for target in ("/_ping", "/version", "/v1.47/version", "/v1.47/_ping"):
            Policy(role, PROJECT).check_request("GET", target, b"")
        Policy(role, PROJECT).check_request("HEAD", "/_ping", b"")


@pytest.mark.parametrize("role, allowed", [
    ("daemon", {"inspect", "start", "stop"}),
    ("webserver", {"inspect", "stop"}),
    ("watchdog", {"inspect", "start", "stop", "kill", "remove"}),
])
def test_container_actions_per_role(role, allowed):
    policy = Policy(role, PROJECT)
    calls = {"inspect": ("GET", "/v1.47/containers/abc/json"), "start": ("POST", "/v1.47/containers/abc/start"),
             "stop": ("POST", "/v1.47/containers/abc/stop?t=60"), "kill": ("POST", "/v1.47/containers/abc/kill?signal=SIGTERM"),
             "remove": ("DELETE", "/v1.47/containers/abc?v=False&link=False&force=False")}
    for action, (method, target) in calls.items():
        if action in allowed:
            decision = policy.check_request(method, target, b"")
            assert (decision.target, decision.action) == ("abc", action)
        else:
            assert f"may not {action}" in refused(policy, method, target)


def test_removing_volumes_is_refused():
    assert "volumes" in refused(Policy("watchdog", PROJECT), "DELETE", "/containers/abc?v=1")


def test_actions_only_on_this_projects_run_containers():
    other_run = {"io.flights-platform.project": "other", "io.flights-platform.role": "run"}
    service = {"com.docker.compose.project": PROJECT, "com.docker.compose.service": "daemon"}
    for role in ("daemon", "webserver", "watchdog"):
        policy = Policy(role, PROJECT)
        policy.target_allowed("stop", RUN_LABELS)
        policy.target_allowed("inspect", RUN_LABELS)
        for labels in (other_run, {}, {"com.docker.compose.project": "other"}):
            with pytest.raises(Refused, match="not a run container of project flights"):
                policy.target_allowed("inspect", labels)
    with pytest.raises(Refused):
        Policy("daemon", PROJECT).target_allowed("inspect", service)


def test_the_watchdog_sees_the_projects_services_and_starts_only_the_daemon():
    watchdog = Policy("watchdog", PROJECT)
    daemon_svc = {"com.docker.compose.project": PROJECT, "com.docker.compose.service": "daemon",
                  "com.docker.compose.container-number": "1"}
    postgres = {"com.docker.compose.project": PROJECT, "com.docker.compose.service": "postgres"}
    watchdog.target_allowed("inspect", postgres)
    watchdog.target_allowed("start", daemon_svc)
    for action in ("start", "stop", "kill", "remove"):
        with pytest.raises(Refused):
            watchdog.target_allowed(action, postgres)
    for action in ("stop", "kill", "remove"):
        with pytest.raises(Refused):
            watchdog.target_allowed(action, daemon_svc)
    with pytest.raises(Refused):  # a `compose run daemon ...` one-off is not the service
        watchdog.target_allowed("start", {**daemon_svc, "com.docker.compose.oneoff": "True"})
    # Compose labels the images it builds with project and service: a container merely run from
    # the instance image carries them too, but not the container number compose gives its own.
    from_image = {k: v for k, v in daemon_svc.items() if k != "com.docker.compose.container-number"}
    with pytest.raises(Refused):
        watchdog.target_allowed("start", from_image)


def test_listing_must_filter_on_the_project():
    def listing(filters):
        return "/v1.47/containers/json?all=1&filters=" + json.dumps(filters)

    watchdog = Policy("watchdog", PROJECT)
    # The watchdog's own filters (deploy/ops/platform_watchdog.py RunContainerPruner).
    watchdog.check_request("GET", listing({"label": [f"io.flights-platform.project={PROJECT}", "io.flights-platform.role=run"]}), b"")
    watchdog.check_request("GET", listing({"label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=daemon"]}), b"")
    assert "filter" in refused(watchdog, "GET", "/v1.47/containers/json?all=1")
    assert "must filter" in refused(watchdog, "GET", listing({"label": ["io.flights-platform.project=other"]}))
    assert "must filter" in refused(Policy("daemon", PROJECT), "GET", listing({"label": [f"com.docker.compose.project={PROJECT}"]}))


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="unknown socket-proxy role 'root'"):
        Policy("root", PROJECT)
    with pytest.raises(ValueError, match="not a compose project name"):
        Policy("daemon", "")
