"""platform_core.locations_helm: the Helm chart's code locations, generated from the same registry
as compose.locations.yaml. The values and compose must agree on the locations, their modules, their
images and the names of their environment; a new location reaches both; the image tag names the
Dagster version and the commit; `make images` plans a tag for every image compose builds
(tests/e2e/test_kubernetes_images.py builds and tags them)."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from platform_core import locations_compose, locations_helm
from platform_core.locations import load
from tests.deploy.platform_core.repo_copies import REPO, add_project, cli, commit_all, copy_platform_core, copy_registry, git, load_compose, project

LOCATIONS = load(REPO)
REGISTRY, TAG = "registry.example.com/flights", "1.13.27-abc123"
MANIFESTS = REPO / "deploy" / "helm" / "manifests"
# What compose adds to a code server's environment on its own (not the location's declaration).
COMPOSE_OWN_ENV = {"DAGSTER_CURRENT_IMAGE", "DAGSTER_CONTAINER_CONTEXT"}


def helm_values(root: Path = REPO) -> dict:
    return yaml.safe_load(locations_helm.render(root, REGISTRY, TAG))


def compose(root: Path = REPO) -> dict:
    return load_compose(locations_compose.render(root))


def platform_env_keys() -> set[str]:
    """The names the cluster's ConfigMap and Secret templates provide (envFrom on every pod)."""
    keys: set[str] = set()
    for name in ("settings.yaml", "secrets.yaml"):
        for document in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if document["metadata"]["name"] in (locations_helm.SETTINGS_CONFIGMAP, locations_helm.SENSITIVE_SETTINGS):
                keys |= set(document.get("data") or document.get("stringData"))
    return keys


def disagreements(compose_doc: dict, values: dict, root: Path = REPO) -> list[str]:
    """Where the chart's locations and compose's differ: the location set, each one's module, its
    image, its environment names (a literal env entry, or a name read from the platform's
    ConfigMap/Secret) and its volumes with the mode its runs get. Empty when they agree."""
    problems: list[str] = []
    deployments = {entry["name"]: entry for entry in values["dagster-user-deployments"]["deployments"]}
    services = {location.service: compose_doc["services"][location.service] for location in load(root)
                if location.service in compose_doc["services"]}
    if set(deployments) != set(services):
        problems.append(f"locations: helm {sorted(deployments)} != compose {sorted(services)}")
    provided = platform_env_keys()
    for name in sorted(set(deployments) & set(services)):
        entry, service = deployments[name], services[name]
        module = service["build"]["args"]["MODULE"]
        args = entry["codeServerArgs"]
        if args[args.index("-m") + 1] != f"{module}.definitions":
            problems.append(f"{name}: module {args[args.index('-m') + 1]} != compose {module}.definitions")
        compose_image = re.fullmatch(r"\$\{IMAGE_PREFIX:-[^}]*\}/([^:]+):\$\{IMAGE_TAG:-[^}]*\}", service["image"])
        helm_image = entry["image"]["repository"].rsplit("/", 1)[-1]
        if not compose_image or compose_image.group(1) != helm_image:
            problems.append(f"{name}: image {helm_image} != compose {service['image']}")
        compose_names = set(service["environment"]) - COMPOSE_OWN_ENV
        literal = {item["name"] for item in entry.get("env", [])}
        from_platform = {variable for variable in compose_names - literal
                         if service["environment"][variable] == f"${{{variable}:-}}"}
        if literal | from_platform != compose_names:
            problems.append(f"{name}: environment {sorted(literal | from_platform)} != compose {sorted(compose_names)}")
        if not from_platform <= provided:
            problems.append(f"{name}: reads {sorted(from_platform - provided)}, which no ConfigMap/Secret template provides")
        for item in entry.get("env", []):
            if service["environment"].get(item["name"]) != item["value"]:
                problems.append(f"{name}: {item['name']}={item['value']!r} != compose {service['environment'].get(item['name'])!r}")
        context = json.loads(service["environment"].get("DAGSTER_CONTAINER_CONTEXT", "{}"))
        run_volumes = {spec.split(":")[1]: spec.split(":")[2] == "ro"
                       for spec in context.get("docker", {}).get("container_kwargs", {}).get("volumes", [])}
        mounts = {mount["mountPath"]: mount["readOnly"] for mount in entry.get("volumeMounts", [])}
        if mounts != run_volumes:
            problems.append(f"{name}: volumes {mounts} != compose's run volumes {run_volumes}")
    return problems


def test_the_generated_values_agree_with_compose():
    assert disagreements(compose(), helm_values()) == []


