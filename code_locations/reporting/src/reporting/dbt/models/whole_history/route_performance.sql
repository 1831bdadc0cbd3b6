{#- Per origin -> destination route over every day loaded so far; distance in miles. -#}
SELECT origin,
       dest,
       count(*) AS flights,
       count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
       count(arr_delay) AS arrived,
       count(*) FILTER (WHERE arr_delay <= {{ var('on_time_minutes') }}) AS on_time,
       (count(*) FILTER (WHERE arr_delay <= {{ var('on_time_minutes') }}))::float8
           / nullif(count(arr_delay), 0) AS on_time_rate,
       avg(arr_delay)::float8 AS avg_arr_delay_min,
       avg(distance)::float8 AS distance,
       min(flight_date) AS first_date,
       max(flight_date) AS last_date,
       count(DISTINCT flight_date) AS days_covered
  FROM {{ source('ingestion', 'flights') }}
 GROUP BY origin, dest
