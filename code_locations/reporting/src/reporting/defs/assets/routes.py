"""Route performance over every day loaded so far: the dbt model
reporting/dbt/models/whole_history/route_performance.sql (unpartitioned, rebuilt as a whole)."""

from reporting.defs.assets.dbt_models import dbt_model

route_performance = dbt_model("route_performance")
