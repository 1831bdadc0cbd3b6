"""The `preflight` service: runs once before Postgres starts and refuses what would leave the
stack unsafe for good. Postgres sets its roles' passwords when it first creates its volume, so a
placeholder copied from .env.example would stay the password until someone changes it by hand."""

from __future__ import annotations

import sys

from platform_core import dagster_storage, settings

PASSWORDS = [
    settings.text("POSTGRES_PASSWORD", required=True, doc="Postgres' superuser password"),
    dagster_storage.PASSWORD,
    # Declared by flights_shared.warehouse, which this image (the instance's) does not carry.
    settings.text("WAREHOUSE_PASSWORD", required=True, doc="that role's password"),
]
PLACEHOLDER_PREFIX = "change-me"
GENERATE = "`make prepare` writes .env with generated ones, or: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


def problems(env=None) -> list[str]:
    found = []
    for setting in PASSWORDS:
        try:
            value = setting.get(env)
        except settings.SettingError as exc:
            found.append(str(exc))
            continue
        if value.lower().startswith(PLACEHOLDER_PREFIX):
            found.append(f"{setting.name} is the placeholder of .env.example ({value[:len(PLACEHOLDER_PREFIX)]}…)")
    return found


def main() -> int:
    found = problems()
    if found:
        print("preflight: refusing to start: " + "; ".join(found) + f". Set real passwords in .env: {GENERATE}",
              file=sys.stderr)
        return 1
    print("preflight: passwords set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
