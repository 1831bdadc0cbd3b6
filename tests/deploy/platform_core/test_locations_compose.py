"""platform_core.locations_compose: compose.locations.yaml, generated from the registry. Each
location's code server extends the `code-location` template, runs its own image, hands its run
containers its `env` and volumes only (never its code_server_env), and the webserver and daemon
wait for all of them and load all of them."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from platform_core.locations import load
from platform_core.locations_compose import READY_SERVICE, render, write
from tests.deploy.platform_core.repo_copies import REPO, Reset, add_project, copy_registry, load_compose, project

LOCATIONS = load(REPO)
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()


def compose_default(variable: str) -> str:
    """The default docker-compose.yml gives ${VARIABLE:-default} on its own images."""
    defaults = set(re.findall(r"\$\{" + variable + r":-([^}]*)\}", COMPOSE_TEXT))
    assert len(defaults) == 1, f"docker-compose.yml gives {variable} defaults {defaults}"
    return defaults.pop()


@pytest.fixture(scope="module")
def rendered() -> dict:
    return load_compose(render(REPO))


@pytest.fixture
def copy(tmp_path) -> Path:
    return copy_registry(tmp_path)


def context_of(service: dict) -> dict:
    return json.loads(service["environment"].get("DAGSTER_CONTAINER_CONTEXT", "{}"))


def volume_parts(spec: str) -> tuple[str, str, str]:
    key, target, *mode = spec.split(":")
    return key, target, mode[0] if mode else "rw"


def test_it_is_valid_yaml_with_a_generated_header():
    text = render(REPO)
    assert text.startswith("# GENERATED from dg.toml")
    assert set(load_compose(text)) == {"services", "volumes", "configs"}


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_each_location_has_a_code_server_extending_the_template(rendered, location):
    service = rendered["services"][location.service]
    assert service["extends"] == {"file": "docker-compose.yml", "service": "code-location"}
    # The template's `profiles: [template]` keeps it from starting; each location resets it.
    assert service["profiles"] == Reset([])
    assert "profiles: !reset []" in render(REPO)


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_each_location_runs_its_own_image_named_as_the_stack_names_images(rendered, location):
    prefix, tag = compose_default("IMAGE_PREFIX"), compose_default("IMAGE_TAG")
    assert (prefix, tag) == ("flights-platform", "dev")
    image = f"${{IMAGE_PREFIX:-{prefix}}}/{location.name}:${{IMAGE_TAG:-{tag}}}"
    service = rendered["services"][location.service]
    assert service["image"] == image
    assert service["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    assert service["build"] == {
        "context": ".",
        "dockerfile": "deploy/docker/code-location.Dockerfile",
        "args": {"LOCATION": location.name, "PACKAGE": location.package, "MODULE": location.module,
                 "PLATFORM_EXTRAS": "${PLATFORM_EXTRAS:-}"},
    }
    assert (REPO / service["build"]["dockerfile"]).is_file()


def test_the_build_args_of_the_real_locations(rendered):
    args = {name: rendered["services"][name]["build"]["args"] for name in ("platform", "ingestion", "reporting")}
    extras = {"PLATFORM_EXTRAS": "${PLATFORM_EXTRAS:-}"}
    assert args == {
        "platform": {"LOCATION": "platform", "PACKAGE": "platform-ops", "MODULE": "platform_ops", **extras},
        "ingestion": {"LOCATION": "ingestion", "PACKAGE": "ingestion", "MODULE": "ingestion", **extras},
        "reporting": {"LOCATION": "reporting", "PACKAGE": "reporting", "MODULE": "reporting", **extras},
    }


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_the_container_context_carries_exactly_the_locations_env_and_volumes(rendered, location):
    context = context_of(rendered["services"][location.service])
    docker = context.get("docker", {})
    assert set(context) <= {"docker"} and set(docker) <= {"env_vars", "container_kwargs"}
    assert docker.get("env_vars", []) == [f"{name}={value}" for name, value in location.env.items()]
    expected_volumes = [f"${{COMPOSE_PROJECT_NAME}}_{key}:{target}:{mode}"
                        for key, target, mode in map(volume_parts, location.volumes)]
    assert docker.get("container_kwargs", {}).get("volumes", []) == expected_volumes
    for name in location.code_server_env:
        assert name not in json.dumps(context), f"{name} (code_server_env) leaked into the stored run context"


def test_the_platform_locations_webhook_stays_out_of_the_run_context(rendered):
    platform = rendered["services"]["platform"]
    assert platform["environment"]["ALERT_WEBHOOK_URL"] == "${ALERT_WEBHOOK_URL:-}"  # the code server has it
    assert platform["environment"]["RUN_RETENTION_DAYS"] == "${RUN_RETENTION_DAYS:-}"
    assert "ALERT_WEBHOOK_URL" not in platform["environment"]["DAGSTER_CONTAINER_CONTEXT"]
    assert context_of(platform) == {"docker": {"env_vars": ["RUN_RETENTION_DAYS=${RUN_RETENTION_DAYS:-}"]}}


def test_the_run_context_of_the_demo_locations(rendered):
    assert context_of(rendered["services"]["ingestion"]) == {"docker": {
        "env_vars": ["LANDING_ZONE_DIR=/opt/dagster/landing"],
        "container_kwargs": {"volumes": ["${COMPOSE_PROJECT_NAME}_landing:/opt/dagster/landing:ro"]}}}
    assert context_of(rendered["services"]["reporting"]) == {"docker": {
        "env_vars": ["REPORTS_DIR=/opt/dagster/reports"],
        "container_kwargs": {"volumes": ["${COMPOSE_PROJECT_NAME}_reports:/opt/dagster/reports:rw"]}}}


@pytest.mark.parametrize("location", LOCATIONS, ids=lambda location: location.name)
def test_the_code_server_gets_env_and_code_server_env_and_mounts_read_only(rendered, location):
    service = rendered["services"][location.service]
    for name, value in {**location.env, **location.code_server_env}.items():
        assert service["environment"][name] == value
    volumes = service.get("volumes", [])
    assert len(volumes) == len(location.volumes)
    for spec, declared in zip(volumes, location.volumes, strict=True):
        key, target, mode = volume_parts(spec)
        assert (key, target, mode) == (*volume_parts(declared)[:2], "ro"), spec


def test_named_volumes_are_named_after_the_project(rendered):
    assert rendered["volumes"] == {"landing": {"name": "${COMPOSE_PROJECT_NAME}_landing"},
                                   "reports": {"name": "${COMPOSE_PROJECT_NAME}_reports"}}


def test_companion_services_run_from_their_locations_image(rendered):
    replay = rendered["services"]["replay"]
    ingestion = next(location for location in LOCATIONS if location.name == "ingestion")
    assert replay["extends"] == {"file": "docker-compose.yml", "service": "location-service"}
    assert replay["profiles"] == Reset([])
    assert replay["image"] == rendered["services"]["ingestion"]["image"]
    assert replay["command"] == ingestion.services["replay"]["command"]
    assert replay["volumes"] == ["landing:/opt/dagster/landing"]
    assert replay["healthcheck"]["test"][0] == "CMD-SHELL"


def test_the_barrier_waits_for_every_location_to_be_healthy(rendered):
    barrier = rendered["services"][READY_SERVICE]
    assert barrier["depends_on"] == {location.service: {"condition": "service_healthy"} for location in LOCATIONS}
    assert barrier["command"] == ["true"]
    assert barrier["network_mode"] == "none"
    # One of the base images `make prepare` makes sure of: nothing to pull or build.
    base_images = re.search(r"^BASE_IMAGES := (.*)$", (REPO / "Makefile").read_text(), re.MULTILINE).group(1).split()
    assert barrier["image"] in base_images


def test_the_workspace_config_lists_every_location(rendered):
    workspace = yaml.safe_load(rendered["configs"]["workspace"]["content"])
    assert workspace == {"load_from": [
        {"grpc_server": {"host": location.service, "port": 4000, "location_name": location.name}}
        for location in LOCATIONS]}
    assert [entry["grpc_server"]["location_name"] for entry in workspace["load_from"]] == [
        "platform", "ingestion", "reporting"]


def test_no_other_services_are_generated(rendered):
    expected = {location.service for location in LOCATIONS} | {"replay", READY_SERVICE}
    assert set(rendered["services"]) == expected


# --- on copies ---------------------------------------------------------------------------------


def test_image_defaults_follow_docker_compose_yml(copy):
    compose = copy / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("${IMAGE_PREFIX:-flights-platform}", "${IMAGE_PREFIX:-acme}")
                       .replace("${IMAGE_TAG:-dev}", "${IMAGE_TAG:-2026.1}"))
    platform = load_compose(render(copy))["services"]["platform"]
    assert platform["image"] == "${IMAGE_PREFIX:-acme}/platform:${IMAGE_TAG:-2026.1}"


def test_a_compose_file_without_an_image_default_is_refused(copy):
    compose = copy / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("${IMAGE_TAG:-dev}", "${IMAGE_TAG}"))
    with pytest.raises(ValueError, match="IMAGE_TAG"):
        render(copy)


def test_an_empty_registry_is_refused(copy):
    (copy / "dg.toml").write_text('directory_type = "workspace"\n\n[workspace]\n')
    with pytest.raises(ValueError, match="registers no code location"):
        render(copy)


def test_an_underscored_location_gets_a_hyphenated_service_and_host(copy):
    add_project(copy, "code_locations/acme_sales", project(name="acme_sales"))
    document = load_compose(render(copy))
    assert "acme-sales" in document["services"] and "acme_sales" not in document["services"]
    assert document["services"][READY_SERVICE]["depends_on"]["acme-sales"] == {"condition": "service_healthy"}
    assert document["services"]["acme-sales"]["build"]["args"]["LOCATION"] == "acme_sales"
    assert document["services"]["acme-sales"]["image"].endswith("/acme_sales:${IMAGE_TAG:-dev}")
    assert yaml.safe_load(document["configs"]["workspace"]["content"])["load_from"][-1] == {
        "grpc_server": {"host": "acme-sales", "port": 4000, "location_name": "acme_sales"}}


def test_a_location_without_env_or_volumes_has_no_context(copy):
    add_project(copy, "code_locations/sales", project())
    sales = load_compose(render(copy))["services"]["sales"]
    assert "DAGSTER_CONTAINER_CONTEXT" not in sales["environment"]
    assert "volumes" not in sales


@pytest.mark.parametrize("name, service", [("code_location", "code-location"), ("location_service", "location-service"),
                                           ("code_locations_ready", READY_SERVICE), ("dagster_init", "dagster-init")])
def test_a_location_named_like_a_stack_service_is_refused(copy, name, service):
    """Compose would refuse the include ("conflicts with imported resource") or, for the barrier,
    the generator would silently replace the location's code server."""
    add_project(copy, "code_locations/x", project(name=name))
    with pytest.raises(ValueError, match=f"compose service '{service}'"):
        render(copy)


