"""The ingestion code location: brings the 2013 NYC flights into the warehouse."""

from dagster import Definitions

from ingestion.defs.assets import airlines, flights
from ingestion.defs.resources import build_resources

defs = Definitions(assets=[flights, airlines], resources=build_resources())
