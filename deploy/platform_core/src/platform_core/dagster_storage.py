"""Where Dagster's own storage (runs, events, schedules, heartbeats) is: the DAGSTER_PG_*
variables. dagster.yaml hands the same variables to Dagster ({env: ...}); they are declared here
for the checks that reach the storage without Dagster's config (the daemon healthcheck) or must
name it when Dagster cannot load (platform_status), so both read them the same way."""

from __future__ import annotations

from collections.abc import Mapping

from platform_core import settings

HOST = settings.text("DAGSTER_PG_HOST", required=True, doc="host of Dagster's storage Postgres")
PORT = settings.integer("DAGSTER_PG_PORT", 5432, minimum=1, maximum=65535, doc="its port")
DB = settings.text("DAGSTER_PG_DB", required=True, doc="the database Dagster's storage lives in")
USER = settings.text("DAGSTER_PG_USER", required=True, doc="the role Dagster connects as")
PASSWORD = settings.text("DAGSTER_PG_PASSWORD", required=True, doc="that role's password")


def connect_kwargs(env: Mapping[str, str] | None = None) -> dict:
    """psycopg2.connect() arguments; SettingError names whatever is missing."""
    return {"host": HOST.get(env), "port": PORT.get(env), "dbname": DB.get(env),
            "user": USER.get(env), "password": PASSWORD.get(env)}


def describe(env: Mapping[str, str] | None = None) -> str:
    """user@host:port/db for messages, never the password; '?' for what is unset or invalid."""

    def value(setting: settings.Setting) -> str:
        try:
            return str(setting.get(env))
        except settings.SettingError:
            return "?"

    return f"Postgres {value(USER)}@{value(HOST)}:{value(PORT)}/{value(DB)}"
