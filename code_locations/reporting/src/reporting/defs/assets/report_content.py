"""Rendering of the on-time report: the chart (PNG bytes) and the markdown text, from plain
frames, so the layout can be tested without a warehouse."""

import io
from dataclasses import dataclass

import pandas as pd

CHART_FILE = "on_time_report.png"
MARKDOWN_FILE = "on_time_report.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ReportData:
    """What the report shows; every frame already aggregated by the warehouse.

    daily: flight_date, origin, flights, arrived, on_time
    carriers: carrier, name, flights, arrived, on_time, avg_arr_delay_min
    monthly_leaders: month_start, carrier, name, on_time_rate, days_covered
    worst_routes: origin, dest, flights, on_time_rate, avg_arr_delay_min, distance
    weather: factor, condition, flights, arrived, on_time, avg_arr_delay_min
    """

    daily: pd.DataFrame
    carriers: pd.DataFrame
    monthly_leaders: pd.DataFrame
    worst_routes: pd.DataFrame
    weather: pd.DataFrame
    min_carrier_arrivals: int
    min_route_flights: int


def rate(on_time, arrived) -> float | None:
    return float(on_time) / float(arrived) if arrived else None


def daily_rates(daily: pd.DataFrame) -> pd.DataFrame:
    """Date-indexed on-time rates: one column per origin airport plus "all NYC"."""
    by_origin = daily.pivot_table(
        index="flight_date", columns="origin", values=["arrived", "on_time"], aggfunc="sum"
    )
    rates = by_origin["on_time"] / by_origin["arrived"]
    totals = daily.groupby("flight_date")[["arrived", "on_time"]].sum()
    rates.insert(0, "all NYC", totals["on_time"] / totals["arrived"])
    rates.index = pd.to_datetime(rates.index)
    return rates.sort_index()


def render_chart(daily: pd.DataFrame) -> bytes:
    """Daily on-time rate over the loaded period, overall and per origin airport, as PNG.

    Drawn on a bare Figure with the Agg canvas (no pyplot): no global figure state and no GUI
    backend, so it is safe in a headless, multi-threaded code server or run worker."""
    rates = daily_rates(daily) * 100
    # Imported here: matplotlib costs ~1 s at import, paid only by the run that draws the chart,
    # not by the code server or every other run of this location.
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    marker = "o" if len(rates) <= 31 else None
    for column in rates.columns:
        overall = column == "all NYC"
        axes.plot(
            rates.index,
            rates[column],
            label=column,
            linewidth=2.5 if overall else 1.2,
            color="black" if overall else None,
            marker=marker,
            markersize=3,
        )
    first, last = rates.index.min().date(), rates.index.max().date()
    span_days = (last - first).days + 1
    if span_days <= 62:  # day ticks (never hours, even for a single day)
        axes.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, span_days // 10)))
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    else:
        axes.xaxis.set_major_locator(mdates.MonthLocator())
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    axes.set_title(f"Daily on-time arrival rate (<= 15 min late), {first} to {last}")
    axes.set_ylabel("on time (%)")
    axes.set_ylim(0, 100)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left", ncols=len(rates.columns))
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _percent(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{100 * value:.1f} %"


def _minutes(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} min"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return "_no data yet_"
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def _carrier_label(row) -> str:
    name = row.get("name")
    return f"{row['carrier']} ({name})" if isinstance(name, str) and name else str(row["carrier"])


def ranked_carriers(carriers: pd.DataFrame, min_arrivals: int) -> pd.DataFrame:
    """Carriers with enough arrivals to rank, best on-time rate first."""
    ranked = carriers[carriers["arrived"] >= min_arrivals].copy()
    ranked["on_time_rate"] = ranked["on_time"] / ranked["arrived"]
    return ranked.sort_values(["on_time_rate", "carrier"], ascending=[False, True])


def render_markdown(data: ReportData, image_src: str, top_n: int = 3) -> str:
    """The report text. `image_src` is the chart's file name for the file on disk, or a
    data: URI for the copy shown in the Dagster UI."""
    daily = data.daily
    days = daily["flight_date"].nunique()
    first, last = daily["flight_date"].min(), daily["flight_date"].max()
    flights, arrived, on_time = (int(daily[c].sum()) for c in ("flights", "arrived", "on_time"))

    ranked = ranked_carriers(data.carriers, data.min_carrier_arrivals)

    def carrier_rows(frame: pd.DataFrame) -> list[list]:
        return [
            [_carrier_label(r), int(r["flights"]), _percent(r["on_time_rate"]), _minutes(r["avg_arr_delay_min"])]
            for _, r in frame.iterrows()
        ]

    carrier_headers = ["Carrier", "Flights", "On time", "Mean arrival delay"]
    leaders = [
        [str(r["month_start"])[:7], _carrier_label(r), _percent(r["on_time_rate"]), int(r["days_covered"])]
        for _, r in data.monthly_leaders.iterrows()
    ]
    routes = [
        [f"{r['origin']} → {r['dest']}", int(r["flights"]), _minutes(r["avg_arr_delay_min"]),
         _percent(r["on_time_rate"]), f"{r['distance']:.0f} mi"]
        for _, r in data.worst_routes.iterrows()
    ]  # fmt: skip
    weather = [
        [r["factor"], r["condition"], int(r["flights"]), _percent(rate(r["on_time"], r["arrived"])),
         _minutes(r["avg_arr_delay_min"])]
        for _, r in data.weather.iterrows()
    ]  # fmt: skip

    sections = [
        f"# On-time performance of NYC departures, {first} to {last}",
        (
            f"{days} day(s), {flights:,} flights, {arrived:,} with a known arrival: "
            f"**{_percent(rate(on_time, arrived))} on time** (arrival at most 15 minutes late)."
        ),
        f"![Daily on-time rate]({image_src})",
        f"## Best carriers (at least {data.min_carrier_arrivals} arrivals)",
        markdown_table(carrier_headers, carrier_rows(ranked.head(top_n))),
        "## Worst carriers",
        markdown_table(carrier_headers, carrier_rows(ranked.tail(top_n).iloc[::-1])),
        f"## Best carrier of each month (at least {data.min_carrier_arrivals} arrivals; month to date while loading)",
        markdown_table(["Month", "Carrier", "On time", "Days covered"], leaders),
        f"## Worst routes by mean arrival delay (at least {data.min_route_flights} flights)",
        markdown_table(["Route", "Flights", "Mean arrival delay", "On time", "Distance"], routes),
        "## Weather at departure",
        "Each flight is matched to the weather at its origin in its scheduled departure hour.",
        markdown_table(["Factor", "Condition", "Flights", "On time", "Mean arrival delay"], weather),
    ]
    return "\n\n".join(sections) + "\n"
