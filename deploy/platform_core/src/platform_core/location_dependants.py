"""Which locations depend on another's assets by key: `make location-remove` refuses to break
them. Loads each location's definitions (Dagster's own asset graph), so it runs in the venv."""

from __future__ import annotations

import importlib
from pathlib import Path

from platform_core.locations import Location, LocationError, load


def _graph(location: Location):
    try:
        return importlib.import_module(location.definitions_module).defs.resolve_asset_graph()
    except Exception as exc:  # noqa: BLE001 - whatever a location's code raises, say whose it is
        raise LocationError(
            f"cannot load the definitions of location {location.name!r} ({location.definitions_module}) to check "
            f"which locations depend on which: {type(exc).__name__}: {exc}. Fix it (make test-fast shows it) and retry."
        ) from exc


def dependants(name: str, root: Path) -> list[str]:
    """'location: its/asset <- their/asset' for every asset elsewhere that reads one of `name`'s."""
    locations = load(root)
    target = next((loc for loc in locations if loc.name == name), None)
    if target is None:
        return []
    owned = set(_graph(target).materializable_asset_keys)
    found = []
    for other in locations:
        if other.name == name:
            continue
        graph = _graph(other)
        for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
            upstream = sorted(k.to_user_string() for k in graph.get(key).parent_keys & owned)
            if upstream:
                found.append(f"{other.name}: {key.to_user_string()} <- {', '.join(upstream)}")
    return found
