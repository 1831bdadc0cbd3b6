#!/usr/bin/env python3
"""`make backup` and `make restore FROM=backups/<stamp>` (README "Backups").

backup:  pg_dump -Fc of Dagster's storage database and of the warehouse, taken as the postgres
         superuser inside the running `postgres` service (local socket: no password anywhere),
         plus the UI users (gateway-users volume), into BACKUP_DIR/<UTC stamp>/ with a manifest
         (Dagster version, databases, sizes, sha256). Written to <stamp>.partial and renamed when
         complete, so a half-written backup never looks like one.
restore: checks the backup against its manifest, refuses run containers still running, stops
         every service but postgres (nothing writes), pg_restore --clean --if-exists into the
         existing databases as their owner roles, puts the UI users back, runs the dagster-init
         service (`dagster instance migrate`), then starts the stopped services again.

Compose settings come from the usual places (.env, COMPOSE_PROJECT_NAME, COMPOSE_ENV_FILES),
exactly like `make psql`. Standard library only: runs with the host's python3."""

import datetime
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The host's python3 has no venv: platform_core is stdlib only and imported from the checkout.
sys.path.insert(0, str(REPO / "deploy" / "platform_core" / "src"))

from platform_core import settings  # noqa: E402

MANIFEST = "manifest.json"
FORMAT = 1
# Logical name -> env vars on the postgres service naming the database and its owner role.
DATABASES = {"dagster": ("DAGSTER_PG_DB", "DAGSTER_PG_USER"), "warehouse": ("WAREHOUSE_DB", "WAREHOUSE_USER")}
USERS_ARCHIVE = "gateway-users.tar"
USERS_DIR = "/var/lib/gateway/users"
RUN_LABEL = "io.flights-platform"
RESTORE_WAIT = settings.seconds(
    "RESTORE_WAIT_SECONDS", 600, minimum=1,
    doc="how long restarted services get to become healthy again (slow, busy hosts need minutes)")


class Refused(Exception):
    """A precondition failed; the message says what to do. Nothing was changed."""


def compose(*args: str, stdin=None, stdout=subprocess.PIPE, check: bool = True, text: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", "compose", *args], cwd=REPO, stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE, text=text)
    if check and result.returncode != 0:
        err = result.stderr if text else result.stderr.decode(errors="replace")
        raise SystemExit(f"{Path(sys.argv[0]).name}: `docker compose {' '.join(args[:3])} ...` failed ({result.returncode}): {err.strip()}")
    return result


def running_services() -> list[str]:
    return compose("ps", "--status", "running", "--services").stdout.split()


def postgres_env() -> dict[str, str]:
    names = sorted({name for pair in DATABASES.values() for name in pair})
    values = compose("exec", "-T", "postgres", "printenv", *names).stdout.splitlines()
    return dict(zip(names, values, strict=True))


def psql(database: str, query: str, **variables: str) -> str:
    """One query as superuser; values travel as psql variables (:'name'), never spliced in."""
    args = ["docker", "compose", "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", database,
            "-At", "-v", "ON_ERROR_STOP=1"]
    for key, value in variables.items():
        args += ["-v", f"{key}={value}"]
    # From stdin: psql interpolates variables there, not in -c.
    result = subprocess.run(args, cwd=REPO, input=query, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{Path(sys.argv[0]).name}: psql on {database} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def require_postgres() -> None:
    if "postgres" not in running_services():
        raise Refused("the postgres service is not running; start the stack first (`make up`)")


def dagster_version() -> str:
    """The instance image's Dagster version (what the stack runs, running or not)."""
    probe = ["python", "-c", "import dagster; print(dagster.__version__)"]
    if "webserver" in running_services():
        return compose("exec", "-T", "webserver", *probe).stdout.strip().splitlines()[-1]
    return compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "python", "dagster-init",
                   *probe[1:]).stdout.strip().splitlines()[-1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def project_name() -> str:
    container = compose("ps", "-q", "postgres").stdout.strip()
    return subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "com.docker.compose.project"}}', container],
                          capture_output=True, text=True, check=True).stdout.strip()


def backup(backup_dir: Path) -> Path:
    require_postgres()
    env = postgres_env()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    final = backup_dir / stamp
    work = backup_dir / f"{stamp}.partial"
    work.mkdir(parents=True, mode=0o700)
    try:
        manifest = {"format": FORMAT, "created_at": stamp, "project": project_name(),
                    "dagster_version": dagster_version(), "databases": {}, "files": {}}
        for logical, (db_var, owner_var) in DATABASES.items():
            database = env[db_var]
            target = work / f"{logical}.dump"
            with target.open("wb") as out:
                compose("exec", "-T", "postgres", "pg_dump", "-U", "postgres", "-Fc", "-d", database,
                        stdout=out, text=False)
            manifest["databases"][logical] = {
                "name": database, "owner": env[owner_var], "file": target.name,
                "size_bytes": int(psql("postgres", "SELECT pg_database_size(:'db')", db=database)),
            }
        if "gateway" in running_services():
            with (work / USERS_ARCHIVE).open("wb") as out:
                compose("exec", "-T", "gateway", "tar", "-C", USERS_DIR, "-cf", "-", ".", stdout=out, text=False)
        for path in sorted(work.iterdir()):
            manifest["files"][path.name] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    sizes = ", ".join(f"{name} {entry['bytes']} B" for name, entry in manifest["files"].items())
    print(f"backup: wrote {final} ({sizes})")
    return final


