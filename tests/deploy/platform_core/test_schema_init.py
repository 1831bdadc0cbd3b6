"""platform_core.schema_init (dagster-init) on a real Postgres: an empty database is migrated with
Dagster's own CLI and marked; a second start skips the migrate; a marker of another Dagster
version (an upgrade, a restored older backup) migrates again."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from platform_core import schema_init
from tests.deploy.monitoring.dagster_history import dagster_db, write_dagster_home

__all__ = ["dagster_db"]
pytestmark = pytest.mark.postgres


def test_migrates_an_empty_database_once_per_dagster_version(dagster_db, tmp_path, monkeypatch):
    env = {**os.environ, **write_dagster_home(tmp_path / "home", dagster_db)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's dagster CLI
    runs = []

    def migrate() -> int:
        runs.append(1)
        # cwd: the dagster CLI reads a .env in its working directory (the repository has one).
        done = subprocess.run(schema_init.MIGRATE, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[:1500]
        return done.returncode

    assert schema_init.init_schema(env, migrate) == 0 and len(runs) == 1
    conn = schema_init.connect(env)
    try:
        assert schema_init.recorded_marker(conn) == schema_init.marker()
        with conn.cursor() as cursor:  # Dagster's tables exist: the migrate really ran
            cursor.execute("SELECT to_regclass('runs') IS NOT NULL AND to_regclass('event_logs') IS NOT NULL")
            assert cursor.fetchone()[0]
        assert schema_init.init_schema(env, migrate) == 0 and len(runs) == 1  # skipped

        schema_init.record_marker(conn, "dagster==1.0.0")  # as a restored older backup has it
        assert schema_init.init_schema(env, migrate) == 0 and len(runs) == 2
        assert schema_init.recorded_marker(conn) == schema_init.marker()
    finally:
        conn.close()


def test_a_failed_migrate_is_not_marked_and_its_code_is_returned(dagster_db, tmp_path):
    env = {**os.environ, **write_dagster_home(tmp_path / "home", dagster_db)}
    assert schema_init.init_schema(env, lambda: 3) == 3
    conn = schema_init.connect(env)
    try:
        assert schema_init.recorded_marker(conn) is None  # no Dagster tables, no marker
    finally:
        conn.close()
