#!/bin/sh
# Writes the services' broker accounts (steward-gateway, steward-push), each in
# the password file of its own listener, from the .env secrets on every start, makes sure the devices' password file exists
# (the API writes it), then runs Mosquitto.
#
# The auth folder is a volume shared with the steward service, which runs as its
# own user (uid 10001) and adds device accounts to devices.passwd by writing a new
# file there and renaming it over the old one. So the folder belongs to the
# mosquitto group (gid 1883 in the eclipse-mosquitto image; the steward image puts
# its user in a group of that id), is group-writable and setgid (the files steward
# writes keep that group), and devices.passwd is readable by owner and group only.
# The paths can be moved for tests (tests/test_compose_auth.py).
set -eu
auth=${MOSQUITTO_AUTH_DIR:-/mosquitto/config/auth}
data=${MOSQUITTO_DATA_DIR:-/mosquitto/data}
conf=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
mkdir -p "$auth"
: "${STEWARD_MQTT_PASSWORD:?set STEWARD_MQTT_PASSWORD in .env}"
: "${STEWARD_MQTT_PUSH_PASSWORD:?set STEWARD_MQTT_PUSH_PASSWORD in .env}"
account() {  # file, username, password
  rm -f "$1.tmp"
  touch "$1.tmp"
  chmod 0700 "$1.tmp"
  mosquitto_passwd -b "$1.tmp" "$2" "$3"
  mv "$1.tmp" "$1"
}
account "$auth/gateway.passwd" steward-gateway "$STEWARD_MQTT_PASSWORD"
account "$auth/push.passwd" steward-push "$STEWARD_MQTT_PUSH_PASSWORD"
rm -f "$auth/services.passwd"  # both accounts in one file, on one listener (before the gateway's had its own)
if [ ! -e "$auth/devices.passwd" ]; then
  touch "$auth/devices.passwd"
fi
chown -R mosquitto:mosquitto "$auth" "$data"
chmod 2770 "$auth"
chmod 0640 "$auth/devices.passwd"
exec mosquitto -c "$conf"
