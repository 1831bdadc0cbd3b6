"""Jobs the sensor and the schedule launch."""

from dagster import AssetSelection, define_asset_job

from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from flights_shared.partitions import DAYS_OF_2013

ingest_landed_day = define_asset_job(
    "ingest_landed_day",
    selection=AssetSelection.assets(FLIGHTS, WEATHER),
    partitions_def=DAYS_OF_2013,
    description="Load one landed day of flights and weather into the warehouse.",
)

refresh_reference_tables = define_asset_job(
    "refresh_reference_tables",
    selection=AssetSelection.assets(AIRLINES, AIRPORTS, PLANES),
    description="Reload airlines, airports and planes.",
)
