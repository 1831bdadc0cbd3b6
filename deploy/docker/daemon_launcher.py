#!/usr/bin/env python3
"""dagster-daemon with the platform's patches of Dagster internals applied first
(platform_core.dagster_patches): run monitoring fails a STARTING run whose container died within
one monitoring pass instead of after the start timeout; the storages share a small connection pool
instead of connecting per query; the run queue is polled every 0.25 s instead of every 1-1.5 s.

Usage: the same arguments as dagster-daemon (compose runs this instead of it)."""

import sys

from platform_core.dagster_patches import apply_daemon_patches


def main() -> None:
    apply_daemon_patches()
    from dagster._daemon.cli import main as daemon_main

    sys.argv[0] = "dagster-daemon"
    sys.exit(daemon_main())


if __name__ == "__main__":
    main()
