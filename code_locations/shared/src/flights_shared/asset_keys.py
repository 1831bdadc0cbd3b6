"""The cross-location contract: the asset keys (and so the warehouse tables) one location
publishes and another depends on. Reporting imports these keys, never ingestion's code, so the
two locations stay independently deployable while lineage and automation still join up."""

from dagster import AssetKey

INGESTION_PREFIX = "ingestion"
REPORTING_PREFIX = "reporting"

FLIGHTS = AssetKey([INGESTION_PREFIX, "flights"])
AIRLINES = AssetKey([INGESTION_PREFIX, "airlines"])

# Column that time-partitioned tables are partitioned by; the IO manager deletes and reloads
# exactly this column's window when a partition is re-materialized.
FLIGHT_DATE_COLUMN = "flight_date"


def table_for(key: AssetKey) -> tuple[str, str]:
    """Warehouse (schema, table) that holds an asset: first key component is the schema."""
    if len(key.path) < 2:
        raise ValueError(
            f"asset key {key.to_user_string()!r} needs a prefix naming its warehouse schema"
        )
    return key.path[0], "_".join(key.path[1:])
