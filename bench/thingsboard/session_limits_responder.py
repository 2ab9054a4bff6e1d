#!/usr/bin/env python3
"""Stand in for the ThingsBoard server's answer to the gateway's first RPC.

On every (first) connection, the gateway's MQTT client (tb-mqtt-client) sends
  v1/devices/me/rpc/request/<n>  {"method": "getSessionLimits", ...}
and reports itself "not connected" -- so it publishes nothing, only buffers
in its storage -- until a reply arrives on v1/devices/me/rpc/response/<n>.
A plain MQTT broker never replies, so this script does, with "no rate limits"
and ThingsBoard CE's default transport limits. After the first connection
the client does not ask again (a reconnect is taken as already configured).

Start it BEFORE the gateway (run.sh does); it exits after answering --count
requests or after --timeout seconds.

Usage: session_limits_responder.py [--host 127.0.0.1] [--port 1883] [--count 1] [--timeout 120]
"""

import argparse
import json
import sys
import time

import paho.mqtt.client as mqtt

REQUEST = "v1/devices/me/rpc/request/+"
RESPONSE = "v1/devices/me/rpc/response/"
LIMITS = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {},          # the gateway's own limits: none
    "gatewayRateLimits": {},   # limits of devices behind the gateway: none
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--count", type=int, default=1, help="answers before exiting (0 = never exit)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before exiting (0 = never)")
    ap.add_argument("--ready-file", help="touched once subscribed")
    a = ap.parse_args()

    state = {"answered": 0}

    def on_connect(client, userdata, flags, reason_code, properties=None):
        client.subscribe(REQUEST, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties=None):
        print("subscribed to", REQUEST, flush=True)
        if a.ready_file:
            open(a.ready_file, "w").close()

    def on_message(client, userdata, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if body.get("method") != "getSessionLimits":
            return
        req_id = msg.topic.rsplit("/", 1)[1]
        client.publish(RESPONSE + req_id, json.dumps(LIMITS), qos=1)
        state["answered"] += 1
        print(f"answered getSessionLimits request {req_id}", flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"riser-bench-limits-{int(time.time())}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(a.host, a.port, keepalive=30)
    client.loop_start()
    start = time.monotonic()
    try:
        while True:
            if a.count and state["answered"] >= a.count:
                time.sleep(0.5)  # let the QoS 1 publish complete
                break
            if a.timeout and time.monotonic() - start > a.timeout:
                print("timeout, no getSessionLimits request answered" if not state["answered"] else "timeout",
                      file=sys.stderr, flush=True)
                break
            time.sleep(0.1)
    finally:
        client.loop_stop()
        client.disconnect()
    return 0 if state["answered"] else 1


if __name__ == "__main__":
    sys.exit(main())
