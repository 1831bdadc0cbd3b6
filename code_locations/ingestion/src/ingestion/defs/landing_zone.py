"""The landing zone: where an upstream system drops one CSV per dataset and day.

Layout: ``<root>/<dataset>/<YYYY-MM-DD>.csv``. Files are immutable once landed (the replay
never rewrites one), so a partition's input is stable and re-runs are reproducible."""

import re
from datetime import date
from pathlib import Path

from dagster import ConfigurableResource

DATASETS = ("flights", "weather")
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")


class LandingZoneError(ValueError):
    """A landing path or file that cannot be used; the message names it."""


class LandingZone(ConfigurableResource):
    """Read-only view of the landing volume (``LANDING_ZONE_DIR``)."""

    root: str

    def _root(self) -> Path:
        root = Path(self.root)
        if not root.is_absolute():
            raise LandingZoneError(f"LANDING_ZONE_DIR must be an absolute path, got {self.root!r}")
        return root.resolve()

    def file_for(self, dataset: str, day: date) -> Path:
        """Path of one day's file, refusing anything that resolves outside the zone."""
        if dataset not in DATASETS:
            raise LandingZoneError(f"unknown landing dataset {dataset!r}; expected one of {DATASETS}")
        root = self._root()
        path = (root / dataset / f"{day.isoformat()}.csv").resolve()
        if not path.is_relative_to(root):
            raise LandingZoneError(
                f"landing path for {dataset} {day} resolves to {path}, outside the landing zone {root}"
            )
        return path

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self._root()))

    def days_available(self, dataset: str) -> list[date]:
        """Days whose file has landed, oldest first; temp files and stray names are ignored."""
        folder = self._root() / dataset
        if not folder.is_dir():
            return []
        days = []
        for entry in folder.iterdir():
            match = _DAY_FILE.match(entry.name)
            if match and entry.is_file():
                try:
                    days.append(date.fromisoformat(match.group(1)))
                except ValueError:
                    continue
        return sorted(days)
