#!/usr/bin/env bash
# ThingsBoard IoT Gateway SQLite event storage benchmark (write rate, drain
# rate to MQTT at QoS 1, bytes on the wire per reading); see README.md.
#
#   bench/thingsboard/storage_bench.sh [storage_bench.py options...]
#
# Runs setup.sh first if the venv is missing, then storage_bench.py against the
# broker at MQTT_HOST:MQTT_PORT (default 127.0.0.1:1883; anonymous access).
# Options go to storage_bench.py, e.g. --readings 200000, --devices 100,
# --read-records 10, --no-relay, --json out.json (--help for all).
# SQLite files go to bench/thingsboard/run/storage_bench/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MQTT_HOST="${MQTT_HOST:-127.0.0.1}"
MQTT_PORT="${MQTT_PORT:-1883}"
[ -x "$HERE/.venv/bin/python" ] && "$HERE/.venv/bin/python" -c 'import thingsboard_gateway' 2>/dev/null \
  || "$HERE/setup.sh" >&2
exec "$HERE/.venv/bin/python" "$HERE/storage_bench.py" --host "$MQTT_HOST" --port "$MQTT_PORT" "$@"
