"""compose.locations.yaml: one code-server service per registered location, the barrier the
webserver and daemon wait on, and the workspace they load, all generated from the registry.

Compose cannot loop over a list, so this file is generated (by `make prepare`, `make up`,
`make location`), git-ignored, and `include`d by docker-compose.yml. Everything a location has
in common with the others is the `code-location` template service in docker-compose.yml (which
each generated service extends) and the run contract in dagster.yaml; only what a location
declares in its own pyproject.toml ([tool.flights-platform.location]) is added here."""

from __future__ import annotations

import json
import re
from pathlib import Path

from platform_core.locations import Location, load, repo_root

OUTPUT = "compose.locations.yaml"
ROOT_COMPOSE = "docker-compose.yml"
TEMPLATE_SERVICE = "code-location"
COMPANION_TEMPLATE = "location-service"
READY_SERVICE = "code-locations-ready"
CODE_SERVER_PORT = 4000
# Where run containers and code servers mount a location's named volumes from: compose names
# them <project>_<key>; DockerRunLauncher needs the real name.
PROJECT = "${COMPOSE_PROJECT_NAME}"
# The barrier only runs `true`: the base image every other image is built on is always there.
READY_IMAGE = "python:3.13-slim-trixie"


def _default_of(compose_text: str, variable: str) -> str:
    """The `${VARIABLE:-default}` default docker-compose.yml writes, so the generated services
    name images exactly as the rest of the stack without a second copy of the default."""
    match = re.search(r"\$\{" + variable + r":-([^}]*)\}", compose_text)
    if not match:
        raise ValueError(f"{ROOT_COMPOSE} has no ${{{variable}:-default}}: cannot name the location images")
    return match.group(1)


def _root_services(compose_text: str) -> set[str]:
    """The services docker-compose.yml defines itself (the keys of its top-level `services:`,
    indented two spaces): a generated service of the same name would conflict with it."""
    block = re.search(r"^services:[^\n]*\n(.*?)(?=^[^\s#]|\Z)", compose_text, re.MULTILINE | re.DOTALL)
    return set(re.findall(r"^  ([A-Za-z0-9][A-Za-z0-9_.-]*):", block.group(1), re.MULTILINE)) if block else set()


def image_reference(compose_text: str, location: Location) -> str:
    prefix = _default_of(compose_text, "IMAGE_PREFIX")
    tag = _default_of(compose_text, "IMAGE_TAG")
    return f"${{IMAGE_PREFIX:-{prefix}}}/{location.name}:${{IMAGE_TAG:-{tag}}}"


def _volume_parts(spec: str) -> tuple[str, str, str]:
    key, target, *mode = spec.split(":")
    return key, target, (mode[0] if mode else "rw")


def container_context(location: Location) -> dict:
    """What this location's run containers get on top of the run launcher's contract: its own
    environment and volumes only (Dagster appends env_vars and merges container_kwargs). The
    context is stored with every run, so code_server_env (secrets such as a webhook URL, settings
    only sensors read) stays out of it."""
    docker: dict = {}
    if location.env:
        docker["env_vars"] = [f"{name}={value}" for name, value in location.env.items()]
    if location.volumes:
        docker["container_kwargs"] = {
            "volumes": [f"{PROJECT}_{key}:{target}:{mode}"
                        for key, target, mode in map(_volume_parts, location.volumes)]
        }
    return {"docker": docker} if docker else {}


