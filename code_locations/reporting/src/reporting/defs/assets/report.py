"""The human-readable on-time report: a chart and a markdown summary, published to the reports
directory and attached to the materialization so they show in the Dagster UI."""

import base64
from datetime import timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from psycopg2 import sql

from flights_shared.asset_keys import AIRLINES, FLIGHT_DATE_COLUMN, REPORTING_PREFIX
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.daily import daily_delay_summary, weather_delay_link
from reporting.defs.assets.monthly import MONTH_COLUMN, monthly_carrier_ranking
from reporting.defs.assets.report_content import (
    CHART_FILE,
    MARKDOWN_FILE,
    ReportData,
    rate,
    render_chart,
    render_markdown,
)
from reporting.defs.assets.routes import route_performance
from reporting.defs.assets.upstream import (
    UpstreamNotMaterializedError,
    fetch_frame,
    require_table,
    table_identifier,
)
from reporting.defs.automation import hourly_after_upstream_change
from reporting.defs.resources import ReportsDirectory

MIN_CARRIER_ARRIVALS = 20
MIN_ROUTE_FLIGHTS = 10
WORST_ROUTES = 5

# The weekly schedule refreshes the report every Monday; more than a week plus a couple of hours
# means that run is late, more than eight days that it was missed.
REPORT_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=7, hours=2)
)

DAILY_SQL = sql.SQL(
    """
    SELECT {date} AS flight_date, origin, sum(flights)::bigint AS flights,
           sum(arrived)::bigint AS arrived, sum(on_time)::bigint AS on_time
      FROM {summary} GROUP BY {date}, origin ORDER BY {date}, origin
    """
)
CARRIERS_SQL = sql.SQL(
    """
    SELECT s.carrier, a.name, sum(s.flights)::bigint AS flights,
           sum(s.arrived)::bigint AS arrived, sum(s.on_time)::bigint AS on_time,
           sum(s.avg_arr_delay_min * s.arrived) / nullif(sum(s.arrived), 0) AS avg_arr_delay_min
      FROM {summary} AS s LEFT JOIN {airlines} AS a ON a.carrier = s.carrier
     GROUP BY s.carrier, a.name ORDER BY s.carrier
    """
)
# The month's best carrier among those with enough arrivals to count (a carrier with three
# flights all on time would otherwise lead); the ranking table itself ranks every carrier.
LEADERS_SQL = sql.SQL(
    """
    SELECT DISTINCT ON (r.{month}) r.{month} AS month_start, r.carrier, a.name, r.on_time_rate,
           r.days_covered
      FROM {ranking} AS r LEFT JOIN {airlines} AS a ON a.carrier = r.carrier
     WHERE r.arrived >= %(min_arrivals)s AND r.on_time_rate IS NOT NULL
     ORDER BY r.{month}, r.rank, r.arrived DESC, r.carrier
    """
)
WORST_ROUTES_SQL = sql.SQL(
    """
    SELECT origin, dest, flights, on_time_rate, avg_arr_delay_min, distance
      FROM {routes} WHERE flights >= %(min_flights)s AND avg_arr_delay_min IS NOT NULL
     ORDER BY avg_arr_delay_min DESC, origin, dest LIMIT %(limit)s
    """
)
WEATHER_SQL = sql.SQL(
    """
    SELECT factor, condition, sum(flights)::bigint AS flights, sum(arrived)::bigint AS arrived,
           sum(on_time)::bigint AS on_time,
           sum(avg_arr_delay_min * arrived) / nullif(sum(arrived), 0) AS avg_arr_delay_min
      FROM {link} GROUP BY factor, condition ORDER BY factor, condition
    """
)

UPSTREAM = [daily_delay_summary, monthly_carrier_ranking, route_performance, weather_delay_link]


