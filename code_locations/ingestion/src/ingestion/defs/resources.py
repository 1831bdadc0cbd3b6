"""Resources of the ingestion location, each set from the environment at load time."""

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from flights_shared.warehouse import warehouse_from_env


def build_resources() -> dict:
    return {"io_manager": PostgresPandasIOManager(warehouse=warehouse_from_env())}
