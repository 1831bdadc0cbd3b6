{#- No two rows share the values of `columns` (within the run's partition window, if any).
    dbt-utils has this test, but packages would be fetched from the hub: none are used. -#}
{% test unique_combination(model, columns, window_column=none) %}
SELECT {{ columns | join(', ') }}, count(*) AS copies
  FROM {{ model }}
 WHERE {{ in_partition_window(window_column) if window_column else 'TRUE' }}
 GROUP BY {{ columns | join(', ') }}
HAVING count(*) > 1
{% endtest %}
