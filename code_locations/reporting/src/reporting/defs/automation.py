"""When each reporting asset runs on its own, evaluated by the `reporting_automation` sensor."""

from dagster import AutomationCondition

# Plain eager() only looks at the latest time partition (2013-12-31), so days replayed out of
# order would never be summarised; without in_latest_time_window() every day whose upstream
# updates is picked up. all_deps_blocking_checks_passed() keeps a day whose ingestion failed a
# blocking check (checks partitioned by day, as ingestion's are) out of reporting: that day is
# not requested until the check passes again, while other days go on.
DAILY_AFTER_INGESTION = (
    AutomationCondition.eager().without(AutomationCondition.in_latest_time_window())
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_any_day_after_blocking_checks")

# Months are re-ranked month-to-date: dropping ~any_deps_missing() lets January be ranked while
# only some of its days are summarised (a replay lands day by day; waiting for all 31 would
# hide the month until it is complete). The table carries days_covered so readers can tell.
MONTHLY_MONTH_TO_DATE = (
    AutomationCondition.eager()
    .without(AutomationCondition.in_latest_time_window())
    .without(~AutomationCondition.any_deps_missing())
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_any_month_to_date")


def hourly_after_upstream_change(cron_schedule: str = "0 * * * *") -> AutomationCondition:
    """For the all-days assets: a year's replay is a storm of ~365 upstream updates, and eager()
    would recompute the whole-history table after each. This runs at most once per cron tick,
    only if some dependency was updated since the last run, and never while a dependency or the
    asset itself is still running (so a burst of daily runs is absorbed into one refresh)."""
    return (
        AutomationCondition.cron_tick_passed(cron_schedule).since_last_handled()
        & AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label(f"hourly_after_upstream_change({cron_schedule})")
