"""deploy/helm/values.locations.yaml: the code locations (and the images) for Dagster's official
Helm chart, generated from the same registry as compose.locations.yaml.

Helm values cannot loop over dg.toml either, so, like the compose file, this one is generated
(`make helm-values`) and git-ignored: `make location NAME=…` changes only dg.toml and uv.lock,
and the next `make helm-values` carries the new location to the cluster. What every location
shares (the run contract, storage, queue limits) is the hand-written deploy/helm/values.yaml;
only what a location declares in its pyproject.toml ([tool.flights-platform.location]) is added
here. Each key used is one of the chart's own, checked against the chart's schema models
(helm/dagster/schema/schema/charts/dagster_user_deployments/subschema/user_deployments.py in
dagster-io/dagster) and the way its user-deployment template renders them
(helm/dagster/charts/dagster-user-deployments/templates/deployment-user.yaml).

Also here: the image references both files need (`make images` tags the local images with them)
and the PersistentVolumeClaims of the locations' named volumes (deploy/helm/volumes.locations.yaml)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

from platform_core.locations import Location, LocationError, load, repo_root
from platform_core.locations_compose import CODE_SERVER_PORT, ROOT_COMPOSE, _default_of, _emit, _volume_parts

OUTPUT = "deploy/helm/values.locations.yaml"
VOLUMES_OUTPUT = "deploy/helm/volumes.locations.yaml"
# The platform's settings and secrets every Dagster pod reads by name (envFrom): the same names
# compose passes (x-storage-env, x-warehouse-env) and dagster.yaml's run contract forwards.
# Their templates are deploy/helm/manifests/settings.yaml and secrets.yaml.
SETTINGS_CONFIGMAP = "flights-platform-settings"
SENSITIVE_SETTINGS = "flights-platform-secrets"
# The images compose builds besides the locations' (docker-compose.yml: x-dagster-instance, gateway).
INSTANCE_IMAGE = "dagster"
GATEWAY_IMAGE = "gateway"
# The uid/gid the images run as (deploy/docker/*.Dockerfile: useradd --uid 10001).
IMAGE_UID = 10001
# A location's label on its code server and, through the chart's includeConfigInLaunchedRuns, on
# its run pods (compose: the image label io.flights-platform.location).
LOCATION_LABEL = "io.flights-platform/location"
# Where a location's named volume lives on the cluster: a claim per volume key, shared by its code
# server, its run pods and anything else that mounts it (ReadWriteMany).
CLAIM_PREFIX = "flights-"
VOLUME_SIZE = "10Gi"
# ${NAME}, ${NAME:-default} or ${NAME-default}: a value compose takes from the operator's environment.
INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}$")
REGISTRY_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def dagster_version(root: Path) -> str:
    """The locked Dagster version: the chart's version too (the chart is released with Dagster)."""
    lock = tomllib.loads((root / "uv.lock").read_text(encoding="utf-8"))
    for package in lock.get("package", []):
        if package.get("name") == "dagster":
            return package["version"]
    raise LocationError(f"{root / 'uv.lock'} locks no dagster package: cannot name the chart version")


def git_revision(root: Path) -> str:
    """The checkout's short commit, with -dirty when tracked files differ from it (an image built
    from uncommitted code must not pass for that commit)."""
    def git(*args: str) -> str:
        try:
            result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except OSError as exc:
            raise LocationError(f"cannot run git to name the image tag ({exc}): pass TAG=…") from None
        if result.returncode != 0:
            raise LocationError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip()}: pass TAG=…")
        return result.stdout.strip()

    revision = git("rev-parse", "--short=12", "HEAD")
    return revision + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def default_tag(root: Path) -> str:
    return f"{dagster_version(root)}-{git_revision(root)}"


def check_image_name(registry: str, tag: str) -> None:
    if not REGISTRY_RE.match(registry or ""):
        raise ValueError(f"REGISTRY {registry!r} is not an image repository prefix such as "
                         "registry.example.com/flights (lowercase, no tag, no trailing /)")
    if not TAG_RE.match(tag or ""):
        raise ValueError(f"TAG {tag!r} is not a Docker tag (letters, digits, _ . -; at most 128; not starting with . or -)")


