#!/bin/sh
# Writes the services' broker accounts (steward-gateway, steward-push) from the
# .env secrets on every start, makes sure the devices' password file exists
# (the API writes it), then runs Mosquitto.
set -eu
auth=/mosquitto/config/auth
mkdir -p "$auth"
: "${STEWARD_MQTT_PASSWORD:?set STEWARD_MQTT_PASSWORD in .env}"
: "${STEWARD_MQTT_PUSH_PASSWORD:?set STEWARD_MQTT_PUSH_PASSWORD in .env}"
services="$auth/services.passwd"
rm -f "$services.tmp"
touch "$services.tmp"
chmod 0700 "$services.tmp"
mosquitto_passwd -b "$services.tmp" steward-gateway "$STEWARD_MQTT_PASSWORD"
mosquitto_passwd -b "$services.tmp" steward-push "$STEWARD_MQTT_PUSH_PASSWORD"
mv "$services.tmp" "$services"
if [ ! -e "$auth/devices.passwd" ]; then
  touch "$auth/devices.passwd"
  chmod 0700 "$auth/devices.passwd"
fi
chown -R mosquitto:mosquitto "$auth" /mosquitto/data
exec mosquitto -c /mosquitto/config/mosquitto.conf