def load_manifest(source: Path) -> dict:
    """The manifest, after checking every file it lists is there, whole and unchanged."""
    if not source.is_dir():
        raise Refused(f"{source} is not a backup directory (expected backups/<stamp> from `make backup`)")
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise Refused(f"{source} has no {MANIFEST}: the backup is incomplete (or not one)") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"{source / MANIFEST} is not valid JSON ({exc}): the backup is corrupt") from None
    if manifest.get("format") != FORMAT or set(manifest.get("databases", {})) != set(DATABASES):
        raise Refused(f"{source / MANIFEST} is not a format-{FORMAT} manifest listing {', '.join(DATABASES)}")
    for name, expected in manifest.get("files", {}).items():
        path = source / name
        if not path.is_file():
            raise Refused(f"{path} is missing: the backup is incomplete")
        if sha256(path) != expected["sha256"]:
            raise Refused(f"{path} does not match its sha256 in the manifest: the backup is corrupt")
    missing = [d["file"] for d in manifest["databases"].values() if d["file"] not in manifest["files"]]
    if missing:
        raise Refused(f"{source / MANIFEST} lists no checksum for {', '.join(missing)}: the backup is incomplete")
    return manifest


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def restore(source: Path) -> None:
    wait_seconds = str(math.ceil(RESTORE_WAIT.get()))  # read before anything is stopped
    manifest = load_manifest(source)
    require_postgres()
    current = dagster_version()
    if version_tuple(manifest["dagster_version"]) > version_tuple(current):
        raise Refused(f"the backup was taken with dagster {manifest['dagster_version']}, this stack runs {current}: "
                      "Dagster storage cannot be downgraded")
    project = project_name()
    active = subprocess.run(["docker", "ps", "-q", "--filter", f"label={RUN_LABEL}.project={project}",
                             "--filter", f"label={RUN_LABEL}.role=run"], capture_output=True, text=True, check=True).stdout.split()
    if active:
        raise Refused(f"{len(active)} run container(s) of {project} are still running; let them finish or "
                      "terminate them in the UI, then restore")
    env = postgres_env()
    stopped = [s for s in running_services() if s != "postgres"]
    if stopped:
        print(f"restore: stopping {', '.join(stopped)} while restoring")
        compose("stop", *stopped)
    try:
        for logical, (db_var, owner_var) in DATABASES.items():
            database, owner = env[db_var], env[owner_var]
            # Idle sessions (e.g. a `make psql`) would block the drops.
            psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = :'db' AND pid <> pg_backend_pid()", db=database)
            with (source / manifest["databases"][logical]["file"]).open("rb") as dump:
                compose("exec", "-T", "postgres", "pg_restore", "-U", "postgres", "-d", database,
                        "--clean", "--if-exists", "--no-owner", f"--role={owner}",
                        "--single-transaction", "--exit-on-error", stdin=dump, text=False)
            print(f"restore: {database} (owner {owner}) restored from {logical}.dump")
        if USERS_ARCHIVE in manifest["files"]:
            with (source / USERS_ARCHIVE).open("rb") as archive:
                compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "gateway", "-c",
                        f"find {USERS_DIR} -mindepth 1 -delete && tar -xf - -C {USERS_DIR} --no-same-owner "
                        "&& gateway-users check >/dev/null", stdin=archive, text=False)
            print("restore: UI users restored")
        compose("run", "--rm", "--no-deps", "dagster-init")
        print(f"restore: schema migrated where needed (dagster-init, dagster {current})")
    finally:
        if stopped:
            compose("up", "-d", "--no-build", "--no-recreate", "--no-deps", "--wait", "--wait-timeout", wait_seconds, *stopped)
            print(f"restore: started {', '.join(stopped)} again")
    print(f"restore: {source} restored into {project}")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "backup":
        backup(Path(argv[1]))
    elif len(argv) == 2 and argv[0] == "restore":
        if not argv[1]:
            raise Refused("say which backup: make restore FROM=backups/<stamp>")
        restore(Path(argv[1]))
    else:
        print("usage: backup.py backup BACKUP_DIR | backup.py restore BACKUP_DIR/<stamp>", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.umask(0o077)  # dumps hold the warehouse and the UI users' password hashes
    try:
        sys.exit(main(sys.argv[1:]))
    except Refused as refused:
        print(f"{sys.argv[1]} refused: {refused}", file=sys.stderr)
        sys.exit(1)
    except settings.SettingError as exc:
        raise SystemExit(f"{sys.argv[1]}: {exc}") from None
