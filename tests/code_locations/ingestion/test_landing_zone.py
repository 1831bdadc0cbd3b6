"""LandingZone: where each dataset/day file is, and which days have landed, without ever reading
outside the zone."""

import os
import shutil
from datetime import date

import pytest

from ingestion.defs.landing_zone import LandingZone, LandingZoneError

DAY = date(2013, 1, 1)


def test_file_for_is_root_dataset_day_csv(landing):
    """The layout the replay writes and the assets read: <root>/<dataset>/<YYYY-MM-DD>.csv."""
    landing.add("2013-01-01")
    zone = landing.zone
    assert zone.file_for("flights", DAY) == landing.root.resolve() / "flights" / "2013-01-01.csv"
    assert (
        zone.file_for("weather", date(2013, 12, 31))
        == landing.root.resolve() / "weather" / "2013-12-31.csv"
    )
    assert zone.file_for("flights", DAY).is_file()
    assert zone.relative(zone.file_for("weather", DAY)) == "weather/2013-01-01.csv"


def test_file_for_refuses_an_unknown_dataset(landing):
    """A typo or a hostile name ("../x") must not become a path."""
    for dataset in ("planes", "../flights", "flights/.."):
        with pytest.raises(LandingZoneError, match="unknown landing dataset") as raised:
            landing.zone.file_for(dataset, DAY)
        assert repr(dataset) in str(raised.value)


def test_relative_root_is_refused():
    """A relative LANDING_ZONE_DIR would depend on the process's working directory."""
    zone = LandingZone(root="landing")
    with pytest.raises(
        LandingZoneError, match="LANDING_ZONE_DIR must be an absolute path, got 'landing'"
    ):
        zone.file_for("flights", DAY)
    with pytest.raises(LandingZoneError, match="absolute path"):
        zone.days_available("flights")


def test_symlinked_day_file_pointing_outside_the_zone_is_refused(landing, tmp_path):
    """A landed name must not be a way to make the pipeline read any file on the host."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    landing.add("2013-01-01")
    shutil.move(landing.path("flights", "2013-01-01"), outside / "secret.csv")
    landing.path("flights", "2013-01-01").symlink_to(outside / "secret.csv")

    with pytest.raises(LandingZoneError) as raised:
        landing.zone.file_for("flights", DAY)
    message = str(raised.value)
    assert "flights 2013-01-01" in message
    assert str(outside / "secret.csv") in message
    assert "outside the landing zone" in message
    # The other dataset of the same day is unaffected.
    assert landing.zone.file_for("weather", DAY).is_file()


def test_root_that_is_a_symlink_is_followed(landing, tmp_path):
    """A mounted volume is often reached through a symlink; that alone is not an escape."""
    landing.add("2013-01-01")
    link = tmp_path / "landing-link"
    link.symlink_to(landing.root)
    zone = LandingZone(root=str(link))
    assert zone.file_for("flights", DAY) == landing.root.resolve() / "flights" / "2013-01-01.csv"
    assert zone.days_available("flights") == [DAY]


def test_days_available_sorted_and_ignores_what_is_not_a_landed_day(landing):
    """The sensor requests runs from this list: temp files of a landing in progress, stray names,
    impossible dates and folders must not become runs, and order must be by day."""
    landing.add("2013-01-03", "2013-01-01", "2013-01-02")
    folder = landing.root / "flights"
    real = landing.path("flights", "2013-01-01").read_bytes()
    for stray in (
        ".2013-01-04.csv.4242.tmp",  # the replay's temp name while it writes
        ".2013-01-05.csv",
        "2013-01-06.csv.tmp",
        "2013-01-07.CSV",
        "2013-1-8.csv",
        "2013-02-30.csv",  # not a date
        "2013-13-01.csv",
        "README",
        "flights-2013-01-09.csv",
    ):
        (folder / stray).write_bytes(real)
    (folder / "2013-01-10.csv").mkdir()  # a directory with a day's name

    assert landing.zone.days_available("flights") == [
        date(2013, 1, 1),
        date(2013, 1, 2),
        date(2013, 1, 3),
    ]


def test_days_available_of_one_dataset_ignores_the_other(landing):
    """Weather that landed must not make flights look landed (2013-12-31 has flights only)."""
    landing.add("2013-12-30", "2013-12-31")
    assert landing.zone.days_available("flights") == [date(2013, 12, 30), date(2013, 12, 31)]
    assert landing.zone.days_available("weather") == [date(2013, 12, 30)]


def test_days_available_of_a_missing_folder_is_empty(landing, tmp_path):
    """Before the first file lands (or on an unmounted volume) there is nothing to do, no crash."""
    assert landing.zone.days_available("flights") == []
    assert LandingZone(root=str(tmp_path / "does-not-exist")).days_available("weather") == []
    os.makedirs(landing.root / "weather")
    assert landing.zone.days_available("weather") == []
