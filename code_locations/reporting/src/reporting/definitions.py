"""The reporting code location: summaries built on ingestion's tables, joined by asset key."""

from dagster import Definitions

from reporting.defs.assets import daily_carrier_delays
from reporting.defs.resources import build_resources

defs = Definitions(assets=[daily_carrier_delays], resources=build_resources())
