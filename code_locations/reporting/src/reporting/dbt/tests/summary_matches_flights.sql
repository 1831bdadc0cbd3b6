{#- Days of the run's window whose flight / cancellation totals in the summary differ from
    ingestion's flights (a hand edit, a partial write). Severity warn, as before in Python: the
    day is flagged on the asset, while the month and the report go on. -#}
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'daily_delay_summary'}}}) }}
WITH source AS (
    SELECT flight_date, count(*) AS flights, count(*) FILTER (WHERE dep_time IS NULL) AS cancelled
      FROM {{ source('ingestion', 'flights') }}
     WHERE {{ in_partition_window('flight_date') }}
     GROUP BY flight_date
), summary AS (
    SELECT flight_date, sum(flights)::bigint AS flights, sum(cancelled)::bigint AS cancelled
      FROM {{ ref('daily_delay_summary') }}
     WHERE {{ in_partition_window('flight_date') }}
     GROUP BY flight_date
)
SELECT flight_date, source.flights AS source_flights, summary.flights AS summary_flights,
       source.cancelled AS source_cancelled, summary.cancelled AS summary_cancelled
  FROM source FULL JOIN summary USING (flight_date)
 WHERE source.flights IS DISTINCT FROM summary.flights
    OR source.cancelled IS DISTINCT FROM summary.cancelled