def load_report_data(cursor) -> ReportData:
    """Everything the report shows, aggregated in the warehouse from the reporting tables."""
    for upstream in UPSTREAM:
        require_table(cursor, upstream.key)
    require_table(cursor, AIRLINES)
    tables = {
        "summary": table_identifier(daily_delay_summary.key),
        "ranking": table_identifier(monthly_carrier_ranking.key),
        "routes": table_identifier(route_performance.key),
        "link": table_identifier(weather_delay_link.key),
        "airlines": table_identifier(AIRLINES),
        "date": sql.Identifier(FLIGHT_DATE_COLUMN),
        "month": sql.Identifier(MONTH_COLUMN),
    }

    def frame(query: sql.SQL, params: dict, dtypes: dict) -> pd.DataFrame:
        return fetch_frame(cursor, query.format(**tables), params, dtypes)

    counts = {"flights": "int64", "arrived": "int64", "on_time": "int64"}
    daily = frame(DAILY_SQL, {}, {"flight_date": "date", "origin": "string", **counts})
    if daily.empty:
        raise UpstreamNotMaterializedError(
            f"{daily_delay_summary.key.to_user_string()} has no rows yet: materialize some of "
            "its days before the report"
        )
    return ReportData(
        daily=daily,
        carriers=frame(
            CARRIERS_SQL,
            {},
            {"carrier": "string", "name": "string", **counts, "avg_arr_delay_min": "float64"},
        ),
        monthly_leaders=frame(
            LEADERS_SQL,
            {"min_arrivals": MIN_CARRIER_ARRIVALS},
            {
                "month_start": "date",
                "carrier": "string",
                "name": "string",
                "on_time_rate": "float64",
                "days_covered": "int64",
            },
        ),
        worst_routes=frame(
            WORST_ROUTES_SQL,
            {"min_flights": MIN_ROUTE_FLIGHTS, "limit": WORST_ROUTES},
            {
                "origin": "string",
                "dest": "string",
                "flights": "int64",
                "on_time_rate": "float64",
                "avg_arr_delay_min": "float64",
                "distance": "float64",
            },
        ),
        weather=frame(
            WEATHER_SQL,
            {},
            {"factor": "string", "condition": "string", **counts, "avg_arr_delay_min": "float64"},
        ),
        min_carrier_arrivals=MIN_CARRIER_ARRIVALS,
        min_route_flights=MIN_ROUTE_FLIGHTS,
    )


@asset(
    key_prefix=[REPORTING_PREFIX],
    group_name="reporting",
    deps=[*UPSTREAM, AIRLINES],
    kinds={"matplotlib", "markdown"},
    automation_condition=hourly_after_upstream_change(),
    freshness_policy=REPORT_FRESHNESS,
)
def on_time_report(
    context: AssetExecutionContext, warehouse: WarehouseResource, reports_dir: ReportsDirectory
) -> MaterializeResult:
    """Chart of the daily on-time rate plus a markdown summary (best/worst carriers, monthly
    leaders, worst routes, weather effect) for people who do not query the warehouse."""
    with warehouse.connection() as conn, conn.cursor() as cursor:
        data = load_report_data(cursor)
    png = render_chart(data.daily)
    chart_path = reports_dir.write_atomically(CHART_FILE, png)
    markdown_path = reports_dir.write_atomically(
        MARKDOWN_FILE, render_markdown(data, image_src=CHART_FILE).encode()
    )
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    daily = data.daily
    context.log.info(f"wrote {markdown_path} and {chart_path}")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.md(render_markdown(data, image_src=data_uri)),
            "report_path": MetadataValue.path(str(markdown_path)),
            "chart_path": MetadataValue.path(str(chart_path)),
            "first_day": str(daily["flight_date"].min()),
            "last_day": str(daily["flight_date"].max()),
            "days": int(daily["flight_date"].nunique()),
            "on_time_rate": MetadataValue.float(
                rate(daily["on_time"].sum(), daily["arrived"].sum()) or 0.0
            ),
        }
    )
