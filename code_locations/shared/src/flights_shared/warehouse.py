"""Connection to the warehouse database, configured entirely from the environment."""

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


def warehouse_from_env() -> WarehouseResource:
    """The resource as every location configures it: each field from one WAREHOUSE_* variable."""
    return WarehouseResource(
        host=EnvVar("WAREHOUSE_HOST"),
        port=EnvVar.int("WAREHOUSE_PORT"),
        dbname=EnvVar("WAREHOUSE_DB"),
        user=EnvVar("WAREHOUSE_USER"),
        password=EnvVar("WAREHOUSE_PASSWORD"),
    )
