"""Bad input at the edges of both locations: blank or missing settings, wrong credentials, SQL
text in settings and partition keys, days outside 2013. Each must fail with an error that names
the problem (never a password) and leave what the warehouse held untouched."""

import importlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from dagster import materialize
from psycopg2 import sql

from flights_shared.warehouse import WAREHOUSE_ENV, SettingError, WarehouseConnectionError
from ingestion.defs.assets import airlines, flights, weather

DAGSTER_CLI = Path(sys.executable).with_name("dagster")
REPO = Path(__file__).resolve().parents[2]
LOCATION_ENV = {"ingestion": "LANDING_ZONE_DIR", "reporting": "REPORTS_DIR"}
HOSTILE = "'; DROP TABLE ingestion.flights; --"


def placeholder_env(location: str, tmp_path: Path) -> dict[str, str]:
    return {
        "WAREHOUSE_HOST": "warehouse.invalid",
        "WAREHOUSE_PORT": "6543",
        "WAREHOUSE_DB": "placeholder_db",
        "WAREHOUSE_USER": "placeholder_user",
        "WAREHOUSE_PASSWORD": "placeholder-password",
        LOCATION_ENV[location]: str(tmp_path),
    }


def build_resources(location: str) -> dict:
    return importlib.import_module(f"{location}.defs.resources").build_resources()


