{#- The run's partition window [min_date, max_date) as SQL date literals. Dagster passes both as
    vars (reporting.defs.dbt); a model or test run without them, or with a value that is not an
    ISO date, fails to compile with a message saying so instead of scanning every day. -#}
{% macro partition_window_bound(name) -%}
  {%- set value = var(name, none) -%}
  {%- if execute -%}
    {%- if value is none -%}
      {{ exceptions.raise_compiler_error(
          "var '" ~ name ~ "' is not set: day-partitioned models run for a window of days, e.g. "
          ~ "--vars '{\"min_date\": \"2013-01-01\", \"max_date\": \"2013-01-02\"}' (max_date exclusive)") }}
    {%- elif not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
      {{ exceptions.raise_compiler_error(
          "var '" ~ name ~ "' must be an ISO date (YYYY-MM-DD), got '" ~ value ~ "'") }}
    {%- endif -%}
  {%- endif -%}
  '{{ value }}'::date
{%- endmacro %}

{#- `column >= min_date AND column < max_date` when the window vars are set, else TRUE: tests run
    within the window a Dagster run built, and over the whole table when run without vars. -#}
{% macro in_partition_window(column) -%}
  {%- if var('min_date', none) is not none and var('max_date', none) is not none -%}
    {{ column }} >= {{ partition_window_bound('min_date') }} AND {{ column }} < {{ partition_window_bound('max_date') }}
  {%- else -%}
    TRUE
  {%- endif -%}
{%- endmacro %}
