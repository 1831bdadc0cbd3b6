"""Resources of the ingestion location, each set from the environment at load time."""

from dagster import EnvVar

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from flights_shared.warehouse import reject_blank_env, warehouse_from_env

from ingestion.defs.landing_zone import LandingZone


def build_resources() -> dict:
    reject_blank_env("LANDING_ZONE_DIR")
    return {
        "io_manager": PostgresPandasIOManager(warehouse=warehouse_from_env()),
        "landing_zone": LandingZone(root=EnvVar("LANDING_ZONE_DIR")),
    }
