"""The ingestion code location: landed NYC flights and weather, day by day, into the warehouse."""

from dagster import Definitions

from ingestion.defs.assets import REFERENCE_ASSETS, flights, weather
from ingestion.defs.jobs import ingest_landed_day, refresh_reference_tables
from ingestion.defs.resources import build_resources
from ingestion.defs.schedules import reference_tables_nightly
from ingestion.defs.sensors import landing_zone_sensor, reference_automation

defs = Definitions(
    assets=[flights, weather, *REFERENCE_ASSETS],
    jobs=[ingest_landed_day, refresh_reference_tables],
    sensors=[landing_zone_sensor, reference_automation],
    schedules=[reference_tables_nightly],
    resources=build_resources(),
)
