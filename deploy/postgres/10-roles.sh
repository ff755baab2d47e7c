#!/bin/sh
# Run once by the postgres image on an empty data directory (as its superuser): the two
# roles and the database of README's "Production" section. Passwords come from the
# environment compose passes (OWNER_PASSWORD, APP_PASSWORD), never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$OWNER_PASSWORD" -v app_password="$APP_PASSWORD" <<'SQL'
CREATE ROLE tenant_api_owner LOGIN PASSWORD :'owner_password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE tenant_api_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE tenant_api OWNER tenant_api_owner;
SQL
