"""The canary: a trivial asset that proves launch -> run -> event log end to end (the e2e and
benchmark suites launch it); here its own logic, materialized in memory."""

import time

from dagster import AssetKey, DagsterInstance, materialize_to_memory

from platform_ops.definitions import defs
from platform_ops.defs.assets import PLATFORM_CANARY, canary


def test_canary_key_and_group_are_the_platform_s():
    assert PLATFORM_CANARY == AssetKey(["platform", "canary"])
    assert canary.key == PLATFORM_CANARY
    assert canary.group_names_by_key[PLATFORM_CANARY] == "platform"
    assert not canary.partitions_def and not canary.dependency_keys


def test_materializing_records_when_the_step_ran():
    before = time.time()
    with DagsterInstance.ephemeral() as instance:
        result = materialize_to_memory([canary], instance=instance)
        assert result.success
        (materialization,) = result.asset_materializations_for_node(canary.op.name)
        assert materialization.asset_key == PLATFORM_CANARY
        ran_at = materialization.metadata["ran_at"].value
        assert before <= ran_at <= time.time()
        latest = instance.get_latest_materialization_event(PLATFORM_CANARY)
        assert latest is not None and latest.run_id == result.run_id


def test_the_location_serves_it_and_needs_no_io_manager_or_warehouse():
    """It must not depend on anything but Dagster itself: its timing is the platform's overhead."""
    assert PLATFORM_CANARY in defs.resolve_asset_graph().materializable_asset_keys
    # Dagster lists the default IO manager for every asset; MaterializeResult stores nothing
    # through it, and the location wires none of its own (no warehouse).
    assert canary.required_resource_keys <= {"io_manager"}
    assert "io_manager" not in defs.resources
