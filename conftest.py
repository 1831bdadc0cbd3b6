"""Root of the test suite: tests/ and every location's own tests (code_locations/*/tests).

The Postgres fixtures are registered here so a location's tests, which live in its own folder,
use them too. Markers are set from what a test uses, so `make test-fast` (no Docker) can leave
out every test that needs a container without each test having to remember its marker."""

import pytest

pytest_plugins = ["tests.postgres_fixtures"]

POSTGRES_FIXTURES = {"postgres_server", "warehouse", "postgres_url", "clean_warehouse", "warehouse_env"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.compose)

