"""Connection to the warehouse database, configured entirely from the environment."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from dagster import ConfigurableResource, EnvVar
from pydantic import Field


class WarehouseConnectionError(RuntimeError):
    """The warehouse refused or could not be reached; message names host, database and user."""


class WarehouseResource(ConfigurableResource):
    """Postgres warehouse the pipelines write to (not Dagster's own storage database)."""

    host: str
    port: int = 5432
    dbname: str
    user: str
    password: str = Field(repr=False)
    connect_timeout_seconds: int = 10
    application_name: str = "dagster-warehouse"

    @contextmanager
    def connection(self) -> Iterator["psycopg2.extensions.connection"]:
        """A connection whose transaction commits on clean exit and rolls back on error."""
        try:
            conn = psycopg2.connect(
                host=self.host,
                port=self.port,
                dbname=self.dbname,
                user=self.user,
                password=self.password,
                connect_timeout=self.connect_timeout_seconds,
                application_name=self.application_name,
            )
        except psycopg2.OperationalError as exc:
            raise WarehouseConnectionError(
                f"cannot connect to warehouse {self.dbname!r} at {self.host}:{self.port} "
                f"as {self.user!r}: {str(exc).strip()}"
            ) from exc
        try:
            with conn:
                yield conn
        finally:
            conn.close()


class SettingError(ValueError):
    """A required environment variable is empty or malformed; the message names it."""


WAREHOUSE_ENV = (
    "WAREHOUSE_HOST",
    "WAREHOUSE_PORT",
    "WAREHOUSE_DB",
    "WAREHOUSE_USER",
    "WAREHOUSE_PASSWORD",
)


def reject_blank_env(*names: str) -> None:
    """Fail when the location loads if a required variable is set to "" (or spaces).

    EnvVar accepts an empty value, and it would surface only in the first run, as a confusing
    connection error (an empty host means the local Unix socket). An unset variable is left to
    Dagster, which refuses it by name when the resource is built."""
    blank = [name for name in names if name in os.environ and not os.environ[name].strip()]
    if blank:
        raise SettingError(
            f"environment variable(s) {', '.join(blank)} set but empty; "
            "give each a value (see .env.example)"
        )


def warehouse_from_env() -> WarehouseResource:
    """The resource as every location configures it: each field from one WAREHOUSE_* variable."""
    reject_blank_env(*WAREHOUSE_ENV)
    port = os.environ.get("WAREHOUSE_PORT", "").strip()
    if port and not port.isdigit():
        raise SettingError(f"WAREHOUSE_PORT must be a port number, got {port!r}")
    return WarehouseResource(
        host=EnvVar("WAREHOUSE_HOST"),
        port=EnvVar.int("WAREHOUSE_PORT"),
        dbname=EnvVar("WAREHOUSE_DB"),
        user=EnvVar("WAREHOUSE_USER"),
        password=EnvVar("WAREHOUSE_PASSWORD"),
    )
