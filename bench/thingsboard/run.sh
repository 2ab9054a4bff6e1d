#!/usr/bin/env bash
# Start ThingsBoard IoT Gateway in the background on a generated config.
#
#   bench/thingsboard/run.sh [gen_config.py options...]     e.g. --reads blocks
#
# 1. regenerates run/config from points.json (options go to gen_config.py);
# 2. starts session_limits_responder.py (answers the gateway's getSessionLimits
#    RPC, which a plain MQTT broker never does; exits once it has answered);
# 3. starts the gateway in its own process group (setsid), cwd run/ (its
#    ./logs and ./data go there), stdout+stderr to run/logs/stdout.log.
# Prints the gateway PID on stdout and writes it to run/tb_gateway.pid. Stop:
#   kill -- -$(cat bench/thingsboard/run/tb_gateway.pid)
# Needs: ./setup.sh once; riser-sim serving the ports of points.json; an MQTT
# broker (default 127.0.0.1:1883; set MQTT_HOST/MQTT_PORT and pass the same
# --mqtt-host/--mqtt-port to change it).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RUN="$HERE/run"
PY="$HERE/.venv/bin/python"
MQTT_HOST="${MQTT_HOST:-127.0.0.1}"
MQTT_PORT="${MQTT_PORT:-1883}"
[ -x "$HERE/.venv/bin/thingsboard-gateway" ] || { echo "run $HERE/setup.sh first" >&2; exit 1; }
if [ -f "$RUN/tb_gateway.pid" ] && kill -0 "$(cat "$RUN/tb_gateway.pid")" 2>/dev/null; then
  echo "already running: PID $(cat "$RUN/tb_gateway.pid")" >&2; exit 1
fi
mkdir -p "$RUN/logs"
rm -rf "$RUN/data" "$RUN/logs/"* "$RUN/responder.ready"
"$PY" "$HERE/gen_config.py" --out "$RUN/config" "$@" >&2

setsid "$PY" "$HERE/session_limits_responder.py" --host "$MQTT_HOST" --port "$MQTT_PORT" \
  --ready-file "$RUN/responder.ready" >"$RUN/logs/responder.log" 2>&1 </dev/null &
echo $! > "$RUN/responder.pid"
for _ in $(seq 50); do [ -e "$RUN/responder.ready" ] && break; sleep 0.1; done
[ -e "$RUN/responder.ready" ] || { echo "responder did not subscribe; see $RUN/logs/responder.log" >&2; exit 1; }

cd "$RUN"
TB_GW_CONFIG_DIR="$RUN/config/" PYTHONUNBUFFERED=1 \
  setsid "$HERE/.venv/bin/thingsboard-gateway" >"$RUN/logs/stdout.log" 2>&1 </dev/null &
PID=$!
echo "$PID" > "$RUN/tb_gateway.pid"
echo "$PID"
