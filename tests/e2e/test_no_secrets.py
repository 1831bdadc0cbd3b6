"""The stack's generated passwords stay in .env and in process environments: they are not baked
into any image, and runs do not write them into Dagster's storage (event log, run config,
instance ref) or into the step logs on the compute-log volume."""

import json
import re
import subprocess
import zlib

import pytest

from tests.e2e.compose_stack import LOCATION_NAMES

pytestmark = pytest.mark.compose

SECRETS = ("POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD", "WAREHOUSE_PASSWORD", "GATEWAY_ADMIN_PASSWORD")
IMAGES = ("dagster", *LOCATION_NAMES, "gateway")  # a location's image is named after it
DAY = "2013-01-01"
PASSWORD_VALUE = re.compile(r"PASSWORD=[^\s\"',;}\]]")


@pytest.fixture(scope="module")
def passwords(stack) -> dict[str, str]:
    env = dict(line.split("=", 1) for line in stack.env_file.read_text().splitlines() if "=" in line)
    found = {name: env[name] for name in SECRETS if env.get(name)}
    assert set(found) == set(SECRETS), f"{stack.env_file} lacks {set(SECRETS) - set(found)}"
    return found


def leaked(text: str, passwords: dict[str, str]) -> list[str]:
    return [name for name, value in passwords.items() if value in text]


@pytest.mark.parametrize("image", IMAGES)
def test_no_image_layer_or_config_holds_a_password(stack, passwords, image):
    ref = f"flights-platform/{image}:dev"
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", ref],
                             capture_output=True, text=True, check=True).stdout
    config = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, check=True).stdout
    assert "RUN" in history or "COPY" in history, f"no build steps in the history of {ref}?"
    for where, text in (("layer history", history), ("image config", config)):
        assert not leaked(text, passwords), f"{ref} {where} holds {leaked(text, passwords)}"
        assert not PASSWORD_VALUE.search(text), f"{ref} {where} sets a password: {PASSWORD_VALUE.search(text).group()}"
    env = json.loads(config)[0]["Config"]["Env"] or []
    assert not [e for e in env if re.search(r"PASSWORD|SECRET|TOKEN", e.split("=", 1)[0])], env


def test_dagster_storage_holds_no_password(stack, passwords, finished_run):
    """Every row of Dagster's database, as pg_dump writes it, plus the zlib-compressed snapshots."""
    dump = stack.compose("exec", "-T", "postgres", "pg_dump", "-U", "postgres", "-d", "dagster",
                         "--data-only", "--no-owner").stdout
    # The search sees what runs wrote: our run's id, its config and its events are in there.
    assert finished_run in dump
    assert "ASSET_MATERIALIZATION" in dump and "run_config" in dump
    assert not leaked(dump, passwords), f"Dagster's database holds {leaked(dump, passwords)}"
    snapshots = stack.psql("dagster", "SELECT encode(snapshot_body, 'hex') FROM snapshots").split()
    assert snapshots, "no snapshots stored"
    for blob in snapshots:
        text = zlib.decompress(bytes.fromhex(blob)).decode()
        assert not leaked(text, passwords), f"a stored snapshot holds {leaked(text, passwords)}"


def test_runs_store_no_password_and_pass_the_instance_ref_by_env_name(stack, dagster, passwords, finished_run):
    """The run body holds the run config; the instance ref (storage credentials included) goes to
    the run container on its command line, so it must name DAGSTER_PG_PASSWORD, not contain it.
    (The container's environment does hold the value: that is how the run reads it.)"""
    bodies = dict(line.split(" ", 1) for line in stack.psql("dagster", "SELECT run_id || ' ' || run_body FROM runs").splitlines())
    assert '"run_config"' in bodies.get(finished_run, ""), f"run {finished_run} not in the runs table"
    for run_id, text in bodies.items():
        assert not leaked(text, passwords), f"run {run_id} stores {leaked(text, passwords)}"
    container = {t["key"]: t["value"] for t in dagster.run(finished_run)["tags"]}["docker/container_id"]
    inspect = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]
    command = " ".join(inspect["Config"]["Cmd"] or [])
    assert "instance_ref" in command and "DAGSTER_PG_PASSWORD" in command, command[:2000]
    assert not leaked(command, passwords), f"the run container's command holds {leaked(command, passwords)}"
    assert not leaked(json.dumps(inspect["Config"]["Labels"]), passwords)


def test_compute_logs_hold_no_password(stack, passwords, finished_run):
    """grep over the compute-log volume; the patterns go over stdin, never onto a command line."""
    def grep(*args: str, patterns: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", "-v", f"{stack.project}_compute_logs:/logs:ro",
             "--entrypoint", "grep", "flights-platform/ingestion:dev", "-rlF", *args, "-f", "/dev/stdin", "/logs"],
            input=patterns, capture_output=True, text=True, check=False)

    # The search can find things: our run's step output is on the volume.
    found = grep(patterns=f"rows of ingestion/flights for {DAY}\n")
    assert found.returncode == 0 and finished_run in found.stdout, found
    result = grep(patterns="\n".join(passwords.values()) + "\n")
    assert result.returncode == 1, f"step logs hold a password: {result.stdout}{result.stderr}"
