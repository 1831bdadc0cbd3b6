"""Partitions both locations agree on, so a reporting day maps 1:1 onto an ingestion day."""

from dagster import DailyPartitionsDefinition

# The data set covers calendar 2013; end_date is exclusive.
DAYS_OF_2013 = DailyPartitionsDefinition(start_date="2013-01-01", end_date="2014-01-01")