@pytest.mark.parametrize("tamper", [
    "drop a location", "change a module", "change an image", "rename an env name", "add an env name",
    "make a run volume read-only",
])
def test_the_agreement_check_notices_each_kind_of_difference(tamper):
    values = helm_values()
    deployments = values["dagster-user-deployments"]["deployments"]
    by_name = {entry["name"]: entry for entry in deployments}
    if tamper == "drop a location":
        deployments.remove(by_name["reporting"])
    elif tamper == "change a module":
        by_name["ingestion"]["codeServerArgs"][1] = "reporting.definitions"
    elif tamper == "change an image":
        by_name["ingestion"]["image"]["repository"] = f"{REGISTRY}/reporting"
    elif tamper == "rename an env name":
        by_name["ingestion"]["env"][0]["name"] = "LANDING_DIR"
    elif tamper == "add an env name":
        by_name["platform"]["env"].append({"name": "EXTRA", "value": "1"})
    else:
        by_name["reporting"]["volumeMounts"][0]["readOnly"] = True
    assert disagreements(compose(), values) != []


def test_one_deployment_per_location_in_registry_order_with_the_chart_keys():
    values = helm_values()
    deployments = values["dagster-user-deployments"]["deployments"]
    assert [entry["name"] for entry in deployments] == [location.service for location in LOCATIONS]
    for entry, location in zip(deployments, LOCATIONS, strict=True):
        assert entry["image"] == {"repository": f"{REGISTRY}/{location.name}", "tag": TAG, "pullPolicy": "IfNotPresent"}
        # `dagster code-server start` (reload without restart), never `dagster api grpc`.
        assert "dagsterApiGrpcArgs" not in entry
        assert entry["codeServerArgs"] == ["-m", location.definitions_module, "--location-name", location.service]
        assert entry["port"] == locations_compose.CODE_SERVER_PORT
        assert entry["includeConfigInLaunchedRuns"] == {"enabled": True}
        assert entry["envConfigMaps"] == [{"name": "flights-platform-settings"}]
        assert entry["envSecrets"] == [{"name": "flights-platform-secrets"}]
        assert entry["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert entry["securityContext"]["allowPrivilegeEscalation"] is False
        # Resources would be handed to the runs and override the run contract's.
        assert "resources" not in entry
    instance = {"repository": f"{REGISTRY}/dagster", "tag": TAG, "pullPolicy": "IfNotPresent"}
    assert values["dagsterWebserver"]["image"] == values["dagsterDaemon"]["image"] == instance


def test_the_platform_locations_settings_come_from_the_cluster_not_the_file():
    platform = {entry["name"]: entry for entry in helm_values()["dagster-user-deployments"]["deployments"]}["platform"]
    assert platform["env"] == []  # RUN_RETENTION_DAYS and ALERT_WEBHOOK_URL: ${NAME:-} in compose
    assert {"RUN_RETENTION_DAYS", "ALERT_WEBHOOK_URL"} <= platform_env_keys()
    text = locations_helm.render(REPO, REGISTRY, TAG)
    assert "# platform reads RUN_RETENTION_DAYS, ALERT_WEBHOOK_URL from flights-platform-settings or flights-platform-secrets." in text


def test_volumes_are_claims_mounted_in_the_mode_the_runs_need():
    deployments = {entry["name"]: entry for entry in helm_values()["dagster-user-deployments"]["deployments"]}
    assert deployments["ingestion"]["volumes"] == [{"name": "landing", "persistentVolumeClaim": {"claimName": "flights-landing"}}]
    assert deployments["ingestion"]["volumeMounts"] == [{"name": "landing", "mountPath": "/opt/dagster/landing", "readOnly": True}]
    assert deployments["reporting"]["volumeMounts"] == [{"name": "reports", "mountPath": "/opt/dagster/reports", "readOnly": False}]
    claims = list(yaml.safe_load_all(locations_helm.render_claims(REPO)))
    assert [(claim["metadata"]["name"], claim["spec"]["accessModes"]) for claim in claims] == [
        ("flights-landing", ["ReadWriteMany"]), ("flights-reports", ["ReadWriteMany"])]


def test_a_new_location_reaches_compose_and_the_chart_alike(tmp_path):
    root = copy_registry(tmp_path)
    add_project(root, "code_locations/sales_reports", project(
        "sales_reports", deploy='\n[tool.flights-platform.location]\n'
        'env = { SALES_DIR = "/opt/dagster/sales", SALES_TOKEN = "${SALES_TOKEN:-}" }\n'
        'volumes = ["sales_files:/opt/dagster/sales"]\n'))
    values = helm_values(root)
    entry = values["dagster-user-deployments"]["deployments"][-1]
    assert entry["name"] == "sales-reports"  # a Kubernetes name: no "_"
    assert entry["image"]["repository"] == f"{REGISTRY}/sales_reports"
    assert entry["env"] == [{"name": "SALES_DIR", "value": "/opt/dagster/sales"}]
    assert entry["volumes"] == [{"name": "sales-files", "persistentVolumeClaim": {"claimName": "flights-sales-files"}}]
    assert "flights-sales-files" in {claim["metadata"]["name"] for claim in yaml.safe_load_all(locations_helm.render_claims(root))}
    # SALES_TOKEN is read from the platform's ConfigMap/Secret, which do not have it yet: the
    # agreement check names it, so the operator adds it to the templates.
    assert disagreements(compose(root), values, root) == [
        "sales-reports: reads ['SALES_TOKEN'], which no ConfigMap/Secret template provides"]


def test_a_location_made_by_make_location_reaches_the_chart(tmp_path):
    """`platform_core.cli new` (what `make location` runs), then the chart's values: no file but the
    registry changes, and the next `make helm-values` has the location."""
    root = copy_registry(tmp_path)
    copy_platform_core(root)
    result = cli(root, "new", "sales")
    assert result.returncode == 0, result.stderr
    values = helm_values(root)
    entry = values["dagster-user-deployments"]["deployments"][-1]
    assert entry["name"] == "sales" and entry["codeServerArgs"][:2] == ["-m", "sales.definitions"]
    assert disagreements(compose(root), values, root) == []


@pytest.mark.parametrize("value, message", [
    ("/data/${SALES_DIR:-x}", "mixes text and a compose variable"),
    ("${OTHER_NAME:-}", "reads another variable"),
    ("${SALES_DIR:-/opt/dagster/sales}", "has a default in compose"),
])
def test_an_environment_value_the_cluster_cannot_express_is_refused_by_name(tmp_path, value, message):
    root = copy_registry(tmp_path)
    add_project(root, "code_locations/sales", project(
        "sales", deploy=f'\n[tool.flights-platform.location]\nenv = {{ SALES_DIR = "{value}" }}\n'))
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        locations_helm.render(root, REGISTRY, TAG)
    assert "'sales'" in str(caught.value) and "SALES_DIR" in str(caught.value)


@pytest.mark.parametrize("registry, tag, message", [
    ("Registry.example.com/x", "t", "REGISTRY"), ("registry.example.com/x/", "t", "REGISTRY"),
    ("registry.example.com/x:1", "t", "REGISTRY"), ("registry.example.com/x", "-t", "TAG"),
    ("registry.example.com/x", "a b", "TAG"), ("", "t", "REGISTRY"),
])
def test_bad_image_names_are_refused(registry, tag, message):
    with pytest.raises(ValueError, match=message):
        locations_helm.render(REPO, registry, tag)


def test_the_default_tag_is_the_dagster_version_and_the_commit(tmp_path):
    root = copy_registry(tmp_path)
    commit_all(root)
    revision = git(root, "rev-parse", "--short=12", "HEAD").strip()
    assert locations_helm.dagster_version(root) == "1.13.27"
    assert locations_helm.default_tag(root) == f"1.13.27-{revision}"
    (root / "dg.toml").write_text((root / "dg.toml").read_text() + "\n# changed\n")
    assert locations_helm.default_tag(root) == f"1.13.27-{revision}-dirty"


def test_local_images_are_named_as_compose_names_them(tmp_path):
    root = copy_registry(tmp_path)
    names = ["dagster", "gateway", *(location.name for location in LOCATIONS)]
    assert locations_helm.local_images(root, env={}) == {name: f"flights-platform/{name}:dev" for name in names}
    (root / ".env").write_text("IMAGE_PREFIX=acme\nIMAGE_TAG=v2\n")
    assert locations_helm.local_images(root, env={})["ingestion"] == "acme/ingestion:v2"
    assert locations_helm.local_images(root, env={"IMAGE_TAG": "v3"})["ingestion"] == "acme/ingestion:v3"


def test_the_cli_writes_both_files_with_a_bare_python(tmp_path):
    root = copy_registry(tmp_path)
    copy_platform_core(root)
    result = cli(root, "helm", "--registry", REGISTRY, "--tag", TAG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["wrote deploy/helm/values.locations.yaml", "wrote deploy/helm/volumes.locations.yaml"]
    assert (root / locations_helm.OUTPUT).read_text() == locations_helm.render(root, REGISTRY, TAG)
    result = cli(root, "images", "--registry", REGISTRY, "--tag", TAG)
    assert result.returncode == 0, result.stderr
    assert f"flights-platform/ingestion:dev {REGISTRY}/ingestion:{TAG}" in result.stdout.splitlines()
    result = cli(root, "images", "--tag", TAG)
    assert result.returncode == 2 and "--registry" in result.stderr
    result = cli(root, "helm", "--registry", "Bad/", "--tag", TAG)
    assert result.returncode == 1 and "REGISTRY 'Bad/'" in result.stderr


def test_the_generated_files_are_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", locations_helm.OUTPUT, locations_helm.VOLUMES_OUTPUT],
                             cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == [locations_helm.OUTPUT, locations_helm.VOLUMES_OUTPUT]
