"""`make backup` of the session stack restored with `make restore` into a second, fresh stack:
the same runs, events, materializations, warehouse rows and UI users come back; a missing,
incomplete or corrupt backup is refused before anything is stopped."""

import json
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.e2e.compose_stack import LOCATION_NAMES, LOCATION_SERVICES, ComposeStack
from tests.e2e.dagster_graphql import DagsterGraphQL

pytestmark = pytest.mark.compose

FLIGHTS = ["ingestion", "flights"]
DAY = "2013-01-01"
IN_PROGRESS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
RESTORE_TIMEOUT = 1500
# Count and md5 of every table's rows (sorted text form); identifiers quoted by format(%I).
FINGERPRINT_SQL = """
CREATE FUNCTION pg_temp.fingerprint(s name, t name) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
  EXECUTE format('SELECT count(*) || '' '' || md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) FROM %I.%I x', s, t)
  INTO result;
  RETURN result;
END $$;
SELECT schemaname || '.' || tablename || ' ' || pg_temp.fingerprint(schemaname, tablename)
FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;
"""


def warehouse_fingerprint(stack: ComposeStack) -> dict[str, tuple[int, str]]:
    lines = stack.psql("warehouse", FINGERPRINT_SQL).splitlines()
    rows = (line.split() for line in lines if line != "CREATE FUNCTION")  # psql echoes each statement's tag
    return {table: (int(count), digest) for table, count, digest in rows}


def idle(dagster: DagsterGraphQL) -> bool:
    return not dagster.runs(statuses=IN_PROGRESS)


@pytest.fixture(scope="module")
def backup(stack, dagster, finished_run, tmp_path_factory) -> dict:
    """A backup taken while nothing ran, with the state it holds (the session stack is live:
    sensors and the replay keep launching runs, so retry until the warehouse held still)."""
    backup_dir = tmp_path_factory.mktemp("backups")
    for _ in range(5):
        dagster.wait_for("the session stack to have no run in progress", lambda: idle(dagster), timeout=900, interval=3)
        before, runs = warehouse_fingerprint(stack), {r["runId"]: r["status"] for r in dagster.runs()}
        out = stack.make("backup", f"BACKUP_DIR={backup_dir}", timeout=300).stdout
        after = warehouse_fingerprint(stack)
        if before == after and runs == {r["runId"]: r["status"] for r in dagster.runs()}:
            break
        for partial in backup_dir.iterdir():
            shutil.rmtree(partial)
    else:
        pytest.fail("the session stack kept changing during every backup attempt")
    (path,) = backup_dir.iterdir()
    assert f"wrote {path}" in out
    return {"path": path, "warehouse": before, "runs": runs}


def test_backup_holds_both_databases_and_users_with_a_manifest(backup, stack):
    path = backup["path"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["databases"]) == {"dagster", "warehouse"}
    assert manifest["databases"]["dagster"]["name"] == "dagster"
    assert manifest["databases"]["warehouse"]["owner"] == "warehouse"
    assert manifest["project"] == stack.project
    assert manifest["dagster_version"] == "1.13.27"
    assert set(manifest["files"]) == {"dagster.dump", "warehouse.dump", "gateway-users.tar"}
    for name, entry in manifest["files"].items():
        file = path / name
        assert file.stat().st_size == entry["bytes"] > 0
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, f"{name} is readable by others"
        assert file.read_bytes()[:5] == b"PGDMP" or name.endswith(".tar")
    for entry in manifest["databases"].values():
        assert entry["size_bytes"] > 0


@pytest.mark.parametrize("damage, message", [
    ("missing", "is not a backup directory"),
    ("no-manifest", "the backup is incomplete"),
    ("no-dump", "the backup is incomplete"),
    ("corrupt", "the backup is corrupt"),
])
def test_restore_refuses_a_bad_backup_and_touches_nothing(stack, backup, tmp_path, damage, message):
    source = tmp_path / "bad"
    if damage != "missing":
        shutil.copytree(backup["path"], source)
    if damage == "no-manifest":
        (source / "manifest.json").unlink()
    elif damage == "no-dump":
        (source / "warehouse.dump").unlink()
    elif damage == "corrupt":
        with (source / "dagster.dump").open("r+b") as dump:
            dump.seek(200)
            byte = dump.read(1)
            dump.seek(200)
            dump.write(bytes([byte[0] ^ 0xFF]))
    running_before = {name for name, s in stack.services().items() if s["State"] == "running"}
    result = stack.make("restore", f"FROM={source}", check=False)
    assert result.returncode != 0
    assert "restore refused" in result.stderr and message in result.stderr, result.stderr
    assert {name for name, s in stack.services().items() if s["State"] == "running"} == running_before


def test_restore_without_from_says_how(stack):
    result = stack.make("restore", check=False)
    assert result.returncode != 0
    assert "make restore FROM=backups/<stamp>" in result.stderr


def test_restore_into_a_fresh_stack_brings_back_runs_assets_rows_and_users(stack, dagster, finished_run, backup, tmp_path):
    # No replay there: nothing lands, so nothing new runs while we compare.
    target = ComposeStack(f"flights-e2e-{secrets.token_hex(3)}", tmp_path, extra_env={"REPLAY_ENABLED": "false"})
    try:
        target.up()
        DagsterGraphQL(target.base_url).wait_for(
            "the fresh stack to have no run in progress",
            lambda: target.psql("dagster", "SELECT count(*) FROM runs WHERE status = ANY('{QUEUED,NOT_STARTED,STARTING,STARTED,CANCELING}')") == "0"
            and not target.run_containers("status=running"), timeout=600, interval=3)
        # The restored automation would go on to build reporting partitions the backup lacked;
        # with the daemon stopped (restore restarts only what was running) the warehouse is
        # compared exactly as restored, then the daemon comes back.
        target.compose("stop", "daemon")
        out = target.make("restore", f"FROM={backup['path']}", timeout=RESTORE_TIMEOUT).stdout
        assert "restored into" in out, out
        assert warehouse_fingerprint(target) == backup["warehouse"]
        target.compose("start", "daemon")

        # The UI users came back too: the session stack's admin logs in to the restored one.
        restored = DagsterGraphQL(target.base_url, auth=stack.admin)
        restored.wait_locations_loaded(LOCATION_NAMES, timeout=300)
        runs = {r["runId"]: r["status"] for r in restored.runs()}
        assert backup["runs"].items() <= runs.items(), {k: (v, runs.get(k)) for k, v in backup["runs"].items()}
        assert runs[finished_run] == "SUCCESS"
        assert finished_run in restored.materialized_partitions(FLIGHTS, [DAY])[DAY]
        messages = [e.get("message") for e in restored.events(finished_run)]
        assert messages == [e.get("message") for e in dagster.events(finished_run)]
        services = target.services()
        for name in ("postgres", "webserver", "daemon", "gateway", *LOCATION_SERVICES):
            assert services[name]["State"] == "running", services[name]
    except BaseException:
        print(f"===== compose logs of {target.project} =====\n{target.logs()}")
        raise
    finally:
        target.down()
    leaked = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={target.project}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert not leaked, f"containers of {target.project} outlived the test"