def test_two_locations_bringing_the_same_companion_are_refused(copy):
    add_project(copy, "code_locations/sales", project(
        deploy='\n[tool.flights-platform.location.services.replay]\ncommand = ["true"]\n'))
    with pytest.raises(ValueError, match="two locations define a compose service named 'replay'"):
        render(copy)


def test_write_creates_the_file_and_leaves_an_unchanged_one_alone(copy):
    target = write(copy)
    assert target == copy / "compose.locations.yaml"
    assert target.read_text() == render(copy)
    os.utime(target, (1, 1))
    write(copy)
    assert target.stat().st_mtime == 1  # not rewritten: compose sees no change
    target.write_text("stale")
    write(copy)
    assert target.read_text() == render(copy)


# --- docker compose's own reading --------------------------------------------------------------


@pytest.mark.docker
def test_docker_compose_config_accepts_the_generated_file(tmp_path):
    """Compose's own reading of docker-compose.yml with the generated include: the templates
    extended and left out, every location served. Needs the docker CLI only (no engine)."""
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.fail("the docker CLI with compose v2 is needed")
    (tmp_path / "repo").mkdir()
    copy = copy_registry(tmp_path / "repo")
    write(copy)
    env_file = tmp_path / "test.env"
    env_file.write_text("POSTGRES_PASSWORD=p1\nDAGSTER_PG_PASSWORD=p2\nWAREHOUSE_PASSWORD=p3\n")
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("COMPOSE_", "IMAGE_", "DOCKER_GID"))}
    result = subprocess.run(
        ["docker", "compose", "--env-file", str(env_file), "--project-directory", str(copy),
         "-f", str(copy / "docker-compose.yml"), "-p", "flights-cfgtest", "config", "--format", "json"],
        capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    for location in LOCATIONS:
        assert location.service in services, location.name
        service = services[location.service]
        assert service["image"] == f"flights-platform/{location.name}:dev"
        assert service["environment"]["DAGSTER_CURRENT_IMAGE"] == service["image"]
        assert "healthcheck" in service  # from the template
        assert not service.get("profiles")
        volumes = json.loads(service["environment"].get("DAGSTER_CONTAINER_CONTEXT", "{}")).get(
            "docker", {}).get("container_kwargs", {}).get("volumes", [])
        assert all(volume.startswith("flights-cfgtest_") for volume in volumes), volumes
        assert all(volume["read_only"] for volume in service.get("volumes", []))
    assert "code-location" not in services and "location-service" not in services
    assert {"replay", READY_SERVICE, "webserver", "daemon"} <= set(services)
    assert "ALERT_WEBHOOK_URL" not in services["platform"]["environment"]["DAGSTER_CONTAINER_CONTEXT"]
    assert config["volumes"]["landing"]["name"] == "flights-cfgtest_landing"
    assert "location_name: reporting" in config["configs"]["workspace"]["content"]
