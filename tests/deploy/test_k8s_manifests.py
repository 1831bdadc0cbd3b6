"""The Kubernetes deployment, checked offline (no cluster, no helm here): the manifests the chart does
not provide are valid objects of the Kubernetes version we target; the Helm values use only keys of
the chart's own values models; the instance configuration the chart renders from them passes
Dagster's own schemas (the run launcher's through dagster-k8s, which also builds the run Job we then
validate as Kubernetes); and values, manifests and compose's dagster.yaml say the same thing (run
contract, queue limits, monitoring, retries, retention)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job
from kubernetes.client import ApiClient

from platform_core import locations_helm
from tests.deploy.test_dagster_yaml import load_render_module

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
MANIFESTS = sorted((HELM / "manifests").glob("*.yaml"))
# The Kubernetes version we target: a supported minor with strict schemas in kubernetes-validate
# 1.37.0 (it ships 1.x schemas up to 1.37). The chart itself asks for >= 1.18.
K8S_VERSION = "1.35.0"
RELEASE, NAMESPACE = "flights", "flights"
REGISTRY, TAG = "registry.example.com/flights", "1.13.27-abc123"

# The keys of the chart's values models (pydantic, extra="forbid" on most), read from
# dagster-io/dagster helm/dagster/schema/schema/charts/: dagster/values.py, dagster/subschema/
# {global_,postgresql,webserver,daemon,run_launcher,compute_log_manager,retention,migrate,
# telemetry}.py and dagster_user_deployments/subschema/user_deployments.py (master-branch copies;
# README "What was verified"). Only the models this repository's values touch.
def keys(*names: str, **nested) -> dict:
    """A model's keys: plain names (any value: a Kubernetes object or a free mapping) and names
    whose value is itself a model of the chart (checked in turn)."""
    return {**dict.fromkeys(names), **nested}


IMAGE = keys("repository", "tag", "pullPolicy")
ENV_SOURCE = keys("name", "optional")
TICK_RETENTION = keys(purgeAfterDays=None)
K8S_OBJECTS = ("nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext", "resources",
               "livenessProbe", "readinessProbe", "startupProbe", "annotations", "labels", "volumeMounts", "volumes")
CHART_KEYS = keys(
    "generatePostgresqlPasswordSecret",
    **{"global": keys("postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName")},
    postgresql=keys("postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
                    "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", service=keys("port")),
    dagsterWebserver=keys(*K8S_OBJECTS, "dbStatementTimeout", "dbPoolRecycle", "logLevel", "schedulerName",
                          "pathPrefix", "replicaCount", "nameOverride", "workspace", "env", "deploymentLabels",
                          "enableReadOnly", image=IMAGE, service=keys("type", "port", "annotations"),
                          envConfigMaps=ENV_SOURCE, envSecrets=ENV_SOURCE),
    dagsterDaemon=keys(
        *K8S_OBJECTS, "enabled", "heartbeatTolerance", "env", "deploymentLabels", "checkDbReadyInitContainer",
        "runMonitoring", "backfills", "schedulerName", "logFormat", "initContainerResources", "extraContainers",
        "extraPrependedInitContainers", image=IMAGE, envConfigMaps=ENV_SOURCE, envSecrets=ENV_SOURCE,
        runCoordinator=keys("enabled", "type", config=keys("customRunCoordinator", queuedRunCoordinator=keys(
            "maxConcurrentRuns", "dequeueIntervalSeconds", "dequeueNumWorkers", "dequeueUseThreads",
            "blockOpConcurrencyLimitedRuns", tagConcurrencyLimits=keys("key", "value", "limit")))),
        runRetries=keys("enabled", "maxRetries", "retryOnAssetOrOpFailure"),
        sensors=keys("useThreads", "numWorkers", "numSubmitWorkers"),
        schedules=keys("useThreads", "numWorkers", "numSubmitWorkers"),
    ),
    **{"dagster-user-deployments": keys("enabled", "enableSubchart", "imagePullSecrets", deployments=keys(
        *K8S_OBJECTS, "name", "dagsterApiGrpcArgs", "codeServerArgs", "deploymentNamespace", "port", "replicaCount",
        "env", "schedulerName", "initContainers", "sidecarContainers", "deploymentStrategy", image=IMAGE,
        includeConfigInLaunchedRuns=keys("enabled"), envConfigMaps=ENV_SOURCE, envSecrets=ENV_SOURCE))},
    runLauncher=keys("type", config=keys("celeryK8sRunLauncher", "customRunLauncher", k8sRunLauncher=keys(
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envVars", "volumeMounts",
        "volumes", "labels", "failPodOnRunFailure", "resources", "schedulerName", "securityContext",
        envConfigMaps=ENV_SOURCE, envSecrets=ENV_SOURCE, runK8sConfig=keys(
            "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata")))),
    computeLogManager=keys("type", config=keys(
        "azureBlobComputeLogManager", "gcsComputeLogManager", "localComputeLogManager", "customComputeLogManager",
        s3ComputeLogManager=keys("bucket", "localDir", "prefix", "useSsl", "verify", "verifyCertPath", "endpointUrl",
                                 "skipEmptyFiles", "uploadInterval", "uploadExtraArgs", "showUrlOnly", "region"))),
    retention=keys("enabled", sensor=TICK_RETENTION, schedule=TICK_RETENTION, autoMaterialize=TICK_RETENTION),
    migrate=keys("enabled", "extraContainers", "initContainers"),
    telemetry=keys("enabled"),
)


def unknown_keys(value, spec, path: str = "") -> list[str]:
    """Keys of `value` the chart's models do not declare, where `spec` says which (None: anything,
    e.g. a Kubernetes object or a free mapping). Lists are checked item by item."""
    if spec is None:
        return []
    if isinstance(value, list):
        return [problem for item in value for problem in unknown_keys(item, spec, path + "[]")]
    if not isinstance(value, dict):
        return []
    problems = []
    for key, item in value.items():
        if key not in spec:
            problems.append(f"{path}.{key}".lstrip("."))
        else:
            problems += unknown_keys(item, spec[key], f"{path}.{key}")
    return problems


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


@pytest.fixture(scope="module")
def generated() -> dict:
    return yaml.safe_load(locations_helm.render(REPO, REGISTRY, TAG))


@pytest.fixture(scope="module")
def dagster_yaml() -> dict:
    return yaml.safe_load(load_render_module().render((REPO / "dagster.yaml").read_text(), {"PLATFORM_PROJECT": "flights"}))


def manifest(kind: str, name: str) -> dict:
    for path in MANIFESTS:
        for document in documents(path):
            if document["kind"] == kind and document["metadata"]["name"] == name:
                return document
    raise AssertionError(f"no {kind} {name} in deploy/helm/manifests")


# --- the manifests -------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_is_valid_for_the_kubernetes_version_we_target(path):
    found = documents(path)
    assert found, path
    for document in found:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_generated_volume_claims_are_valid_too():
    claims = list(yaml.safe_load_all(locations_helm.render_claims(REPO)))
    assert claims
    for claim in claims:
        kubernetes_validate.validate(claim, K8S_VERSION, strict=True)


@pytest.mark.parametrize("break_it", ["misspelled field", "wrong type", "missing required"])
def test_the_validator_refuses_a_broken_manifest(break_it):
    deployment = copy.deepcopy(manifest("Deployment", "flights-gateway"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if break_it == "misspelled field":
        container["securityContxt"] = container.pop("securityContext")
    elif break_it == "wrong type":
        container["ports"][0]["containerPort"] = "eighty"
    else:
        del deployment["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_secret_templates_hold_no_values():
    secrets = [document for path in MANIFESTS for document in documents(path) if document["kind"] == "Secret"]
    assert {secret["metadata"]["name"] for secret in secrets} >= {"flights-dagster-postgresql", "flights-platform-secrets"}
    for secret in secrets:
        assert "data" not in secret, secret["metadata"]["name"]
        assert secret["stringData"] and set(secret["stringData"].values()) == {""}, secret["metadata"]["name"]


def test_every_pod_of_ours_drops_all_capabilities_and_never_escalates():
    for path in MANIFESTS:
        for document in documents(path):
            if document["kind"] != "Deployment":
                continue
            pod = document["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"]:
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], container["name"]
                assert container["securityContext"]["allowPrivilegeEscalation"] is False, container["name"]
                assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
                assert container["resources"]["limits"], container["name"]


def pod_matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels + In expressions, what these policies use) against pod labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


# The pods of the release: the chart's labels (deployment-user.yaml: component: user-deployments;
# webservers and daemon: component dagster-webserver[-read-only] / dagster-daemon; all with
# app.kubernetes.io/instance), the run launcher's (values.yaml) and the gateway's (gateway.yaml).
def pods(values, generated) -> dict[str, dict]:
    instance = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": "dagster"}
    gateway = manifest("Deployment", "flights-gateway")["spec"]["template"]["metadata"]["labels"]
    found = {
        "webserver": {**instance, "component": "dagster-webserver"},
        "webserver-read-only": {**instance, "component": "dagster-webserver-read-only"},
        "daemon": {**instance, "component": "dagster-daemon"},
        "run": {**values["runLauncher"]["config"]["k8sRunLauncher"]["labels"], "dagster/code-location": "ingestion"},
        "gateway": gateway,
    }
    for entry in generated["dagster-user-deployments"]["deployments"]:
        found[f"code-server {entry['name']}"] = {**instance, "component": "user-deployments",
                                                 "deployment": entry["name"], **entry["labels"]}
    return found


def allowed_ingress(pod_labels: dict, port: int, all_pods: dict) -> set[str]:
    """Which pods may open a connection to a pod with these labels on this port (namespace-local
    policies; an ingress rule without `from` admits everyone, shown as "*")."""
    policies = [document for document in documents(HELM / "manifests" / "network-policies.yaml")
                if "Ingress" in document["spec"]["policyTypes"] and pod_matches(document["spec"]["podSelector"], pod_labels)]
    assert policies, f"no policy selects {pod_labels}: all ingress would be open"
    allowed: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in {item["port"] for item in rule["ports"]}:
                continue
            if "from" not in rule:
                allowed.add("*")
            for peer in rule.get("from", []):
                allowed |= {name for name, labels in all_pods.items() if pod_matches(peer["podSelector"], labels)}
    return allowed


def test_only_the_webservers_and_the_daemon_reach_the_code_servers(values, generated):
    all_pods = pods(values, generated)
    code_servers = [name for name in all_pods if name.startswith("code-server ")]
    assert len(code_servers) == len(generated["dagster-user-deployments"]["deployments"]) >= 3
    for name in code_servers:
        assert allowed_ingress(all_pods[name], 4000, all_pods) == {"webserver", "webserver-read-only", "daemon"}, name


def test_only_the_gateway_reaches_the_webservers_and_anyone_reaches_the_gateway(values, generated):
    all_pods = pods(values, generated)
    port = values["dagsterWebserver"]["service"]["port"]
    for name in ("webserver", "webserver-read-only"):
        assert allowed_ingress(all_pods[name], port, all_pods) == {"gateway"}, name
    assert allowed_ingress(all_pods["gateway"], 8080, all_pods) == {"*"}
    # The run pods and the daemon accept nothing (the default deny).
    assert allowed_ingress(all_pods["run"], 4000, all_pods) == set()
    assert allowed_ingress(all_pods["daemon"], 3000, all_pods) == set()


def test_run_pods_may_reach_postgres_dns_and_the_object_store_only(values):
    policy = manifest("NetworkPolicy", "run-pods-egress")
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert pod_matches(policy["spec"]["podSelector"], values["runLauncher"]["config"]["k8sRunLauncher"]["labels"])
    ports = sorted((item["protocol"], item["port"]) for rule in policy["spec"]["egress"] for item in rule["ports"])
    assert ports == [("TCP", 53), ("TCP", 443), ("TCP", 5432), ("UDP", 53)]


def test_the_gateway_routes_to_the_charts_webserver_services(values):
    container = manifest("Deployment", "flights-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    port = values["dagsterWebserver"]["service"]["port"]
    # The chart's names: <release>-webserver[-read-only] (templates/helpers/_helpers.tpl,
    # dagster.webserver.fullname), listening on service.port (_deployment-webserver.tpl).
    assert env["GATEWAY_EDITOR_UPSTREAM"] == f"{RELEASE}-webserver.{NAMESPACE}.svc.cluster.local:{port}"
    assert env["GATEWAY_VIEWER_UPSTREAM"] == f"{RELEASE}-webserver-read-only.{NAMESPACE}.svc.cluster.local:{port}"
    assert values["dagsterWebserver"]["enableReadOnly"] is True
    # The entrypoint's own check of the upstreams (deploy/gateway/gateway-entrypoint).
    entrypoint = (REPO / "deploy" / "gateway" / "gateway-entrypoint").read_text()
    pattern = re.search(r"\[\[ \$u =~ (\S+) \]\]", entrypoint).group(1)
    for upstream in (env["GATEWAY_EDITOR_UPSTREAM"], env["GATEWAY_VIEWER_UPSTREAM"]):
        assert re.fullmatch(pattern.replace("[:digit:]", "0-9"), upstream), upstream


# --- the Helm values -----------------------------------------------------------------------


def test_every_key_of_the_values_is_one_of_the_charts(values, generated):
    spec = CHART_KEYS
    assert unknown_keys(values, spec) == []
    assert unknown_keys(generated, spec) == []
    misspelled = copy.deepcopy(values)
    misspelled["dagsterWebserver"]["enableReadonly"] = True
    misspelled["runLauncher"]["config"]["k8sRunLauncher"]["securityContxt"] = {}
    assert unknown_keys(misspelled, spec) == ["dagsterWebserver.enableReadonly", "runLauncher.config.k8sRunLauncher.securityContxt"]


def test_storage_is_the_external_postgres_with_the_password_from_a_secret(values):
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    secret = manifest("Secret", values["global"]["postgresqlSecretName"])
    # The chart's templates read the password under this key.
    assert set(secret["stringData"]) == {"postgresql-password"}
    assert values["postgresql"]["postgresqlPassword"] == ""
    # DAGSTER_HOME is the images' own (writable by their user).
    for dockerfile in ("dagster.Dockerfile", "code-location.Dockerfile"):
        text = (REPO / "deploy" / "docker" / dockerfile).read_text()
        assert f"DAGSTER_HOME={values['global']['dagsterHome']} " in text, dockerfile
    # The chart's database-wait init containers run the platform's Postgres base image.
    assert values["postgresql"]["image"] == {"repository": "postgres", "tag": "17-trixie", "pullPolicy": "IfNotPresent"}


def test_compute_logs_go_to_s3_compatible_storage_not_a_local_directory(values):
    manager = values["computeLogManager"]
    assert manager["type"] == "S3ComputeLogManager"
    assert set(manager["config"]) == {"s3ComputeLogManager"}
    assert manager["config"]["s3ComputeLogManager"]["bucket"] and manager["config"]["s3ComputeLogManager"]["endpointUrl"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(manifest("Secret", "flights-platform-secrets")["stringData"])


# --- the instance config the chart renders, checked by Dagster -------------------------------


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def rendered_run_launcher(values: dict) -> dict:
    """run_launcher.config as templates/helpers/instance/_run-launcher.tpl writes it for
    K8sRunLauncher (the stored master-branch version: labels, resources, security_context and
    run_k8s_config are passed through as given)."""
    chart = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": chart["loadInclusterConfig"],
        "job_namespace": chart.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": chart["imagePullPolicy"],
        "service_account_name": f"{RELEASE}-dagster",
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if chart.get("envConfigMaps"):
        config["env_config_maps"] = [item["name"] for item in chart["envConfigMaps"]]
    if chart.get("envSecrets"):
        config["env_secrets"] = [item["name"] for item in chart["envSecrets"]]
    for key, target in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                        ("labels", "labels"), ("resources", "resources"), ("securityContext", "security_context")):
        if chart.get(key):
            config[target] = chart[key]
    if chart.get("runK8sConfig"):
        config["run_k8s_config"] = {camel_to_snake(key): value for key, value in chart["runK8sConfig"].items() if value}
    return config


def rendered_instance(values: dict) -> dict:
    """The sections of dagster.yaml the chart renders from dagsterDaemon, retention and
    computeLogManager (templates/configmap-instance.yaml and helpers/instance/*.tpl: camelCase
    keys become Dagster's snake_case ones)."""
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    s3 = values["computeLogManager"]["config"]["s3ComputeLogManager"]
    return {
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": rendered_run_launcher(values)},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {camel_to_snake(key): value for key, value in queued.items()}},
        "run_monitoring": {camel_to_snake(key): value for key, value in daemon["runMonitoring"].items()},
        "run_retries": {camel_to_snake(key): value for key, value in daemon["runRetries"].items()},
        "sensors": {camel_to_snake(key): value for key, value in daemon["sensors"].items()},
        "schedules": {camel_to_snake(key): value for key, value in daemon["schedules"].items()},
        "retention": {camel_to_snake(kind): {"purge_after_days": setting["purgeAfterDays"]}
                      for kind, setting in values["retention"].items() if kind != "enabled"},
        "compute_logs": {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager",
                         "config": {camel_to_snake(key): value for key, value in s3.items()}},
        "telemetry": values["telemetry"],
    }


def test_the_run_launcher_config_passes_dagster_k8s_own_schema(values):
    result = process_config(K8sRunLauncher.config_type(), rendered_run_launcher(values))
    assert result.success, result.errors
    broken = rendered_run_launcher(values)
    broken["security_contxt"] = broken.pop("security_context")
    assert not process_config(K8sRunLauncher.config_type(), broken).success


def test_the_compute_log_config_passes_dagster_aws_own_schema(values):
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    config = rendered_instance(values)["compute_logs"]["config"]
    result = process_config(S3ComputeLogManager.config_type(), config)
    assert result.success, result.errors
    assert not process_config(S3ComputeLogManager.config_type(), {**config, "endpoint": "x"}).success


def test_the_instance_config_passes_dagsters_own_schemas(values):
    instance = rendered_instance(values)
    result = process_config(dagster_instance_config_schema(), instance)
    assert result.success, result.errors
    queue = process_config(QueuedRunCoordinator.config_type(), instance["run_coordinator"]["config"])
    assert queue.success, queue.errors
    broken = copy.deepcopy(instance)
    broken["run_monitoring"]["start_timeout"] = 1
    assert not process_config(dagster_instance_config_schema(), broken).success


def test_queue_monitoring_retries_and_retention_are_dagster_yamls(values, dagster_yaml):
    instance = rendered_instance(values)
    assert instance["run_coordinator"]["config"] == dagster_yaml["run_coordinator"]["config"]
    for section in ("run_monitoring", "run_retries", "sensors", "schedules"):
        assert instance[section] == dagster_yaml[section], section
    for kind, setting in dagster_yaml["retention"].items():
        purge = instance["retention"][kind]["purge_after_days"]
        if isinstance(setting["purge_after_days"], dict):
            assert {key: purge[key] for key in setting["purge_after_days"]} == setting["purge_after_days"], kind
            assert purge["started"] == -1, kind
        else:
            assert purge == setting["purge_after_days"], kind
    assert set(instance["retention"]) == set(dagster_yaml["retention"])
    assert instance["telemetry"] == dagster_yaml["telemetry"]


def test_the_run_contract_carries_dagster_yamls_environment_names(values, dagster_yaml):
    """Every name dagster.yaml's launcher hands to run containers reaches run pods, from the
    ConfigMap or the Secret the launcher lists (no value in the Job spec)."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    settings = manifest("ConfigMap", launcher["envConfigMaps"][0]["name"])["data"]
    secrets = manifest("Secret", launcher["envSecrets"][0]["name"])["stringData"]
    names = set(dagster_yaml["run_launcher"]["config"]["env_vars"])
    assert names <= set(settings) | set(secrets)
    assert not set(settings) & set(secrets)
    assert {name for name in names if "PASSWORD" in name} <= set(secrets)
    assert launcher["envVars"] == []


def test_the_run_contract_has_compose_labels_resources_and_privileges(values, dagster_yaml):
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    docker = dagster_yaml["run_launcher"]["config"]["container_kwargs"]
    compose_labels = {key.replace("io.flights-platform.", "io.flights-platform/"): value
                      for key, value in docker["labels"].items() if key.startswith("io.flights-platform.")}
    assert launcher["labels"] == compose_labels == {"io.flights-platform/project": "flights", "io.flights-platform/role": "run"}
    memory = re.fullmatch(r"(\d+)([kmg])", docker["mem_limit"].lower())
    assert launcher["resources"]["limits"]["memory"] == f"{memory.group(1)}{memory.group(2).upper()}i"
    assert float(launcher["resources"]["limits"]["cpu"]) == docker["nano_cpus"] / 1e9
    assert docker["cap_drop"] == ["ALL"] and launcher["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert docker["security_opt"] == ["no-new-privileges:true"] and launcher["securityContext"]["allowPrivilegeEscalation"] is False
    assert launcher["runK8sConfig"]["podSpecConfig"]["terminationGracePeriodSeconds"] == docker["stop_timeout"]


def chart_location_context(entry: dict) -> dict:
    """The container context the chart gives a location's code server for its runs
    (dagster-user-deployments templates/helpers/_helpers.tpl dagsterUserDeployments.k8sContainerContext)."""
    k8s = {
        "image_pull_policy": entry["image"]["pullPolicy"],
        "env_config_maps": [f"{RELEASE}-dagster-{entry['name']}-user-env", *(item["name"] for item in entry["envConfigMaps"])],
        "env_secrets": [item["name"] for item in entry["envSecrets"]],
        "labels": entry["labels"],
        "namespace": NAMESPACE,
        "service_account_name": f"{RELEASE}-dagster-user-deployments",
        "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
    }
    if entry.get("volumes"):
        k8s["volume_mounts"], k8s["volumes"] = entry["volumeMounts"], entry["volumes"]
    if entry.get("env"):
        k8s["env"] = entry["env"]
    return {"k8s": k8s}


@pytest.fixture(scope="module")
def launcher(values, tmp_path_factory) -> K8sRunLauncher:
    """The launcher dagster-k8s builds from the rendered config, pointed at a kubeconfig of a
    cluster that does not exist (nothing is contacted: it only builds the Job)."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "offline", "user": {"token": "offline"}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    }))
    config = process_config(K8sRunLauncher.config_type(), rendered_run_launcher(values)).value
    return K8sRunLauncher(**{**config, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)})


def run_job(launcher: K8sRunLauncher, entry: dict) -> dict:
    """The Job dagster-k8s creates for a run of this location, as a Kubernetes object."""
    base = K8sContainerContext(
        image_pull_policy=launcher.image_pull_policy, service_account_name=launcher.service_account_name,
        env_config_maps=launcher.env_config_maps, env_secrets=launcher.env_secrets, env_vars=launcher.env_vars,
        volume_mounts=launcher.volume_mounts, volumes=launcher.volumes, labels=launcher.labels,
        namespace=launcher.job_namespace, resources=launcher.resources, security_context=launcher.security_context,
    )
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    base = base.merge(K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher.run_k8s_config or {})))
    context = base.merge(K8sContainerContext.create_from_config(chart_location_context(entry)))
    image = f"{entry['image']['repository']}:{entry['image']['tag']}"
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=image, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"], job_name="dagster-run-0123456789ab", pod_name="dagster-run-0123456789ab",
        component="run_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": "daily", "dagster/run-id": "0123456789ab", "dagster/code-location": entry["name"]},
        env_vars=[{"name": "DAGSTER_RUN_JOB_NAME", "value": "daily"}],
    )
    return ApiClient().sanitize_for_serialization(job)


def test_the_run_job_dagster_k8s_builds_is_valid_kubernetes_with_the_run_contract(launcher, generated):
    for entry in generated["dagster-user-deployments"]["deployments"]:
        job = run_job(launcher, entry)
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == f"{REGISTRY}/{entry['image']['repository'].rsplit('/', 1)[1]}:{TAG}"
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["terminationGracePeriodSeconds"] == 60
        assert job["spec"]["ttlSecondsAfterFinished"] == 3600 and job["spec"]["backoffLimit"] == 0
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["io.flights-platform/role"] == "run" and labels["io.flights-platform/location"] == entry["labels"]["io.flights-platform/location"]
        sources = {next(iter(item.values()))["name"] for item in container["envFrom"]}
        assert {"flights-platform-settings", "flights-platform-secrets"} <= sources
        env = {item["name"]: item.get("value") for item in container["env"]}
        for item in entry["env"]:
            assert env[item["name"]] == item["value"]
        mounts = {mount["mountPath"]: mount.get("readOnly", False) for mount in container.get("volumeMounts", [])}
        for mount in entry.get("volumeMounts", []):
            assert mounts[mount["mountPath"]] == mount["readOnly"]
        # No secret value in the Job: passwords only by reference.
        assert not any("PASSWORD" in name and value for name, value in env.items())


def test_the_code_server_pods_the_chart_renders_are_valid_kubernetes(generated):
    """Each deployment entry placed where deployment-user.yaml puts its keys."""
    for entry in generated["dagster-user-deployments"]["deployments"]:
        image = f"{entry['image']['repository']}:{entry['image']['tag']}"
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{RELEASE}-dagster-{entry['name']}", "labels": {"component": "user-deployments", **entry["labels"]}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"component": "user-deployments", "deployment": entry["name"]}},
                "template": {
                    "metadata": {"labels": {"component": "user-deployments", "deployment": entry["name"], **entry["labels"]}},
                    "spec": {
                        "securityContext": entry["podSecurityContext"],
                        "containers": [{
                            "name": "dagster", "image": image, "imagePullPolicy": entry["image"]["pullPolicy"],
                            "securityContext": entry["securityContext"],
                            "args": ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(entry["port"]), *entry["codeServerArgs"]],
                            "env": [{"name": "DAGSTER_CURRENT_IMAGE", "value": image}, *entry["env"]],
                            "envFrom": [*({"configMapRef": item} for item in entry["envConfigMaps"]),
                                        *({"secretRef": item} for item in entry["envSecrets"])],
                            **({"volumeMounts": entry["volumeMounts"]} if entry.get("volumeMounts") else {}),
                        }],
                        **({"volumes": entry["volumes"]} if entry.get("volumes") else {}),
                    },
                },
            },
        }
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --- Pod Security "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/)

SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(pod: dict) -> list[str]:
    """The controls of the "restricted" Pod Security level this repository's pods can break."""
    problems = []
    pod_security = pod.get("securityContext") or {}
    if any(pod.get(field) for field in ("hostNetwork", "hostPID", "hostIPC")):
        problems.append("host namespaces")
    for volume in pod.get("volumes") or []:
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} type {sorted(set(volume) - {'name'})}")
    for sysctl in pod_security.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl['name']}")
    for container in [*(pod.get("initContainers") or []), *pod["containers"]]:
        security = container.get("securityContext") or {}
        name = container["name"]
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        if security.get("capabilities", {}).get("drop") != ["ALL"] or set(security.get("capabilities", {}).get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities")
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")) or 0 in (security.get("runAsUser"), pod_security.get("runAsUser")):
            problems.append(f"{name}: runAsNonRoot")
        seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile")
        if security.get("privileged") or any(port.get("hostPort") for port in container.get("ports") or []):
            problems.append(f"{name}: privileged or hostPort")
    return problems


def test_the_pods_whose_security_we_write_meet_pod_security_restricted(launcher, generated):
    gateway = manifest("Deployment", "flights-gateway")["spec"]["template"]["spec"]
    assert restricted_violations(gateway) == []
    for entry in generated["dagster-user-deployments"]["deployments"]:
        assert restricted_violations(run_job(launcher, entry)["spec"]["template"]["spec"]) == [], entry["name"]
        code_server = {"securityContext": entry["podSecurityContext"], "volumes": entry.get("volumes", []),
                       "containers": [{"name": "dagster", "securityContext": entry["securityContext"]}]}
        assert restricted_violations(code_server) == [], entry["name"]
    # The webservers and the daemon: the chart puts these on their pods and containers (init ones too).
    values = yaml.safe_load((HELM / "values.yaml").read_text())
    for section in ("dagsterWebserver", "dagsterDaemon"):
        pod = {"securityContext": values[section]["podSecurityContext"],
               "containers": [{"name": name, "securityContext": values[section]["securityContext"]}
                              for name in ("dagster", "check-db-ready")]}
        assert restricted_violations(pod) == [], section
    # The check itself catches what it should.
    loose = copy.deepcopy(gateway)
    loose["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    loose["securityContext"]["sysctls"] = [{"name": "net.core.somaxconn", "value": "1024"}]
    loose["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}})
    assert restricted_violations(loose) == ["volume docker type ['hostPath']", "sysctl net.core.somaxconn",
                                            "gateway: allowPrivilegeEscalation"]
