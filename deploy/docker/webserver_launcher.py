#!/usr/bin/env python3
"""dagster-webserver with the platform's patches of Dagster internals applied first
(platform_core.dagster_patches): the UI judges daemon health like `make status` does, and pooled
storage connections survive a Postgres restart.

Usage: the same arguments as dagster-webserver (compose runs this instead of it)."""

import sys

from platform_core.dagster_patches import apply_webserver_patches
from platform_core.settings import SettingError


def main() -> None:
    try:
        apply_webserver_patches()
    except SettingError as exc:
        raise SystemExit(str(exc)) from None
    from dagster_webserver.cli import main as webserver_main

    sys.argv[0] = "dagster-webserver"
    sys.exit(webserver_main())


if __name__ == "__main__":
    main()
