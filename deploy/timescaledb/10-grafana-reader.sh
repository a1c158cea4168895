#!/bin/sh
# First start of the database only (docker-entrypoint-initdb.d): the login
# Grafana reads with. It gets SELECT on the tables its dashboards read, and
# nothing else (no users, tokens or residents), from Steward's migration
# 0061_grafana_reader.sql when Steward first starts.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE grafana_reader LOGIN PASSWORD '${GRAFANA_DB_PASSWORD}';
GRANT CONNECT ON DATABASE "$POSTGRES_DB" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
SQL