def service(compose_text: str, location: Location) -> dict:
    image = image_reference(compose_text, location)
    environment = {"DAGSTER_CURRENT_IMAGE": image, **location.env, **location.code_server_env}
    context = container_context(location)
    if context:
        environment["DAGSTER_CONTAINER_CONTEXT"] = json.dumps(context, separators=(",", ":"))
    entry: dict = {
        "extends": {"file": ROOT_COMPOSE, "service": TEMPLATE_SERVICE},
        "profiles": "!reset []",
        "image": image,
        "build": {
            "context": ".",
            "dockerfile": "deploy/docker/code-location.Dockerfile",
            "args": {"LOCATION": location.name, "PACKAGE": location.package, "MODULE": location.module,
                     # `make images` builds the Kubernetes variant with PLATFORM_EXTRAS=kubernetes.
                     "PLATFORM_EXTRAS": "${PLATFORM_EXTRAS:-}"},
        },
        "environment": environment,
    }
    if location.volumes:
        # The code server only loads code (sensors may read); writing is the run's business.
        entry["volumes"] = [f"{key}:{target}:ro" for key, target, _ in map(_volume_parts, location.volumes)]
    return entry


def companions(compose_text: str, location: Location) -> dict[str, dict]:
    """The location's own extra services, each run from its image."""
    image = image_reference(compose_text, location)
    return {
        name: {"extends": {"file": ROOT_COMPOSE, "service": COMPANION_TEMPLATE}, "profiles": "!reset []",
               "image": image, **keys}
        for name, keys in location.services.items()
    }


def _named_volumes(location: Location) -> set[str]:
    specs = [*location.volumes]
    for keys in location.services.values():
        specs += [v for v in keys.get("volumes", []) if isinstance(v, str) and not v.startswith((".", "/"))]
    return {_volume_parts(spec)[0] for spec in specs}


def workspace_yaml(locations: list[Location]) -> str:
    """The workspace the webserver and daemon load: every location's gRPC server."""
    lines = ["load_from:"]
    for location in locations:
        lines.append(
            f"  - grpc_server: {{host: {location.service}, port: {CODE_SERVER_PORT}, "
            f"location_name: {location.name}}}"
        )
    return "\n".join(lines) + "\n"


def _scalar(value) -> str:
    if isinstance(value, str) and value.startswith("!reset"):
        return value
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def _emit(value, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_emit(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")  # empty {} and [] as JSON too
    else:
        for item in value:
            if isinstance(item, (dict, list)):
                nested = _emit(item, indent + 2)
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return lines


def render(root: Path) -> str:
    locations = load(root)
    if not locations:
        raise ValueError("dg.toml registers no code location: the webserver would have nothing to load")
    compose_text = (root / ROOT_COMPOSE).read_text(encoding="utf-8")
    services: dict[str, dict] = {}
    taken = _root_services(compose_text) | {READY_SERVICE}
    for location in locations:
        for name, entry in {location.service: service(compose_text, location),
                            **companions(compose_text, location)}.items():
            if name in services:
                raise ValueError(f"two locations define a compose service named {name!r}")
            if name in taken:
                owner = "this generator's barrier" if name == READY_SERVICE else ROOT_COMPOSE
                raise ValueError(f"location {location.name!r} would define the compose service {name!r}, "
                                 f"which {owner} already defines: rename the location")
            services[name] = entry
    services[READY_SERVICE] = {
        # One-shot: done once every code server serves, so the webserver and daemon start after
        # all locations loaded without docker-compose.yml naming them.
        "image": READY_IMAGE,
        "command": ["true"],
        "network_mode": "none",
        "depends_on": {location.service: {"condition": "service_healthy"} for location in locations},
    }
    volumes = sorted(set().union(*(_named_volumes(location) for location in locations)))
    document = {
        "services": services,
        **({"volumes": {key: {"name": f"{PROJECT}_{key}"} for key in volumes}} if volumes else {}),
    }
    header = [
        "# GENERATED from dg.toml and each location's pyproject.toml by platform_core.locations_compose",
        "# (make prepare / make up / make location). Do not edit: change the registry instead.",
    ]
    workspace = ["configs:", "  workspace:", "    content: |"]
    workspace += ["      " + line for line in workspace_yaml(locations).splitlines()]
    return "\n".join([*header, *_emit(document, 0), *workspace]) + "\n"


def write(root: Path | None = None) -> Path:
    root = root or repo_root()
    target = root / OUTPUT
    text = render(root)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target
