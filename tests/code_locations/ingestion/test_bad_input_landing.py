"""Landing paths that try to leave the landing zone, against real files in a temp dir: refused
with an error naming the path, and a run that meets one writes nothing. (Malformed, truncated,
duplicated and badly encoded files are covered in test_landing_files.py and test_assets.py.)"""

from datetime import date

import pytest
from dagster import materialize

from flights_shared.postgres_io_manager import PostgresPandasIOManager
from ingestion.defs.assets import flights
from ingestion.defs.landing_zone import LandingZone, LandingZoneError

DAY = date(2013, 1, 1)


@pytest.fixture
def secret(tmp_path):
    """A file outside the zone that must never be read through it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return path


@pytest.mark.parametrize(
    "dataset", ["../../etc/passwd", "/etc/passwd", "flights/../../../etc", "flights/../weather", ""]
)
def test_traversal_or_absolute_dataset_is_refused_naming_it(landing, dataset):
    landing.add("2013-01-01")
    with pytest.raises(LandingZoneError, match="unknown landing dataset") as raised:
        landing.zone.file_for(dataset, DAY)
    assert repr(dataset) in str(raised.value)


@pytest.mark.parametrize("root", ["../../etc", "landing/../..", "", "."])
def test_relative_root_with_traversal_is_refused_naming_it(root):
    with pytest.raises(LandingZoneError, match="must be an absolute path") as raised:
        LandingZone(root=root).file_for("flights", DAY)
    assert repr(root) in str(raised.value)


def test_dataset_folder_symlinked_outside_is_refused(landing, secret):
    """Not only the day file: a dataset directory that is a link out of the zone is refused."""
    outside_dir = secret.parent
    (outside_dir / "2013-01-01.csv").write_text("year,month,day\n2013,1,1\n")
    landing.root.mkdir(parents=True, exist_ok=True)
    (landing.root / "flights").symlink_to(outside_dir, target_is_directory=True)
    with pytest.raises(LandingZoneError) as raised:
        landing.zone.file_for("flights", DAY)
    message = str(raised.value)
    assert str(outside_dir / "2013-01-01.csv") in message
    assert "outside the landing zone" in message


def test_day_file_linked_by_relative_traversal_is_refused(landing, secret):
    """A relative link (../../outside/passwd) is resolved before the check, like an absolute one."""
    landing.add("2013-01-01", datasets=("weather",))
    link = landing.path("flights", "2013-01-01")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("../../outside/passwd")
    assert link.resolve() == secret.resolve()
    with pytest.raises(LandingZoneError, match="outside the landing zone") as raised:
        landing.zone.file_for("flights", DAY)
    assert str(secret.resolve()) in str(raised.value)


@pytest.mark.postgres
def test_a_run_meeting_an_escaping_file_fails_naming_it_and_writes_nothing(
    landing, secret, clean_warehouse, sql_rows
):
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA ingestion")
        cursor.execute("CREATE TABLE ingestion.flights (flight_date date, flight bigint)")
        cursor.execute("INSERT INTO ingestion.flights VALUES ('2013-01-01', 1545)")
    link = landing.path("flights", "2013-01-01")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)

    result = materialize(
        [flights],
        resources={
            "landing_zone": LandingZone(root=str(landing.root)),
            "io_manager": PostgresPandasIOManager(warehouse=clean_warehouse),
        },
        partition_key="2013-01-01",
        raise_on_error=False,
    )

    assert not result.success
    failure = "\n".join(
        e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
    )
    assert str(secret) in failure and "outside the landing zone" in failure
    assert "root:x:0:0" not in failure
    assert sql_rows(clean_warehouse, "SELECT flight_date::text, flight FROM ingestion.flights") == [
        ("2013-01-01", 1545)
    ]
