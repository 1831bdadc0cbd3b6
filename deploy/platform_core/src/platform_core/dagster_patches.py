"""Every patch of Dagster internals the platform applies, in one module, so a Dagster upgrade has
one file to review; tests/deploy/test_dagster_patches.py fails by name when an upgrade moves a
patched function or changes its signature. Each patch names its upstream issue: when that is
fixed, delete the patch.

Dagster is imported inside the functions: platform_core must import without it."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

from platform_core import daemon_health

# Marks our replacements, so applying twice (tests, a re-imported launcher) never wraps a wrapper.
_PATCHED = "__platform_core_patch__"
# The dagster_postgres storages that bind create_pg_engine by name at import.
STORAGE_MODULES = (
    "dagster_postgres.event_log.event_log",
    "dagster_postgres.run_storage.run_storage",
    "dagster_postgres.schedule_storage.schedule_storage",
)


def patch_daemon_statuses(thresholds: daemon_health.Thresholds) -> None:
    """The UI's daemon health (GraphQL `daemonHealth`, the Daemons page, the "daemon not running"
    banners) comes from DagsterInstance.get_daemon_statuses, which tolerates a silent daemon type
    for a hard-coded DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS = 1800 (+ 30 s interval): a stopped
    daemon looks healthy for half an hour. Here it is judged like `make status` and the watchdog
    (platform_core.daemon_health), so the UI goes red within the same minute."""
    # Upstream: no upstream issue found for making this tolerance configurable (searched
    # dagster-io/dagster issues and PRs for the 1800 s daemon heartbeat tolerance).
    from dagster import DagsterInstance
    from dagster._daemon.types import DaemonStatus

    def get_daemon_statuses(self, daemon_types=None):
        # Same shape as Dagster's (heartbeat errors ignored, as it does): a type that is not
        # required has healthy=None; a required one without a heartbeat is unhealthy.
        required = list(self.get_required_daemon_types())
        heartbeats = self.get_daemon_heartbeats()
        now = time.time()
        ages = {t: now - heartbeats[t].timestamp for t in required if t in heartbeats}
        verdict = daemon_health.judge(ages, required, thresholds)
        return {
            t: DaemonStatus(daemon_type=t, required=True, healthy=verdict.type_healthy(t),
                            last_heartbeat=heartbeats.get(t))
            if t in required else
            DaemonStatus(daemon_type=t, required=False, healthy=None, last_heartbeat=None)
            for t in (daemon_types or required)
        }  # fmt: skip

    setattr(get_daemon_statuses, _PATCHED, True)
    DagsterInstance.get_daemon_statuses = get_daemon_statuses


def patch_pool_pre_ping() -> list[str]:
    """The webserver (only it) keeps pooled storage connections (`optimize_for_webserver`) without
    a liveness check: after a Postgres restart each pooled connection failed one request with
    "server closed the connection unexpectedly" (a failed launch, a 500 in the UI) before the
    pool replaced it. pool_pre_ping tests a connection on checkout and reconnects transparently.
    Returns the storage modules patched."""
    # Upstream: dagster-io/dagster#3812 (dagster_postgres not reconnecting after DB restart);
    # dagster-io/dagster#33879 asks to expose pre-ping, PR #33961 would add
    # `dagster-webserver --db-pool-pre-ping`. Once released, pass that flag instead.
    import importlib

    from dagster_postgres import utils

    original = utils.create_pg_engine

    def create_pg_engine(postgres_url, token_provider=None, **engine_kwargs):
        if "pool_size" in engine_kwargs:  # pooled; NullPool engines connect per use anyway
            engine_kwargs.setdefault("pool_pre_ping", True)
        return original(postgres_url, token_provider, **engine_kwargs)

    setattr(create_pg_engine, _PATCHED, True)
    patched = []
    for name in STORAGE_MODULES:
        module = importlib.import_module(name)
        current = getattr(module, "create_pg_engine", None)
        if current is original:
            module.create_pg_engine = create_pg_engine
            patched.append(name)
        elif getattr(current, _PATCHED, False):
            patched.append(name)
        else:  # a Dagster upgrade changed how storages build engines; the webserver still works
            print(f"dagster_patches: {name} no longer uses dagster_postgres.utils.create_pg_engine; "
                  "pool_pre_ping NOT applied (revisit platform_core.dagster_patches)", file=sys.stderr)
    return patched



def apply_webserver_patches(env: Mapping[str, str] | None = None) -> None:
    """Both webservers (editor and read-only); SettingError if a threshold is malformed."""
    patch_daemon_statuses(daemon_health.Thresholds.from_env(env))
    patch_pool_pre_ping()
