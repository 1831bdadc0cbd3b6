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



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", default=None, metavar="K/N",
                     help="run only every N-th selected test, starting with the K-th (make test-fast runs N at once)")


class _Shard:
    """A separate plugin because its hook must run last, after -m has deselected (the marker
    hook above must run before it), so the shards split what actually runs."""

    def __init__(self, k: int, n: int):
        self.k, self.n = k, n

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        # Tests spread one by one (the slow parametrized ones, a subprocess each, land on both
        # shards), except a module whose tests share a module-scoped fixture: it stays whole, or
        # each shard would pay for that fixture (a code server, say). Each unit goes to the
        # shard with the fewest tests so far.
        units: dict[str, list[pytest.Item]] = {}
        for item in items:
            units.setdefault(_shard_unit(item), []).append(item)
        shards: list[list[pytest.Item]] = [[] for _ in range(self.n)]
        for unit in units.values():
            min(shards, key=len).extend(unit)
        keep = shards[self.k - 1]
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep


def _shard_unit(item: pytest.Item) -> str:
    fixture_defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    shared = any(defs and defs[-1].scope in ("class", "module", "package") for defs in fixture_defs.values())
    return item.nodeid.split("::")[0] if shared else item.nodeid


def pytest_configure(config: pytest.Config) -> None:
    shard = config.getoption("--shard")
    if shard:
        k, _, n = shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise pytest.UsageError(f"--shard must be K/N with 1 <= K <= N, got {shard!r}")
        config.pluginmanager.register(_Shard(int(k), int(n)), "flights-shard")
