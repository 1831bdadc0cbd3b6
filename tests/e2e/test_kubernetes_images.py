"""`make images`: the Kubernetes variant of every image, built with platform-core's `kubernetes`
extra and tagged for a registry. Its instance image loads the K8sRunLauncher and every image
that runs steps loads the S3 compute-log manager (deploy/helm/values.yaml), while the compose
stack's own images carry neither. Uses the session stack's build, so the layers are cached."""

import subprocess
import uuid

import pytest

from platform_core import locations_helm
from tests.e2e.compose_stack import LOCATION_NAMES, REPO, docker

pytestmark = pytest.mark.compose

K8S_IMPORTS = {
    "dagster": "from dagster_k8s import K8sRunLauncher; from dagster_aws.s3.compute_log_manager import S3ComputeLogManager",
    **{name: "from dagster_aws.s3.compute_log_manager import S3ComputeLogManager" for name in LOCATION_NAMES},
}


def _python(image: str, code: str) -> subprocess.CompletedProcess:
    return docker("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", code, check=False)


@pytest.fixture(scope="module")
def tagged(stack):
    registry = f"test.invalid/k8s-images-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(["make", "-s", "images", f"REGISTRY={registry}", "TAG=t1"], cwd=REPO,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    yield registry, result.stdout
    for name in locations_helm.local_images(REPO):
        docker("rmi", f"{registry}/{name}:t1", check=False)


def test_every_image_is_tagged_for_the_registry(tagged):
    registry, out = tagged
    sources = locations_helm.local_images(REPO, env={"IMAGE_TAG": "kubernetes"})
    assert set(sources) == {"dagster", "gateway", *LOCATION_NAMES}
    for name, source in sources.items():
        target = f"{registry}/{name}:t1"
        assert f"tagged {target}" in out, out
        ids = [docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip() for image in (source, target)]
        assert ids[0] == ids[1], name


@pytest.mark.parametrize("name", sorted(K8S_IMPORTS))
def test_the_kubernetes_images_load_what_the_chart_configures(tagged, name):
    registry, _ = tagged
    result = _python(f"{registry}/{name}:t1", K8S_IMPORTS[name])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(K8S_IMPORTS))
def test_the_compose_images_leave_the_kubernetes_extra_out(stack, name):
    result = _python(locations_helm.local_images(REPO, env={})[name], "import dagster_aws")
    assert result.returncode != 0 and "No module named 'dagster_aws'" in result.stderr, result.stderr
