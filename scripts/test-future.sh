#!/usr/bin/env bash
# The whole suite with the wall clock moved ahead (default one year): a test that
# depends on today's date fails here. Needs Debian's faketime (installed when we
# are root). Extra arguments go to pytest, e.g. scripts/test-future.sh +730d tests/api
# or scripts/test-future.sh tests/api (a year ahead)
set -euo pipefail
cd "$(dirname "$0")/.."
offset=+365d
# The first argument is the offset when it looks like one (+365d, +730d, +8760h); otherwise it goes to pytest.
if [ $# -gt 0 ] && [[ "$1" =~ ^[+-][0-9]+[smhdy]?$ ]]; then offset=$1; shift; fi
if ! command -v faketime >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet (test-prerequisites.sh updates them
    # only when it installs something itself).
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
  else
    echo "faketime is missing: apt-get install faketime" >&2; exit 1
  fi
fi
# Only the realtime clock moves; monotonic timers keep working (see future-clock/sitecustomize.py).
export PYTHONPATH="$PWD/scripts/future-clock${PYTHONPATH:+:$PYTHONPATH}"
export FAKETIME_DONT_FAKE_MONOTONIC=1
# The database's clock moves too: the tests' server is a private PostgreSQL started
# under the same faked clock (future-clock/postgres.py), so SQL's now() is ahead as
# well. A TEST_DATABASE_URL given by the caller (e.g. a TimescaleDB server) is used
# as it is, and keeps its own date: the run then says so.
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/steward-future-pg-XXXXXX)
  trap 'faketime -f "$offset" .venv/bin/python scripts/future-clock/postgres.py stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  TEST_DATABASE_URL=$(faketime -f "$offset" .venv/bin/python scripts/future-clock/postgres.py start "$pgdir" 2>/dev/null | tail -1)
  export TEST_DATABASE_URL
else
  echo "TEST_DATABASE_URL is set: its server keeps its own date (only this side's clock moves)"
fi
echo "running the suite at $(faketime -f "$offset" date -u +%FT%TZ), database clock" \
     "$(faketime -f "$offset" .venv/bin/python -c 'import os, psycopg; print(psycopg.connect(os.environ["TEST_DATABASE_URL"]).execute("SELECT now()::text").fetchone()[0])')"
faketime -f "$offset" .venv/bin/pytest -p no:cacheprovider "$@"
