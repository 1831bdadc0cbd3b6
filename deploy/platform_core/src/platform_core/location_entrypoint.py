"""Entrypoint of every code-location image. A run worker (`dagster api execute_run` or
`resume_run`, the command the run launcher gives each run container) runs in this process with
the platform's patches of Dagster applied first (platform_core.dagster_patches: its storages keep
one pooled connection instead of opening one per event); any other command (the code server, a
service a location brings along, a shell) is exec'd unchanged.

Usage: ENTRYPOINT ["python", "-m", "platform_core.location_entrypoint"] (code-location.Dockerfile)."""

from __future__ import annotations

import os
import sys

RUN_WORKER_COMMANDS = (["dagster", "api", "execute_run"], ["dagster", "api", "resume_run"])


def is_run_worker(argv: list[str]) -> bool:
    return any(argv[: len(command)] == command for command in RUN_WORKER_COMMANDS)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("platform_core.location_entrypoint: no command given (the image's CMD runs the code server)")
    if is_run_worker(argv):
        from platform_core.dagster_patches import apply_run_worker_patches

        apply_run_worker_patches()
        from dagster._cli import main as dagster_main

        sys.argv = argv
        sys.exit(dagster_main())
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
