"""build_resources: the landing zone, like the warehouse, is configured from the environment when a
run starts, never baked in at import."""

from dagster import EnvVar

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from ingestion.defs.landing_zone import LandingZone
from ingestion.defs.resources import build_resources


def test_landing_zone_root_comes_from_landing_zone_dir(monkeypatch, tmp_path):
    """The same image serves any mount point: LANDING_ZONE_DIR is read at run time."""
    resources = build_resources()
    assert isinstance(resources["io_manager"], PostgresPandasIOManager)
    landing_zone = resources["landing_zone"]
    assert isinstance(landing_zone, LandingZone)
    assert landing_zone.root == EnvVar("LANDING_ZONE_DIR")

    monkeypatch.setenv("LANDING_ZONE_DIR", str(tmp_path))
    resolved = landing_zone.process_config_and_initialize()
    assert resolved.root == str(tmp_path)
    assert resolved.days_available("flights") == []
