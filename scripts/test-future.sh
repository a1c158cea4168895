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
# Servers the tests do not start themselves (the system PostgreSQL) keep today's date.
export PYTHONPATH="$PWD/scripts/future-clock${PYTHONPATH:+:$PYTHONPATH}"
export FAKETIME_DONT_FAKE_MONOTONIC=1
echo "running the suite at $(faketime -f "$offset" date -u +%FT%TZ)"
exec faketime -f "$offset" .venv/bin/pytest -p no:cacheprovider "$@"
