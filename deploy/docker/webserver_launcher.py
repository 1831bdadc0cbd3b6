#!/usr/bin/env python3
"""dagster-webserver with daemon-heartbeat tolerances from the environment.

The UI's daemon health (GraphQL `daemonHealth`, the "Daemons" page) comes from
DagsterInstance.get_daemon_statuses, which uses Dagster's hard-coded tolerance of 1800 s: a
stopped daemon looks healthy for half an hour. Dagster calls a daemon type healthy while
now <= its last heartbeat + 30 s (heartbeat interval) + tolerance.

Each daemon type is a thread that heartbeats after its next yield, so on a loaded host a single
type can be a minute late while the process is fine; a stopped process silences every type. So
here a daemon type is healthy while the process is alive, i.e. the newest heartbeat of any
required type is within 30 s + DAGSTER_DAEMON_HEARTBEAT_TOLERANCE_SECONDS (20: a stopped daemon
shows unhealthy after 50 s at most; a live one, 8 staggered types, is nowhere near), and its own
heartbeat is within 30 s + DAGSTER_DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS (270: a stuck
thread shows after 5 minutes instead of 30).

Usage: the same arguments as dagster-webserver (this replaces the executable in compose)."""

import os
import sys

TOLERANCE_ENV = "DAGSTER_DAEMON_HEARTBEAT_TOLERANCE_SECONDS"
DEFAULT_TOLERANCE_SECONDS = 20.0
THREAD_TOLERANCE_ENV = "DAGSTER_DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS"
DEFAULT_THREAD_TOLERANCE_SECONDS = 270.0


def tolerance_from_env(name: str = TOLERANCE_ENV, default: float = DEFAULT_TOLERANCE_SECONDS) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {raw!r}")
    return value


def patch_daemon_tolerance(tolerance: float, thread_tolerance: float = DEFAULT_THREAD_TOLERANCE_SECONDS) -> None:
    from dagster import DagsterInstance
    from dagster._daemon.controller import DEFAULT_HEARTBEAT_INTERVAL_SECONDS, get_daemon_statuses
    from dagster._time import get_current_timestamp

    def get_daemon_statuses_with_tolerance(self, daemon_types=None):
        # DaemonMethods.get_daemon_statuses with the thread tolerance, then "process alive".
        required = self.get_required_daemon_types()
        statuses = get_daemon_statuses(
            self,
            daemon_types=daemon_types or required,
            ignore_errors=True,
            heartbeat_tolerance_seconds=max(thread_tolerance, tolerance),
        )
        heartbeats = self.get_daemon_heartbeats()
        newest = max((heartbeats[t].timestamp for t in required if t in heartbeats), default=None)
        alive = newest is not None and (
            get_current_timestamp() <= newest + DEFAULT_HEARTBEAT_INTERVAL_SECONDS + tolerance
        )
        if alive:
            return statuses
        return {t: s._replace(healthy=False) if s.required else s for t, s in statuses.items()}

    DagsterInstance.get_daemon_statuses = get_daemon_statuses_with_tolerance


def patch_pool_pre_ping() -> None:
    """The webserver (only it) keeps pooled storage connections (`optimize_for_webserver`), without
    a liveness check: after a Postgres restart each pooled connection failed one request with
    "server closed the connection unexpectedly" (a failed launch, a 500 in the UI) before the pool
    replaced it. pool_pre_ping tests a connection on checkout and reconnects transparently."""
    import importlib

    from dagster_postgres import utils

    original = utils.create_pg_engine

    def create_pg_engine(postgres_url, token_provider=None, **engine_kwargs):
        if "pool_size" in engine_kwargs:  # pooled; NullPool engines connect per use anyway
            engine_kwargs.setdefault("pool_pre_ping", True)
        return original(postgres_url, token_provider, **engine_kwargs)

    for name in ("event_log.event_log", "run_storage.run_storage", "schedule_storage.schedule_storage"):
        module = importlib.import_module(f"dagster_postgres.{name}")
        if getattr(module, "create_pg_engine", None) is original:
            module.create_pg_engine = create_pg_engine


def main() -> None:
    patch_daemon_tolerance(tolerance_from_env(),
                           tolerance_from_env(THREAD_TOLERANCE_ENV, DEFAULT_THREAD_TOLERANCE_SECONDS))
    patch_pool_pre_ping()
    from dagster_webserver.cli import main as webserver_main

    sys.argv[0] = "dagster-webserver"
    sys.exit(webserver_main())


if __name__ == "__main__":
    main()
