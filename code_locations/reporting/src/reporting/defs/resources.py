"""Resources of the reporting location. Every setting comes from an environment variable through
EnvVar, so nothing deployment-specific is baked in at import time and the UI shows which
variable feeds which field."""

import os
import sys
import tempfile
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from dagster_dbt import DbtCliResource

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from flights_shared.warehouse import reject_blank_env, warehouse_from_env

from reporting.defs.dbt_project import DBT_PROJECT, RUN_TARGET

REPORTS_DIR_ENV = "REPORTS_DIR"
# dbt of this interpreter's environment, whether or not its bin directory is on PATH (a test run
# as .venv/bin/pytest, a run worker started by absolute path).
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")


class ReportsDirectory(ConfigurableResource):
    """Directory the human-readable reports are published to (a volume shared with readers)."""

    path: str

    def write_atomically(self, name: str, content: bytes) -> Path:
        """Write `name` so readers see either the old file or the complete new one, never a
        half-written report: temp file in the same directory, fsync, then rename over."""
        if not self.path:
            raise ValueError(f"{REPORTS_DIR_ENV} is empty: set it to the directory reports go to")
        directory = Path(self.path)
        if not directory.is_absolute():
            raise ValueError(
                f"{REPORTS_DIR_ENV} must be an absolute path (the working directory differs between "
                f"code server and run containers), got {self.path!r}"
            )
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"report file name must be a plain file name, got {name!r}")
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; reports are meant to be read
            target = directory / name
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target


def dbt_cli() -> DbtCliResource:
    """dbt for the models of reporting/dbt. It reads the same WAREHOUSE_* variables as the
    warehouse resource, through env_var() in reporting/dbt/profiles.yml: no second copy."""
    return DbtCliResource(
        project_dir=DBT_PROJECT, target=RUN_TARGET, dbt_executable=os.fspath(DBT_EXECUTABLE)
    )


def build_resources() -> dict:
    reject_blank_env(REPORTS_DIR_ENV)
    warehouse = warehouse_from_env()
    return {
        "warehouse": warehouse,
        "io_manager": PostgresPandasIOManager(warehouse=warehouse),
        "reports_dir": ReportsDirectory(path=EnvVar(REPORTS_DIR_ENV)),
        "dbt": dbt_cli(),
    }
