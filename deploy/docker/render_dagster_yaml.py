#!/usr/bin/env python3
"""Entrypoint of the instance image: write $DAGSTER_HOME/dagster.yaml from the mounted template,
then exec the command.

Dagster resolves `{env: NAME}` only where a field accepts it; run-queue tag limits and the run
launcher's container settings do not. Those values are written as ${NAME} in the template and
substituted here from the settings declared below, which hold their defaults and validate them.
Secrets stay `{env: ...}` so they never reach the rendered file or the instance ref passed to
run containers."""

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from platform_core import settings
from platform_core.project import PROJECT

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
TEMPLATE = settings.text("DAGSTER_YAML_TEMPLATE", "/opt/dagster/dagster.yaml.template",
                         doc="the mounted template (set by the image; change only to test)")

MAX_RUNS = settings.integer("DAGSTER_MAX_CONCURRENT_RUNS", 6, minimum=1,
                            doc="runs at once; each is a container and holds Postgres connections")
MAX_BACKFILL_RUNS = settings.integer("DAGSTER_MAX_CONCURRENT_BACKFILL_RUNS", 4, minimum=1,
                                     doc="of those, runs of backfills")
MAX_AUTOMATION_RUNS = settings.integer("DAGSTER_MAX_CONCURRENT_AUTOMATION_RUNS", 4, minimum=1,
                                       doc="of those, runs requested by automation conditions")
RUN_MEM_LIMIT = settings.text("RUN_MEM_LIMIT", "1g", doc="memory limit of each run container (Docker units: 512m, 1g)")
RUN_CPUS = settings.number("RUN_CPUS", 1.0, minimum=0.01, doc="CPUs of each run container")
RUN_PIDS_LIMIT = settings.integer("RUN_PIDS_LIMIT", 512, minimum=16, doc="processes/threads of each run container")
CREATE_SCHEMA = settings.boolean(
    "DAGSTER_CREATE_SCHEMA", False,
    doc="create Dagster's tables on an empty database: dagster-init only; every other process skips "
        "looking for them (three connections and catalog queries per instance: each run, each sensor tick)")
MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)


def values(env: Mapping[str, str]) -> dict[str, str]:
    """Every placeholder's text, validated; raises SettingError naming a bad variable."""
    memory = RUN_MEM_LIMIT.get(env)
    if not MEMORY.match(memory):
        raise settings.SettingError(f"RUN_MEM_LIMIT must be a Docker memory size such as 512m or 1g, got {memory!r}")
    return {
        "PLATFORM_PROJECT": PROJECT.get(env),
        "DAGSTER_MAX_CONCURRENT_RUNS": str(MAX_RUNS.get(env)),
        "DAGSTER_MAX_CONCURRENT_BACKFILL_RUNS": str(MAX_BACKFILL_RUNS.get(env)),
        "DAGSTER_MAX_CONCURRENT_AUTOMATION_RUNS": str(MAX_AUTOMATION_RUNS.get(env)),
        "RUN_MEM_LIMIT": memory,
        "RUN_NANO_CPUS": str(round(RUN_CPUS.get(env) * 1e9)),
        "RUN_PIDS_LIMIT": str(RUN_PIDS_LIMIT.get(env)),
        "DAGSTER_CREATE_SCHEMA": "true" if CREATE_SCHEMA.get(env) else "false",
    }


def render(text: str, env: Mapping[str, str]) -> str:
    known = values(env)
    unknown = sorted(set(PLACEHOLDER.findall(text)) - set(known))
    if unknown:
        raise settings.SettingError(f"dagster.yaml uses ${{{unknown[0]}}}, which render_dagster_yaml.py does not declare")
    return PLACEHOLDER.sub(lambda m: known[m.group(1)], text)


def missing_run_contract_env(rendered: str, env: Mapping[str, str]) -> list[str]:
    """Variables the run contract hands to every run container by name (run_launcher.env_vars
    entries without a value) that `env` lacks. The launching process (the daemon) reads them at
    each launch; one it lacks fails every run with Dagster's terse "Tried to load environment
    variable X, but it was not set", which does not say where it is missing."""
    import yaml  # the instance image's venv has it (Dagster's dependency); imported only here

    launcher = (yaml.safe_load(rendered) or {}).get("run_launcher") or {}
    names = (launcher.get("config") or {}).get("env_vars") or []
    return [name for name in names if "=" not in name and name not in env]


def main() -> None:
    template = Path(TEMPLATE.get())
    if template.is_file():
        target = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
        try:
            rendered = render(template.read_text(), os.environ)
        except settings.SettingError as exc:
            raise SystemExit(f"dagster.yaml: {exc} (set it in .env; see .env.example)") from None
        target.write_text(rendered)
        if sys.argv[1:3] == ["dagster-daemon", "run"] and (missing := missing_run_contract_env(rendered, os.environ)):
            raise SystemExit(
                "dagster.yaml: the daemon hands the run contract's variables (run_launcher.env_vars) to "
                f"every run it launches, but it has no {', '.join(missing)}; add each to the daemon's "
                "environment in docker-compose.yml"
            )
    if len(sys.argv) > 1:
        os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
