"""The __LOCATION__ code location: what its code server loads (`dagster api grpc -m
__LOCATION__.definitions`) and what `dg dev` / `make dev LOCATION=__LOCATION__` run locally."""

from dagster import Definitions, in_process_executor

from __LOCATION__.defs.assets import warehouse_size
from __LOCATION__.defs.checks import warehouse_size_is_measured
from __LOCATION__.defs.resources import build_resources
from __LOCATION__.defs.sensors import automation

# Every run already has a container of its own: steps run in its process rather than one more
# Python process per step.
defs = Definitions(
    executor=in_process_executor,
    assets=[warehouse_size],
    asset_checks=[warehouse_size_is_measured],
    sensors=[automation],
    resources=build_resources(),
)
