#!/usr/bin/env bash
# One ThingsBoard IoT Gateway measurement, start to stop:
#
#   bench/thingsboard/bench.sh [gen_config.py options...]     e.g. --reads blocks
#
# run.sh, WARMUP s (default 30), then measure.sh over WINDOW s (default 60)
# while mosquitto_sub counts what the gateway publishes on v1/gateway/telemetry
# (to show it keeps up with 1 000 points/s), then stops the gateway.
# The simulator (riser-sim serve --count 20 --modbus-base-port 16020 ...) and
# the broker must already run. Last stdout line:
#   "rss_kb_max cpu_percent datapoints_per_s messages_per_s"
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WARMUP=${WARMUP:-30}
WINDOW=${WINDOW:-60}
MQTT_HOST="${MQTT_HOST:-127.0.0.1}"
MQTT_PORT="${MQTT_PORT:-1883}"

PID=$("$HERE/run.sh" "$@")
stop() {  # SIGTERM the gateway's process group, wait up to 10 s, then SIGKILL
  kill -- "-$PID" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$PID" 2>/dev/null || true
}
trap stop EXIT
echo "gateway PID $PID; warm-up ${WARMUP}s" >&2
sleep "$WARMUP"
kill -0 "$PID" || { echo "gateway died; see $HERE/run/logs/" >&2; exit 1; }

TEL=$(mktemp)
timeout "$WINDOW" mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -q 0 -t v1/gateway/telemetry >"$TEL" &
SUB=$!
RESULT=$("$HERE/measure.sh" "$PID" "$WINDOW")
wait "$SUB" || true
RATES=$(python3 - "$TEL" "$WINDOW" <<'EOF'
import json, sys
msgs = dps = 0
for line in open(sys.argv[1]):
    try:
        body = json.loads(line)
    except ValueError:
        continue
    for records in body.values():
        for r in records:
            msgs += 1
            dps += len(r.get("values", {}))
w = float(sys.argv[2])
print(f"{dps / w:.1f} {msgs / w:.1f}")
EOF
)
rm -f "$TEL"
errors=$(grep -c '|ERROR|' "$HERE/run/logs/tb_gateway.log" || true)
echo "gateway log: $errors ERROR lines ($HERE/run/logs/tb_gateway.log)" >&2
echo "rss_kb_max cpu_percent datapoints_per_s messages_per_s" >&2
echo "$RESULT $RATES"
