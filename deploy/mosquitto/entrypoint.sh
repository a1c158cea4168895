#!/bin/sh
# Creates the gateway's broker account on first start (password from the
# STEWARD_MQTT_PASSWORD secret), then runs Mosquitto.
set -eu
auth=/mosquitto/config/auth
mkdir -p "$auth"
if [ ! -s "$auth/passwd" ]; then
  : "${STEWARD_MQTT_PASSWORD:?set STEWARD_MQTT_PASSWORD in .env}"
  touch "$auth/passwd"
  chmod 0700 "$auth/passwd"
  mosquitto_passwd -b "$auth/passwd" steward-gateway "$STEWARD_MQTT_PASSWORD"
fi
chown -R mosquitto:mosquitto "$auth" /mosquitto/data
exec mosquitto -c /mosquitto/config/mosquitto.conf
