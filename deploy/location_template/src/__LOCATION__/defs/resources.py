"""Resources, each set from the environment (WAREHOUSE_* comes with the platform's run contract)."""

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from flights_shared.warehouse import warehouse_from_env


def build_resources() -> dict:
    warehouse = warehouse_from_env()
    return {
        "warehouse": warehouse,
        # DataFrames returned by assets land in the warehouse schema named by the key's prefix.
        "io_manager": PostgresPandasIOManager(warehouse=warehouse),
    }
