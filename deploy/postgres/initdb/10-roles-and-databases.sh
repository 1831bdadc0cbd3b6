#!/usr/bin/env bash
# First start only: one role and database for Dagster's storage, another for the warehouse.
# Values travel as psql variables (:"ident" / :'literal'), never spliced into SQL text.
set -euo pipefail
for var in DAGSTER_PG_DB DAGSTER_PG_USER DAGSTER_PG_PASSWORD WAREHOUSE_DB WAREHOUSE_USER WAREHOUSE_PASSWORD; do
  if [ -z "${!var:-}" ]; then
    echo "postgres init: required variable $var is empty; set it in .env (see .env.example)" >&2
    exit 1
  fi
done
for var in DAGSTER_PG_CONNECTION_LIMIT WAREHOUSE_CONNECTION_LIMIT; do
  if [ -n "${!var:-}" ] && ! [[ "${!var}" =~ ^[0-9]+$ ]]; then
    echo "postgres init: $var must be a whole number, got '${!var}'" >&2
    exit 1
  fi
done
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v dagster_db="$DAGSTER_PG_DB" -v dagster_user="$DAGSTER_PG_USER" \
  -v dagster_password="$DAGSTER_PG_PASSWORD" -v dagster_limit="${DAGSTER_PG_CONNECTION_LIMIT:-120}" \
  -v warehouse_db="$WAREHOUSE_DB" -v warehouse_user="$WAREHOUSE_USER" \
  -v warehouse_password="$WAREHOUSE_PASSWORD" -v warehouse_limit="${WAREHOUSE_CONNECTION_LIMIT:-60}" <<'SQL'
CREATE ROLE :"dagster_user" LOGIN PASSWORD :'dagster_password' CONNECTION LIMIT :dagster_limit;
CREATE DATABASE :"dagster_db" OWNER :"dagster_user";
REVOKE ALL ON DATABASE :"dagster_db" FROM PUBLIC;
CREATE ROLE :"warehouse_user" LOGIN PASSWORD :'warehouse_password' CONNECTION LIMIT :warehouse_limit;
CREATE DATABASE :"warehouse_db" OWNER :"warehouse_user";
REVOKE ALL ON DATABASE :"warehouse_db" FROM PUBLIC;
SQL
echo "postgres init: created databases $DAGSTER_PG_DB and $WAREHOUSE_DB"
