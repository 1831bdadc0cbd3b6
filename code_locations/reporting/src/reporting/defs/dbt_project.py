"""The reporting location's dbt project (reporting/dbt, shipped inside the package).

Standalone on purpose (imports nothing of the location): the image build runs
`dagster-dbt project prepare-and-package --file` on this file before the location itself is
installed, and that `dbt parse` writes the manifest into the package data. Deployed code only
reads that manifest; it never parses at load or run time."""

from pathlib import Path

import yaml
from dagster_dbt import DbtProject
from dagster_dbt.errors import DagsterDbtManifestNotFoundError

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
# profiles.yml targets. Preparing (`dbt parse`) needs the adapter type, never a connection, so
# the image builds without any WAREHOUSE_* variable; runs use the warehouse target (the
# resource names it explicitly, reporting.defs.resources).
PARSE_TARGET = "parse"
RUN_TARGET = "warehouse"

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, target=PARSE_TARGET)

# Project vars (e.g. on_time_minutes) that the Python assets share with the models: one definition.
DBT_VARS: dict = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]

# A source checkout (tests, `dg check defs`, `dagster dev`) has the location's pyproject.toml
# above the package; an installed package (the image) does not, and must bring its manifest.
_SOURCE_CHECKOUT = (DBT_PROJECT_DIR.parents[2] / "pyproject.toml").is_file()


def _manifest_is_stale() -> bool:
    """No manifest, or a project file newer than it (a model edited since the last parse)."""
    manifest = DBT_PROJECT.manifest_path
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    ignored = {DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs"}
    return any(
        path.stat().st_mtime > built
        for path in DBT_PROJECT_DIR.rglob("*")
        if path.is_file() and not any(parent in ignored for parent in path.parents)
    )


def ensure_manifest() -> Path:
    """The manifest to load the models from. In a source checkout it is (re)parsed when missing or
    stale, like `dagster dev` does on every load; an installed package must already hold it."""
    DBT_PROJECT.prepare_if_dev()  # `dagster dev` / `dg dev`: parse on every load
    if _SOURCE_CHECKOUT and _manifest_is_stale():
        DBT_PROJECT.preparer.prepare(DBT_PROJECT)
    if not DBT_PROJECT.manifest_path.is_file():
        raise DagsterDbtManifestNotFoundError(
            f"dbt manifest not found at {DBT_PROJECT.manifest_path}: this package was installed "
            "without it. The image build prepares it (`dagster-dbt project prepare-and-package "
            "--file <this module>` before installing the location, code-location.Dockerfile)."
        )
    return DBT_PROJECT.manifest_path
