"""Connection to the warehouse database, configured entirely from the environment."""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import psycopg2
from dagster import ConfigurableResource, EnvVar
from platform_core import settings
from platform_core.settings import SettingError  # re-exported: one error type for every setting
from pydantic import Field

if TYPE_CHECKING:
    import adbc_driver_manager.dbapi


class WarehouseConnectionError(RuntimeError):
    """The warehouse refused or could not be reached; message names host, database and user."""


# Refusals that waiting does not cure: they fail at once. Anything else (refused, reset, "the
# database system is starting up", a timeout) is what a Postgres restart looks like from here.
PERMANENT_CONNECT_ERRORS = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
                            "too many connections for role", "permission denied")


def connect_with_retry(connect: Callable[[], object], errors: tuple[type[BaseException], ...],
                       retry_seconds: float, describe: str):
    """connect(), again with backoff while it fails for a transient reason, for up to
    retry_seconds: a run in flight while Postgres restarts waits for it instead of failing its step
    (run retries do not cover a failed step). The last error is raised as WarehouseConnectionError."""
    deadline = time.monotonic() + retry_seconds
    delay, attempts = 0.5, 0
    while True:
        attempts += 1
        try:
            return connect()
        except errors as exc:
            text = str(exc).strip()
            permanent = any(marker in text for marker in PERMANENT_CONNECT_ERRORS)
            if permanent or time.monotonic() + delay > deadline:
                waited = "" if attempts == 1 else f" (after {attempts} attempts over {retry_seconds:g} s)"
                raise WarehouseConnectionError(f"cannot connect to {describe}{waited}: {text}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class WarehouseResource(ConfigurableResource):
    """Postgres warehouse the pipelines write to (not Dagster's own storage database)."""

    host: str
    port: int = 5432
    dbname: str
    user: str
    password: str = Field(repr=False)
    connect_timeout_seconds: int = 10
    # How long a connection attempt is retried while the server is unreachable or restarting.
    connect_retry_seconds: int = 60
    application_name: str = "dagster-warehouse"

    def _describe(self) -> str:
        return f"warehouse {self.dbname!r} at {self.host}:{self.port} as {self.user!r}"

    @contextmanager
    def connection(self) -> Iterator["psycopg2.extensions.connection"]:
        """A connection whose transaction commits on clean exit and rolls back on error."""
        conn = connect_with_retry(
            lambda: psycopg2.connect(
                host=self.host,
                port=self.port,
                dbname=self.dbname,
                user=self.user,
                password=self.password,
                connect_timeout=self.connect_timeout_seconds,
                application_name=self.application_name,
            ),
            (psycopg2.OperationalError,), self.connect_retry_seconds, self._describe(),
        )
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    @contextmanager
    def arrow_connection(self) -> Iterator["adbc_driver_manager.dbapi.Connection"]:
        """An ADBC connection (Arrow in and out, binary COPY) with the same settings and the same
        contract as connection(): one transaction, committed on clean exit, rolled back on error."""
        # Imported here, in the run that loads: the driver pulls in pyarrow (~70 MB, ~0.5 s),
        # which a code server that only serves definitions never needs.
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi

        # "builtin": the driver's own table of Postgres' built-in types instead of reading
        # pg_type from the server on every connect (~60 ms); COPY needs built-in types only.
        conn = connect_with_retry(
            lambda: adbc_driver_postgresql.dbapi.connect(
                self._uri(), db_kwargs={"adbc.postgresql.type_resolver_mode": "builtin"}
            ),
            (adbc_driver_manager.Error,), self.connect_retry_seconds, self._describe(),
        )
        try:
            yield conn
            conn.commit()
        except BaseException:
            with suppress(adbc_driver_manager.Error):  # a dead connection rolls back by itself
                conn.rollback()
            raise
        finally:
            conn.close()

    def _uri(self) -> str:
        """A libpq URI with every setting as a percent-encoded query parameter, so any password,
        user name, IPv6 address or socket directory survives. Never logged: it holds the password."""
        params = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "connect_timeout": self.connect_timeout_seconds,
            "application_name": self.application_name,
        }
        return "postgresql://?" + urlencode(params, quote_via=quote, safe="")


# Required, but checked only for blank values at load: an unset one is left to Dagster, which
# refuses it by name when the resource is built (the tests load definitions without any).
HOST = settings.text("WAREHOUSE_HOST", required=True, doc="host of the warehouse Postgres")
PORT = settings.integer("WAREHOUSE_PORT", None, minimum=1, maximum=65535, doc="its port")
DB = settings.text("WAREHOUSE_DB", required=True, doc="the warehouse database")
USER = settings.text("WAREHOUSE_USER", required=True, doc="the role the pipelines write as")
PASSWORD = settings.text("WAREHOUSE_PASSWORD", required=True, doc="that role's password")
WAREHOUSE_ENV = tuple(s.name for s in (HOST, PORT, DB, USER, PASSWORD))


def reject_blank_env(*names: str) -> None:
    """Fail when the location loads if a required variable is set to "" (or spaces).

    EnvVar accepts an empty value, and it would surface only in the first run, as a confusing
    connection error (an empty host means the local Unix socket). platform_core.settings reads
    blank as unset, so set-but-blank is told apart here; an unset variable is left to Dagster."""
    blank = [name for name in names if name in os.environ and not os.environ[name].strip()]
    if blank:
        raise SettingError(
            f"environment variable(s) {', '.join(blank)} set but empty; "
            "give each a value (see .env.example)"
        )


def warehouse_from_env() -> WarehouseResource:
    """The resource as every location configures it: each field from one WAREHOUSE_* variable,
    as an EnvVar so the UI shows which variable feeds which field."""
    reject_blank_env(*WAREHOUSE_ENV)
    PORT.get()  # a malformed port fails the load, naming the variable, not the first run
    return WarehouseResource(
        host=EnvVar(HOST.name),
        port=EnvVar.int(PORT.name),
        dbname=EnvVar(DB.name),
        user=EnvVar(USER.name),
        password=EnvVar(PASSWORD.name),
    )
