"""platform_core.location_dependants on the real registry: reporting reads ingestion's assets by
key, nothing reads reporting's or the platform location's, so only ingestion is protected."""

import pytest

from platform_core.location_dependants import dependants
from tests.deploy.platform_core.repo_copies import REPO

pytestmark = pytest.mark.filterwarnings("ignore::Warning")  # Dagster's preview/beta notices


def test_reporting_depends_on_ingestion():
    found = dependants("ingestion", REPO)
    assert "reporting: reporting/daily_delay_summary <- ingestion/flights" in found
    assert all(line.startswith("reporting: reporting/") for line in found), found
    assert all(" <- ingestion/" in line for line in found), found
    assert found == sorted(found)  # stable order: one per dependent asset, by key


def test_nothing_depends_on_reporting():
    assert dependants("reporting", REPO) == []


def test_nothing_depends_on_the_platform_location():
    assert dependants("platform", REPO) == []


def test_an_unknown_location_has_no_dependants():
    assert dependants("sales", REPO) == []
