{#- Per day, carrier and origin airport. `arrived` (flights with a known arrival delay) and
    `on_time` are kept as counts next to the rates so months, carriers and the report can
    re-aggregate exactly. -#}
SELECT flight_date,
       carrier,
       origin,
       count(*) AS flights,
       count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
       count(arr_delay) AS arrived,
       count(*) FILTER (WHERE arr_delay <= {{ var('on_time_minutes') }}) AS on_time,
       avg(dep_delay)::float8 AS avg_dep_delay_min,
       avg(arr_delay)::float8 AS avg_arr_delay_min,
       (count(*) FILTER (WHERE arr_delay <= {{ var('on_time_minutes') }}))::float8
           / nullif(count(arr_delay), 0) AS on_time_rate
  FROM {{ source('ingestion', 'flights') }}
 WHERE flight_date >= {{ partition_window_bound('min_date') }}
   AND flight_date < {{ partition_window_bound('max_date') }}
 GROUP BY flight_date, carrier, origin