def _dotenv(root: Path) -> dict[str, str]:
    """NAME=value lines of .env, as compose reads them for ${NAME} (no quoting rules needed for
    the two names read here)."""
    path = root / ".env"
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip().strip("'\"")
    return values


def local_images(root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Each image compose builds, by short name: what `make images` tags. Named as compose names
    them: ${IMAGE_PREFIX}/<name>:${IMAGE_TAG}, from the environment, then .env, then compose's
    defaults."""
    compose_text = (root / ROOT_COMPOSE).read_text(encoding="utf-8")
    settings = {**_dotenv(root), **{k: v for k, v in (os.environ if env is None else env).items() if v}}
    prefix = settings.get("IMAGE_PREFIX") or _default_of(compose_text, "IMAGE_PREFIX")
    tag = settings.get("IMAGE_TAG") or _default_of(compose_text, "IMAGE_TAG")
    names = [INSTANCE_IMAGE, GATEWAY_IMAGE, *(location.name for location in load(root))]
    return {name: f"{prefix}/{name}:{tag}" for name in names}


def image_plan(root: Path, registry: str, tag: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(local image, registry image) pairs for `docker tag`."""
    check_image_name(registry, tag)
    return [(source, f"{registry}/{name}:{tag}") for name, source in local_images(root, env).items()]


def split_env(location: Location) -> tuple[list[dict], list[str]]:
    """The location's environment for its pod: literal values as env entries; values compose
    takes from the operator's environment (${NAME:-…}) come from the platform's ConfigMap or Secret
    on the cluster (envFrom), so they are listed, not written. code_server_env is included: on the
    cluster the chart hands the whole deployment's environment to its runs, but only by reference
    for envFrom, so no secret value is stored with a run."""
    literal: list[dict] = []
    from_settings: list[str] = []
    for name, value in {**location.env, **location.code_server_env}.items():
        match = INTERPOLATION.match(value)
        if match:
            if match.group(1) != name:
                raise ValueError(f"location {location.name!r}: {name}={value!r} reads another variable; on the "
                                 f"cluster {name} comes from {SETTINGS_CONFIGMAP}/{SENSITIVE_SETTINGS} by its own name")
            if match.group(2):
                raise ValueError(f"location {location.name!r}: {name}={value!r} has a default in compose, which the "
                                 f"cluster would not apply: write ${{{name}:-}} and keep the default in the program "
                                 "(platform_core.settings), so compose and the cluster agree")
            from_settings.append(name)
        elif "${" in value:
            raise ValueError(f"location {location.name!r}: {name}={value!r} mixes text and a compose variable, "
                             "which a Kubernetes env entry cannot express: use a plain value or ${NAME:-}")
        else:
            literal.append({"name": name, "value": value})
    return literal, from_settings


def claim_name(volume_key: str) -> str:
    return CLAIM_PREFIX + volume_key.replace("_", "-")


def volumes(location: Location) -> tuple[list[dict], list[dict]]:
    """Pod volumes and container mounts for the location's named volumes. The chart hands these to
    the location's run pods too (includeConfigInLaunchedRuns), so the code server mounts each in
    the mode its runs need (compose mounts them read-only on the code server)."""
    pod, mounts = [], []
    for key, target, mode in map(_volume_parts, location.volumes):
        name = key.replace("_", "-")
        pod.append({"name": name, "persistentVolumeClaim": {"claimName": claim_name(key)}})
        mounts.append({"name": name, "mountPath": target, "readOnly": mode == "ro"})
    return pod, mounts


def deployment(location: Location, registry: str, tag: str) -> dict:
    """One dagster-user-deployments.deployments[] entry."""
    env, _ = split_env(location)
    pod_volumes, mounts = volumes(location)
    entry: dict = {
        # A Kubernetes name (no "_"); the chart names the Service and the workspace's location after it.
        "name": location.service,
        "image": {"repository": f"{registry}/{location.name}", "tag": tag, "pullPolicy": "IfNotPresent"},
        # `dagster code-server start`: definitions reload from the UI without a pod restart
        # (dagsterApiGrpcArgs would run `dagster api grpc`, which needs one).
        "codeServerArgs": ["-m", location.definitions_module, "--location-name", location.service],
        "port": CODE_SERVER_PORT,
        # The run pods of this location get its image, env, envFrom, volumes and labels.
        "includeConfigInLaunchedRuns": {"enabled": True},
        "env": env,
        "envConfigMaps": [{"name": SETTINGS_CONFIGMAP}],
        "envSecrets": [{"name": SENSITIVE_SETTINGS}],
        "labels": {LOCATION_LABEL: location.name},
        "podSecurityContext": {
            "runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID, "fsGroup": IMAGE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        # No `resources` here on purpose: the chart would hand them to the runs and override the
        # run contract's (values.yaml). Code servers get the namespace's LimitRange defaults
        # (deploy/helm/manifests/limits.yaml).
    }
    if pod_volumes:
        entry["volumes"] = pod_volumes
        entry["volumeMounts"] = mounts
    return entry


def values(root: Path, registry: str, tag: str) -> dict:
    locations = load(root)
    if not locations:
        raise ValueError("dg.toml registers no code location: the webserver would have nothing to load")
    check_image_name(registry, tag)
    seen: dict[str, str] = {}
    for location in locations:
        if location.service in seen:
            raise ValueError(f"locations {seen[location.service]!r} and {location.name!r} would both be the "
                             f"Kubernetes deployment {location.service!r}: rename one")
        seen[location.service] = location.name
    instance_image = {"repository": f"{registry}/{INSTANCE_IMAGE}", "tag": tag, "pullPolicy": "IfNotPresent"}
    return {
        "dagsterWebserver": {"image": instance_image},
        "dagsterDaemon": {"image": instance_image},
        "dagster-user-deployments": {
            "enabled": True,
            "enableSubchart": True,
            "deployments": [deployment(location, registry, tag) for location in locations],
        },
    }


def render(root: Path, registry: str, tag: str) -> str:
    document = values(root, registry, tag)
    header = [
        "# GENERATED from dg.toml and each location's pyproject.toml by platform_core.locations_helm",
        "# (make helm-values). Do not edit: change the registry instead. Use it after values.yaml:",
        f"#   helm upgrade --install flights dagster/dagster --version {dagster_version(root)} --namespace flights \\",
        "#     -f deploy/helm/values.yaml -f deploy/helm/values.locations.yaml",
        f"# Images: {registry}/<name>:{tag} (make images REGISTRY={registry} TAG={tag}).",
    ]
    for location in load(root):
        _, names = split_env(location)
        if names:
            header.append(f"# {location.name} reads {', '.join(names)} from {SETTINGS_CONFIGMAP} or {SENSITIVE_SETTINGS}.")
    return "\n".join([*header, *_emit(document, 0)]) + "\n"


def claims(root: Path) -> list[dict]:
    """A ReadWriteMany PersistentVolumeClaim per named volume the locations mount."""
    keys = sorted({key for location in load(root) for key, _, _ in map(_volume_parts, location.volumes)})
    return [{
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name(key), "labels": {"app.kubernetes.io/part-of": "flights-platform"}},
        # Mounted by the code server and by run pods on any node at once.
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": VOLUME_SIZE}}},
    } for key in keys]


def render_claims(root: Path) -> str:
    header = [
        "# GENERATED by platform_core.locations_helm (make helm-values): the locations' named volumes.",
        "# Apply before the chart: kubectl apply -n flights -f deploy/helm/volumes.locations.yaml",
        "# The cluster needs a ReadWriteMany storage class (NFS, CephFS, EFS, Filestore, Azure Files...).",
    ]
    documents = claims(root)
    body: list[str] = []
    for document in documents:
        body += ["---", *_emit(document, 0)]
    return "\n".join([*header, *(body or ["--- {}"])]) + "\n"


def _write(target: Path, text: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def write(root: Path | None = None, registry: str | None = None, tag: str | None = None) -> list[Path]:
    root = root or repo_root()
    if registry is None:
        registry = _default_of((root / ROOT_COMPOSE).read_text(encoding="utf-8"), "IMAGE_PREFIX")
    tag = tag or default_tag(root)
    return [_write(root / OUTPUT, render(root, registry, tag)), _write(root / VOLUMES_OUTPUT, render_claims(root))]
