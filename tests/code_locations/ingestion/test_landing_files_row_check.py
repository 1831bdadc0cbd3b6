"""read_landing_csv's complete-row check: it counts separators in the bytes and falls back to a
csv scan only when that count cannot prove every row complete. Each case here must still be
refused (or accepted) exactly as the row-by-row csv scan decides."""

from datetime import date

import pytest

from ingestion.defs.assets import FLIGHT_DTYPES
from ingestion.defs.landing_files import LandingFileError, read_landing_csv

DAY = "2013-01-01"


def read(landing, label):
    return read_landing_csv(landing.path("flights", DAY), label("flights", DAY), FLIGHT_DTYPES, date.fromisoformat(DAY))


def cut_row(line: str, fields: int) -> str:
    return ",".join(line.rstrip("\n").split(",")[:fields]) + "\n"


def quote_tailnum(line: str) -> str:
    parts = line.rstrip("\n").split(",")
    parts[11] = f'"{parts[11]}"'
    return ",".join(parts) + "\n"


SHORT_ROWS = {
    # data row 300 keeps 12 of 19 fields; everything else is intact
    "short-row-in-the-middle": (lambda lines: [*lines[:300], cut_row(lines[300], 12), *lines[301:]],
                                "data row 300 has 12 of 19 fields"),
    # quotes send the check to the csv scan, which must still find the short row
    "short-row-in-a-quoted-file": (lambda lines: [lines[0], quote_tailnum(lines[1]), *lines[2:50],
                                                  cut_row(lines[50], 18), *lines[51:]],
                                   "data row 50 has 18 of 19 fields"),
    "whitespace-only-line": (lambda lines: [*lines[:10], "   \n", *lines[10:]], "of 19 fields"),
}


@pytest.mark.parametrize("case", list(SHORT_ROWS))
def test_short_rows_are_refused_naming_the_row(landing, label, case):
    corrupt, fragment = SHORT_ROWS[case]
    landing.add(DAY)
    landing.write_lines("flights", DAY, corrupt(landing.lines("flights", DAY)))
    with pytest.raises(LandingFileError, match="truncated or malformed") as raised:
        read(landing, label)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda lines: [lines[0], *map(quote_tailnum, lines[1:])], id="quoted-fields"),
        pytest.param(lambda lines: [line.replace("\n", "\r\n") for line in lines], id="crlf-line-ends"),
        pytest.param(lambda lines: [*lines, "\n", "\n"], id="trailing-blank-lines"),
    ],
)
def test_complete_files_in_other_shapes_are_accepted(landing, label, rewrite):
    landing.add(DAY)
    lines = landing.lines("flights", DAY)
    landing.write_lines("flights", DAY, rewrite(lines))
    frame = read(landing, label)
    assert len(frame) == len(lines) - 1
    assert frame["tailnum"].notna().sum() > 0
