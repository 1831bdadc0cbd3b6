"""Fixtures for tests that need a real Postgres: a throwaway container for the session (started
only when a test asks for one) and a warehouse database on it, reached on 127.0.0.1. Registered
for every test folder, the locations' own tests included, by the root conftest.py."""

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import sql

from flights_shared.warehouse import WarehouseResource

POSTGRES_IMAGE = "postgres:17-trixie"
CONTAINER_LABEL = "flights-platform.tests=postgres"
STARTUP_TIMEOUT_SECONDS = 60
# Schemas Postgres owns; everything else in the test database is test data and is dropped.
SYSTEM_SCHEMAS = ("public", "information_schema")


def _docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`docker {' '.join(args[:2])} ...` failed ({result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout.strip()


def _require_docker() -> None:
    """Fail (never skip): the postgres tests are part of the suite, not optional extras."""
    if shutil.which("docker") is None:
        pytest.fail(
            "the `postgres` tests need the docker CLI to start a throwaway Postgres, "
            "and `docker` is not on PATH",
            pytrace=False,
        )
    try:
        _docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(
            f"the `postgres` tests need a running docker engine to start a throwaway "
            f"Postgres: {exc}",
            pytrace=False,
        )


def _published_port(container: str) -> int:
    # `docker port` prints e.g. "127.0.0.1:49154" (one line per binding).
    for line in _docker("port", container, "5432/tcp").splitlines():
        host, _, port = line.strip().rpartition(":")
        if host == "127.0.0.1" and port.isdigit():
            return int(port)
    raise RuntimeError(f"container {container} publishes no 127.0.0.1 port for 5432/tcp")


def _wait_for_postgres(dsn: dict, container: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(**dsn, connect_timeout=3).close()
            return
        except psycopg2.OperationalError as exc:
            last_error = exc
            time.sleep(0.5)
    logs = subprocess.run(
        ["docker", "logs", "--tail", "30", container], capture_output=True, text=True, check=False
    )
    pytest.fail(
        f"throwaway Postgres ({container}) did not accept connections within "
        f"{STARTUP_TIMEOUT_SECONDS}s: {last_error}\n--- container log ---\n"
        f"{logs.stdout}{logs.stderr}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict]:
    """Superuser connection parameters of a fresh Postgres container, removed afterwards."""
    _require_docker()
    password = secrets.token_urlsafe(24)
    name = f"flights-tests-pg-{secrets.token_hex(4)}"
    try:
        container = _docker(
            "run", "-d", "--rm", "--name", name, "--label", CONTAINER_LABEL,
            "-e", f"POSTGRES_PASSWORD={password}",
            "-p", "127.0.0.1::5432",
            POSTGRES_IMAGE,
        )  # fmt: skip
    except RuntimeError as exc:
        pytest.fail(f"could not start throwaway Postgres from {POSTGRES_IMAGE}: {exc}", pytrace=False)
    try:
        dsn = {
            "host": "127.0.0.1",
            "port": _published_port(container),
            "user": "postgres",
            "password": password,
            "dbname": "postgres",
        }
        _wait_for_postgres(dsn, container)
        yield dsn
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


@pytest.fixture(scope="session")
def warehouse(postgres_server: dict) -> WarehouseResource:
    """A dedicated database owned by a non-superuser role, as deploy/postgres/initdb creates it."""
    suffix = secrets.token_hex(4)
    user, dbname, password = f"warehouse_{suffix}", f"warehouse_test_{suffix}", secrets.token_urlsafe(18)
    conn = psycopg2.connect(**postgres_server)
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                )
            )
            cursor.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(user)
                )
            )
            cursor.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname))
            )
    finally:
        conn.close()
    return WarehouseResource(
        host="127.0.0.1",
        port=postgres_server["port"],
        dbname=dbname,
        user=user,
        password=password,
        connect_timeout_seconds=5,
        application_name="flights-tests",
    )


@pytest.fixture(scope="session")
def postgres_url(warehouse: WarehouseResource) -> str:
    """libpq URL of the session's warehouse database."""
    return (
        f"postgresql://{warehouse.user}:{warehouse.password}@{warehouse.host}:{warehouse.port}"
        f"/{warehouse.dbname}"
    )


@pytest.fixture
def clean_warehouse(warehouse: WarehouseResource) -> WarehouseResource:
    """The session warehouse with every test-created schema dropped, so each test starts empty."""
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace "
            "WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> ALL(%s)",
            (list(SYSTEM_SCHEMAS),),
        )
        for (schema,) in cursor.fetchall():
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return warehouse


@pytest.fixture
def warehouse_env(clean_warehouse: WarehouseResource, monkeypatch) -> WarehouseResource:
    """WAREHOUSE_* set to the throwaway database, for code that builds its resources from env."""
    w = clean_warehouse
    for name, value in {
        "WAREHOUSE_HOST": w.host,
        "WAREHOUSE_PORT": str(w.port),
        "WAREHOUSE_DB": w.dbname,
        "WAREHOUSE_USER": w.user,
        "WAREHOUSE_PASSWORD": w.password,
    }.items():
        monkeypatch.setenv(name, value)
    return w


def query(warehouse: WarehouseResource, statement: str, params=()) -> list[tuple]:
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


@pytest.fixture
def sql_rows():
    """`sql_rows(warehouse, "SELECT ...", params)` -> list of row tuples (helper as a fixture,
    since test modules cannot import each other under --import-mode=importlib)."""
    return query

