"""`make location NAME=…` and `make location-remove NAME=…`: a location is one folder under
code_locations/ plus its entry in dg.toml; everything else is generated from those.

Why not `create-dagster project`: it writes a uv.lock and .venv of the project's own, outside
this uv workspace's one lock, and a components-style definitions.py; the template here has the
same dg layout ([tool.dg] project, src/<name>/definitions.py, defs/, tests/) plus what a
location of this platform needs (warehouse, IO manager, run settings, an example to copy)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from platform_core.locations import REGISTRY_FILE, LocationError, check_new_name, load

TEMPLATE = Path("deploy") / "location_template"
PLACEHOLDER_NAME = "__LOCATION__"
PLACEHOLDER_START = "__START_DATE__"


def _project_block(relative: str) -> str:
    return f'[[workspace.projects]]\npath = "{relative}"\n'


def new(name: str, root: Path) -> Path:
    """Copy the template to code_locations/<name> and register it; nothing changes on a bad name."""
    check_new_name(name, root)
    target = root / "code_locations" / name
    # Partitions start a while back, so the example has past days to show (and refuse).
    start = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    staging = root / "code_locations" / f".{name}.scaffolding"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for source in sorted((root / TEMPLATE).rglob("*")):
            if "__pycache__" in source.parts or source.suffix == ".pyc":
                continue
            relative = Path(*(part.replace(PLACEHOLDER_NAME, name) for part in source.relative_to(root / TEMPLATE).parts))
            destination = staging / relative
            if source.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text(encoding="utf-8")
            destination.write_text(text.replace(PLACEHOLDER_NAME, name).replace(PLACEHOLDER_START, start), encoding="utf-8")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    registry = root / REGISTRY_FILE
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.rstrip("\n") + "\n\n" + _project_block(f"code_locations/{name}"), encoding="utf-8")
    return target


def _uncommitted(root: Path, folder: Path) -> list[str]:
    result = subprocess.run(["git", "status", "--porcelain", "--", str(folder)], cwd=root,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:  # not a git checkout: nothing to compare with
        return []
    return [line for line in result.stdout.splitlines() if line.strip()]


def remove(name: str, root: Path, dependants: list[str], force: bool = False) -> Path:
    """Unregister and delete code_locations/<name>. Refuses, changing nothing, when another
    location depends on its assets (`dependants`, from location_dependants) or when the folder
    holds work git does not have (unless force)."""
    location = next((loc for loc in load(root) if loc.name == name), None)
    if location is None:
        raise LocationError(f"no location named {name!r} in {REGISTRY_FILE}; registered: {', '.join(l.name for l in load(root))}")
    if dependants:
        raise LocationError(
            f"refusing to remove {name!r}: other locations depend on its assets by key: "
            f"{'; '.join(dependants)}. Remove or change those first."
        )
    folder = root / location.path
    changes = _uncommitted(root, folder)
    if changes and not force:
        raise LocationError(
            f"refusing to remove {name!r}: {location.path} has changes git does not hold "
            f"({len(changes)} file(s), e.g. {changes[0].strip()}). Commit them, or pass FORCE=1 to delete them too."
        )
    registry = root / REGISTRY_FILE
    text = registry.read_text(encoding="utf-8")
    pattern = re.compile(r"\n*\[\[workspace\.projects\]\]\s*\npath\s*=\s*\"" + re.escape(location.path.as_posix()) + r"\"\s*\n")
    updated, count = pattern.subn("\n\n", text)
    if count != 1:
        raise LocationError(f"could not find the entry of {location.path} in {registry}; edit it by hand")
    registry.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    shutil.rmtree(folder)
    return folder
