"""on_time_report: real PNG and markdown written into REPORTS_DIR, and the same content in the
materialization metadata."""

import base64
import datetime as dt
import re

import pytest
from dagster import MetadataValue

from reporting.defs.assets.daily import ON_TIME_MINUTES, daily_delay_summary, weather_delay_link
from reporting.defs.assets.monthly import monthly_carrier_ranking
from reporting.defs.assets.report import MIN_CARRIER_ARRIVALS, REPORT_FRESHNESS, on_time_report
from reporting.defs.assets.report_content import CHART_FILE, MARKDOWN_FILE, PNG_MAGIC
from reporting.defs.assets.routes import route_performance
from reporting.defs.assets.upstream import UpstreamNotMaterializedError

pytestmark = pytest.mark.postgres

DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest


@pytest.fixture
def upstream_reports(loaded_warehouse, run_reporting):
    assert run_reporting([daily_delay_summary, weather_delay_link], partition_range=(DAYS[0], DAYS[-1])).success
    assert run_reporting([monthly_carrier_ranking], partition_key="2013-01-01").success
    assert run_reporting([route_performance]).success
    return loaded_warehouse


def test_report_writes_png_and_markdown_and_attaches_them(
    upstream_reports, run_reporting, reporting_env, expected_flights, source_airlines
):
    assert not reporting_env.exists()  # created by the resource
    result = run_reporting([on_time_report])
    assert result.success

    chart = reporting_env / CHART_FILE
    markdown = reporting_env / MARKDOWN_FILE
    png = chart.read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    text = markdown.read_text()
    assert f"![Daily on-time rate]({CHART_FILE})" in text
    assert not [p.name for p in reporting_env.iterdir() if p.name.endswith(".tmp")]

    # The numbers in the text come from the data: period, flights, overall and best carrier.
    arrived = expected_flights["arr_delay"].notna().sum()
    on_time = (expected_flights["arr_delay"] <= ON_TIME_MINUTES).sum()
    assert f"{DAYS[0]} to {DAYS[-1]}" in text
    assert f"{len(expected_flights):,} flights" in text
    assert f"**{100 * on_time / arrived:.1f} % on time**" in text
    by_carrier = expected_flights.groupby("carrier")["arr_delay"]
    rates = (by_carrier.apply(lambda s: (s <= ON_TIME_MINUTES).sum()) / by_carrier.count())[
        by_carrier.count() >= MIN_CARRIER_ARRIVALS
    ]
    best = rates.idxmax()
    best_name = source_airlines.set_index("carrier").loc[best, "name"]
    best_section = text.split("## Best carriers")[1].split("##")[0]
    first_row = [line for line in best_section.splitlines() if line.startswith("| ")][2]
    assert first_row.startswith(f"| {best} ({best_name}) |"), first_row
    assert f"{100 * rates.max():.1f} %" in first_row
    # One month loaded, so its leader (among carriers with enough arrivals) is the best carrier.
    leaders = text.split("## Best carrier of each month")[1].split("##")[0]
    assert [line for line in leaders.splitlines() if line.startswith("| ")][2].startswith(
        f"| 2013-01 | {best} ({best_name}) |"
    )
    for heading in ("## Worst carriers", "## Best carrier of each month", "## Worst routes", "## Weather at departure"):
        assert heading in text
    assert "| precipitation | wet |" in text and "| visibility | low |" in text

    # Metadata: markdown with the PNG embedded as a data URI, plus paths to both files.
    metadata = result.asset_materializations_for_node("reporting__on_time_report")[0].metadata
    report = metadata["report"]
    assert isinstance(report, MetadataValue.md("").__class__)
    match = re.search(r"\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", report.value)
    assert match and base64.b64decode(match.group(1)) == png
    assert report.value.replace(match.group(0), f"({CHART_FILE})") == text
    assert metadata["report_path"].value == str(markdown)
    assert metadata["chart_path"].value == str(chart)
    assert metadata["days"].value == len(DAYS)
    assert metadata["on_time_rate"].value == pytest.approx(on_time / arrived, abs=1e-9)


def test_rerun_replaces_the_files(upstream_reports, run_reporting, reporting_env):
    assert run_reporting([on_time_report]).success
    (reporting_env / MARKDOWN_FILE).write_text("stale")
    assert run_reporting([on_time_report]).success
    assert (reporting_env / MARKDOWN_FILE).read_text().startswith("# On-time performance")
    assert sorted(p.name for p in reporting_env.iterdir()) == sorted([CHART_FILE, MARKDOWN_FILE])


def test_report_before_its_upstream_names_what_to_run(loaded_warehouse, run_reporting, reporting_env):
    with pytest.raises(UpstreamNotMaterializedError, match=r"reporting\.daily_delay_summary does not exist yet.*reporting/daily_delay_summary"):
        run_reporting([on_time_report])
    assert not reporting_env.exists()


def test_relative_reports_dir_is_rejected(upstream_reports, run_reporting, monkeypatch):
    monkeypatch.setenv("REPORTS_DIR", "reports")
    with pytest.raises(ValueError, match="REPORTS_DIR must be an absolute path"):
        run_reporting([on_time_report])


def test_report_freshness_uses_the_time_window_policy():
    spec = next(iter(on_time_report.specs))
    assert spec.freshness_policy == REPORT_FRESHNESS
    assert REPORT_FRESHNESS.fail_window.to_timedelta() == dt.timedelta(days=8)
    assert REPORT_FRESHNESS.warn_window.to_timedelta() < REPORT_FRESHNESS.fail_window.to_timedelta()
