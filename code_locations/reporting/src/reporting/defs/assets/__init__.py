"""Reporting assets. Upstream ingestion assets are named by key only (the shared contract in
flights_shared.asset_keys): reporting never imports ingestion's code, and the UI draws the edge
across locations. Every dbt model of reporting/dbt is an asset here (DBT_MODELS), the two the
Python assets build on under their own names."""

from reporting.defs.assets.daily import daily_delay_summary, weather_delay_link
from reporting.defs.assets.dbt_models import DBT_MODELS
from reporting.defs.assets.monthly import monthly_carrier_ranking
from reporting.defs.assets.report import on_time_report
from reporting.defs.assets.routes import route_performance

REPORTING_ASSETS = [
    *DBT_MODELS.values(),
    weather_delay_link,
    monthly_carrier_ranking,
    on_time_report,
]

__all__ = [
    "REPORTING_ASSETS",
    "daily_delay_summary",
    "monthly_carrier_ranking",
    "on_time_report",
    "route_performance",
    "weather_delay_link",
]
