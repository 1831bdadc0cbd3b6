"""Report rendering without a warehouse: chart bytes and markdown pieces."""

import datetime as dt

import pandas as pd
import pytest

from reporting.defs.assets.report_content import (
    PNG_MAGIC,
    daily_rates,
    markdown_table,
    ranked_carriers,
    render_chart,
)


def daily_frame(days: int) -> pd.DataFrame:
    rows = []
    for i in range(days):
        day = dt.date(2013, 1, 1) + dt.timedelta(days=i)
        rows += [(day, "EWR", 100, 90, 80), (day, "JFK", 50, 50, 25)]
    return pd.DataFrame(rows, columns=["flight_date", "origin", "flights", "arrived", "on_time"])


def test_daily_rates_weight_airports_by_arrivals():
    rates = daily_rates(daily_frame(2))
    assert list(rates.columns) == ["all NYC", "EWR", "JFK"]
    assert rates["all NYC"].tolist() == pytest.approx([105 / 140] * 2)  # not the mean of rates
    assert rates["JFK"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize("days", [1, 365])
def test_chart_is_a_png_for_one_day_and_a_full_year(days):
    png = render_chart(daily_frame(days))
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 5_000


def test_markdown_table_escapes_pipes_and_says_when_empty():
    assert markdown_table(["a"], []) == "_no data yet_"
    table = markdown_table(["Carrier", "n"], [["X|Y", 1]])
    assert table.splitlines() == ["| Carrier | n |", "| --- | --- |", "| X\\|Y | 1 |"]


def test_carriers_below_the_minimum_are_not_ranked():
    carriers = pd.DataFrame(
        {"carrier": ["AA", "ZZ", "BB"], "arrived": [100, 3, 50], "on_time": [80, 3, 45]}
    )
    ranked = ranked_carriers(carriers, min_arrivals=20)
    assert ranked["carrier"].tolist() == ["BB", "AA"]