def set_env(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# --- settings: blank, missing, malformed -------------------------------------------------------

REQUIRED = [
    (location, name)
    for location, own in LOCATION_ENV.items()
    for name in (*WAREHOUSE_ENV, own)
]


@pytest.mark.parametrize(("location", "name"), REQUIRED)
@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_required_setting_fails_at_load_naming_it(
    location, name, blank, monkeypatch, tmp_path
):
    """EnvVar would accept "", and the first run would then die on a connection to the local
    socket or a relative path: the location refuses to load instead."""
    set_env(monkeypatch, placeholder_env(location, tmp_path))
    monkeypatch.setenv(name, blank)
    with pytest.raises(SettingError) as raised:
        build_resources(location)
    message = str(raised.value)
    assert name in message
    assert "empty" in message
    assert "placeholder-password" not in message


@pytest.mark.parametrize("port", ["postgres", "5432; DROP", "-1", "0", "65536"])
def test_bad_port_fails_at_load_naming_it(port, monkeypatch, tmp_path):
    set_env(monkeypatch, placeholder_env("ingestion", tmp_path))
    monkeypatch.setenv("WAREHOUSE_PORT", port)
    with pytest.raises(SettingError) as raised:
        build_resources("ingestion")
    assert str(raised.value) == f"WAREHOUSE_PORT must be a whole number between 1 and 65535, got {port!r}"


@pytest.mark.parametrize(("location", "name"), REQUIRED)
def test_unset_required_setting_is_refused_by_name_when_the_resource_starts(
    location, name, monkeypatch, tmp_path
):
    """Loading leaves an unset variable to Dagster (the tests load definitions without any), which
    refuses it by name as soon as a run or sensor builds the resource."""
    set_env(monkeypatch, placeholder_env(location, tmp_path))
    monkeypatch.delenv(name)
    resources = build_resources(location)
    owner = {"LANDING_ZONE_DIR": "landing_zone", "REPORTS_DIR": "reports_dir"}.get(name)
    resource = resources[owner] if owner else resources["io_manager"].warehouse
    with pytest.raises(Exception, match=f"environment variable \"{name}\" which is not set"):
        resource.process_config_and_initialize()


def run_validate(location: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    dagster_home = cwd / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "DAGSTER_"))}
    base = {k: v for k, v in base.items() if k not in LOCATION_ENV.values()}
    return subprocess.run(
        [str(DAGSTER_CLI), "definitions", "validate", "-m", f"{location}.definitions"],
        cwd=cwd,  # keep the repo's .env out of the subprocess
        env={**base, **env, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("location", list(LOCATION_ENV))
def test_location_with_an_empty_password_fails_to_load_naming_it(location, tmp_path):
    """What the code server does on start, with WAREHOUSE_PASSWORD="" (as an .env line
    `WAREHOUSE_PASSWORD=` would give a service that does not use compose's :? guard)."""
    env = {**placeholder_env(location, tmp_path), "WAREHOUSE_PASSWORD": ""}
    result = run_validate(location, env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "WAREHOUSE_PASSWORD" in output
    assert "set but empty" in output
    assert "psycopg2" not in output


def compose_config(env_file: Path) -> subprocess.CompletedProcess:
    keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")
    base = {k: v for k, v in os.environ.items() if k in keep}
    return subprocess.run(
        ["docker", "compose", "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"),
         "--env-file", str(env_file), "config", "--quiet"],
        env=base, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD", "WAREHOUSE_PASSWORD"])
def test_compose_refuses_an_empty_password(name, tmp_path):
    """Compose's ${VAR:?} treats "" like unset; the same file with the value filled in passes."""
    values = {
        "POSTGRES_PASSWORD": "pw-super",
        "DAGSTER_PG_PASSWORD": "pw-dagster",
        "WAREHOUSE_PASSWORD": "pw-warehouse",
    }
    good = tmp_path / "good.env"
    good.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    ok = compose_config(good)
    assert ok.returncode == 0, ok.stderr

    bad = tmp_path / "bad.env"
    bad.write_text("".join(f"{k}={'' if k == name else v}\n" for k, v in values.items()))
    result = compose_config(bad)
    assert result.returncode != 0
    assert f"{name} is not set" in result.stderr


# --- credentials and SQL text against the real warehouse ---------------------------------------


@pytest.fixture
def seeded(clean_warehouse, sql_rows):
    """ingestion.flights with one row, the table the hostile strings below try to drop."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA ingestion")
        cursor.execute("CREATE TABLE ingestion.flights (flight_date date, flight bigint)")
        cursor.execute("INSERT INTO ingestion.flights VALUES ('2013-06-01', 1545)")
    return clean_warehouse


def flights_rows(sql_rows, warehouse) -> list[tuple]:
    assert sql_rows(warehouse, "SELECT to_regclass('ingestion.flights') IS NOT NULL") == [(True,)]
    return sql_rows(warehouse, "SELECT flight_date::text, flight FROM ingestion.flights")


def failure_text(result) -> str:
    return "\n".join(
        e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
    )


def run_airlines():
    """The reference table airlines, loaded with the ingestion location's own resources."""
    from ingestion.defs.resources import build_resources as ingestion_resources

    return materialize([airlines], resources=ingestion_resources(), raise_on_error=False)


@pytest.fixture
def ingestion_env(warehouse_env, monkeypatch, tmp_path):
    monkeypatch.setenv("LANDING_ZONE_DIR", str(tmp_path))
    return warehouse_env


@pytest.mark.postgres
@pytest.mark.parametrize("wrong", ["password", "user", "dbname"])
def test_wrong_credentials_fail_the_run_naming_host_db_user_but_not_the_password(
    wrong, ingestion_env, seeded, monkeypatch, sql_rows
):
    w = ingestion_env
    secret = f"not-the-password-{secrets.token_hex(4)}"
    overrides = {
        "password": {"WAREHOUSE_PASSWORD": secret},
        "user": {"WAREHOUSE_USER": "nobody_here", "WAREHOUSE_PASSWORD": secret},
        "dbname": {"WAREHOUSE_DB": "no_such_db"},
    }[wrong]
    set_env(monkeypatch, overrides)
    result = run_airlines()
    assert not result.success
    text = failure_text(result)
    assert WarehouseConnectionError.__name__ in text
    user, db = overrides.get("WAREHOUSE_USER", w.user), overrides.get("WAREHOUSE_DB", w.dbname)
    assert f"cannot connect to warehouse {db!r} at {w.host}:{w.port} as {user!r}" in text
    assert secret not in text and w.password not in text
    assert flights_rows(sql_rows, w) == [("2013-06-01", 1545)]


@pytest.mark.postgres
def test_sql_in_the_database_name_is_just_a_name_that_does_not_exist(
    ingestion_env, seeded, monkeypatch, sql_rows
):
    monkeypatch.setenv("WAREHOUSE_DB", f"warehouse{HOSTILE}")
    result = run_airlines()
    assert not result.success
    assert f"cannot connect to warehouse {'warehouse' + HOSTILE!r}" in failure_text(result)
    assert flights_rows(sql_rows, ingestion_env) == [("2013-06-01", 1545)]


@pytest.mark.postgres
def test_role_and_password_with_quotes_and_sql_are_plain_values(
    ingestion_env, seeded, postgres_server, monkeypatch, sql_rows
):
    """A role named and a password made of SQL and quotes log in and load like any other: libpq
    gets them as values, never as text spliced into SQL or the connection string."""
    w = ingestion_env
    role = f"evil_{secrets.token_hex(3)}\"{HOSTILE}"
    password = f"p w'\\\"{HOSTILE} x=y"
    conn = psycopg2.connect(**{**postgres_server, "dbname": w.dbname})
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            cursor.execute(
                sql.SQL("GRANT USAGE, CREATE ON SCHEMA ingestion TO {}").format(
                    sql.Identifier(role)
                )
            )
            cursor.execute(
                sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(w.dbname), sql.Identifier(role)
                )
            )
        set_env(monkeypatch, {"WAREHOUSE_USER": role, "WAREHOUSE_PASSWORD": password})
        result = run_airlines()
        assert result.success, failure_text(result)
        with conn.cursor() as cursor:  # the table is the new role's; read it as superuser
            cursor.execute("SELECT count(*) > 0 FROM ingestion.airlines")
            assert cursor.fetchall() == [(True,)]
            cursor.execute(
                "SELECT tableowner FROM pg_tables "
                "WHERE schemaname = 'ingestion' AND tablename = 'airlines'"
            )
            assert cursor.fetchall() == [(role,)]
        assert flights_rows(sql_rows, w) == [("2013-06-01", 1545)]
    finally:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        conn.close()


# --- partition keys ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "key", ["2014-01-01", "2012-12-31", f"2013-01-01{HOSTILE}", "2013-02-30", "../2013-01-01"]
)
def test_partition_key_outside_2013_is_refused_naming_it(key, ingestion_env, seeded, sql_rows):
    from ingestion.defs.resources import build_resources as ingestion_resources

    with pytest.raises(Exception) as raised:
        materialize([flights, weather], resources=ingestion_resources(), partition_key=key)
    assert f"Could not find a partition with key `{key}`" in str(raised.value)
    assert flights_rows(sql_rows, ingestion_env) == [("2013-06-01", 1545)]
    assert sql_rows(ingestion_env, "SELECT to_regclass('ingestion.weather')") == [(None,)]
