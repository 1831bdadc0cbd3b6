"""The ingestion code location: landed NYC flights and weather, day by day, into the warehouse."""

from dagster import Definitions, in_process_executor

from ingestion.defs.assets import REFERENCE_ASSETS, flights, weather
from ingestion.defs.jobs import ingest_landed_day, refresh_reference_tables
from ingestion.defs.resources import build_resources
from ingestion.defs.schedules import reference_tables_nightly
from ingestion.defs.sensors import landing_zone_sensor, reference_automation

# Steps run inside the run's own container process: every run already has a container to
# itself, and a second Python process per step (the multiprocess default) costs ~2 s of imports
# for steps that mostly wait on Postgres.
defs = Definitions(
    executor=in_process_executor,
    assets=[flights, weather, *REFERENCE_ASSETS],
    jobs=[ingest_landed_day, refresh_reference_tables],
    sensors=[landing_zone_sensor, reference_automation],
    schedules=[reference_tables_nightly],
    resources=build_resources(),
)
