"""Parse and type one landed CSV, with errors that name the file, the column and the value."""

import csv
import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ingestion.defs.landing_zone import LandingZoneError


class LandingFileError(LandingZoneError):
    """A landed file that is unreadable, incomplete or of the wrong shape."""

    def __init__(self, message: str, missing_columns: list[str] | None = None):
        super().__init__(message)
        self.missing_columns = missing_columns or []


def _first_decode_error(data: bytes) -> str:
    """Where the file stops being UTF-8; pandas' own error counts bytes within one field."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"{exc.reason} at byte {exc.start} (line {line})"
    return "undecodable bytes"


def _every_row_complete(data: bytes, raw: pd.DataFrame) -> bool:
    """True only if every data row has all columns, by counting separators in the bytes (no
    per-field Python). Without quotes a line's fields are its commas + 1; pandas already refused
    rows with too many fields (when it kept a plain row index), so with as many non-empty lines
    as rows + header and exactly (columns - 1) commas per line on average, none can be short.
    Anything else (quotes, blank-ish lines, an inferred index) goes to the exact csv check."""
    if b'"' in data or not isinstance(raw.index, pd.RangeIndex):
        return False
    lines = sum(1 for line in data.splitlines() if line)
    return lines == len(raw) + 1 and data.count(b",") == lines * (len(raw.columns) - 1)


def _raise_first_short_row(data: bytes, label: str, columns: int) -> None:
    rows = (fields for fields in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) if fields)
    next(rows)
    for number, fields in enumerate(rows, start=1):
        if len(fields) < columns:
            raise LandingFileError(
                f"{label} is truncated or malformed: data row {number} has {len(fields)} of "
                f"{columns} fields"
            )


def _fractional(values: pd.Series) -> np.ndarray:
    """Which parsed numbers are not whole (NaN, i.e. empty, is not); numpy, not pandas ops."""
    if values.dtype.kind in "iu":
        return np.zeros(len(values), dtype=bool)
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(numbers) & (np.mod(numbers, 1) != 0)


def read_landing_csv(path: Path, label: str, dtypes: dict[str, str], day: date) -> pd.DataFrame:
    """Typed rows of one day's file. Every column of `dtypes` plus year/month/day is required,
    and every row must belong to `day` (a file that carries other days is rejected whole)."""
    if not path.is_file():
        raise LandingFileError(f"{label} has not landed yet")
    data = path.read_bytes()  # once: pandas parses these bytes, the row check counts in them
    try:
        raw = pd.read_csv(io.BytesIO(data), dtype=str, encoding="utf-8", keep_default_na=False, na_values=["", "NA"])
    except UnicodeDecodeError as exc:
        raise LandingFileError(f"{label} is not UTF-8: {_first_decode_error(data)}") from exc
    except pd.errors.EmptyDataError as exc:
        raise LandingFileError(f"{label} is empty") from exc
    except pd.errors.ParserError as exc:
        raise LandingFileError(f"{label} is not valid CSV: {str(exc).strip()}") from exc
    required = ["year", "month", "day", *dtypes]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise LandingFileError(f"{label} lacks required column(s) {missing}", missing_columns=missing)
    if raw.empty:
        raise LandingFileError(f"{label} has a header but no rows")
    # pandas pads a short row with NULLs: a file cut off mid-row would otherwise parse.
    if not _every_row_complete(data, raw):
        _raise_first_short_row(data, label, len(raw.columns))
    typed = pd.DataFrame(index=raw.index)
    for column in ("year", "month", "day", *dtypes):
        kind = dtypes.get(column, "Int64")
        if kind == "string":
            typed[column] = raw[column].astype("string")
            continue
        if kind == "datetime":
            values = pd.to_datetime(raw[column], utc=True, errors="coerce")
        else:
            values = pd.to_numeric(raw[column], errors="coerce")
        bad = values.isna() & raw[column].notna()
        if bad.any():
            row = int(bad.idxmax())
            raise LandingFileError(
                f"{label}: column {column!r} has a value that is not a {kind}: "
                f"{raw[column][row]!r} (data row {row + 1})"
            )
        if kind == "Int64":
            fractional = _fractional(values)
            if fractional.any():
                row = int(raw.index[np.argmax(fractional)])
                raise LandingFileError(
                    f"{label}: column {column!r} must hold whole numbers, got {raw[column][row]!r} "
                    f"(data row {row + 1})"
                )
            values = values.astype("Int64")
        elif kind == "Float64":
            # pandas 2's to_numeric parses with a fast, inexact strtod (10.357019999999999 comes
            # back as 10.35702); the values are known numeric here, so convert them exactly.
            values = raw[column].astype("Float64")
        typed[column] = values
    elsewhere = (typed["year"] != day.year) | (typed["month"] != day.month) | (typed["day"] != day.day)
    other_days = typed[elsewhere.fillna(True).astype(bool)]
    if not other_days.empty:
        first = other_days.iloc[0]
        raise LandingFileError(
            f"{label} holds {len(other_days)} row(s) of another day, e.g. "
            f"{first['year']}-{first['month']}-{first['day']}"
        )
    return typed.drop(columns=["year", "month", "day"]).reset_index(drop=True)
