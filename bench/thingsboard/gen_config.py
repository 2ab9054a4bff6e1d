#!/usr/bin/env python3
"""Generate a ThingsBoard IoT Gateway (thingsboard-gateway 3.8.x) config
directory from points.json: tb_gateway.json, logs.json and modbus.json.

One TB device per (port, unit) of points.json, named "riser-<port>-u<unit>",
each polled every --poll-ms over Modbus TCP. Devices behind the same port
share one TCP connection (the connector keys its clients by host:port), like
the RS-485 line behind a serial device server.

--reads per-point (default): one telemetry key per point, named as in
  points.json. The connector issues one Modbus request per key (it never merges
  keys), so 1 000 points = 1 000 requests per poll round.
--reads blocks: contiguous whole registers of one device and table become one
  wide-range key ("address": "0-6"), one request per block; the connector
  names those keys "<prefix>_r<register>" (e.g. level_r4, ai_in_r7), not as in
  points.json. Bit points stay one key (one request) each: the connector
  cannot split one read into several bit keys.

The MQTT side connects to --mqtt-host:--mqtt-port as if it were a ThingsBoard
server (access token = MQTT user name) and publishes on v1/gateway/connect and
v1/gateway/telemetry; remote configuration, remote shell, statistics and gRPC
are off, storage is in memory.

Usage: gen_config.py [--points points.json] [--out run/config] [--reads per-point|blocks]
"""

import argparse
import json
import os
from collections import OrderedDict

UNIT_TYPE = {1: "level_transmitter", 2: "pressure_transmitter", 3: "pump_cabinet",
             4: "fire_panel", 5: "analog_input_8ch"}
# Transmitter registers are i16 (value may be negative in principle); the rest u16.
SIGNED_UNITS = {1, 2}
FUNCTION_CODE = {"holding": 3, "input": 4}
BLOCK_PREFIX = {(1, "holding"): "level", (1, "input"): "level_in", (2, "holding"): "pressure",
                (2, "input"): "pressure_in", (3, "holding"): "pump", (3, "input"): "pump_in",
                (4, "holding"): "panel", (4, "input"): "panel_in", (5, "holding"): "ai",
                (5, "input"): "ai_in"}


def device_name(port, unit):
    return f"riser-{port}-u{unit}"


def point_key(p):
    if p["bit"] is not None:
        return {"tag": p["name"], "type": "bits", "functionCode": FUNCTION_CODE[p["table"]],
                "objectsCount": 1, "address": p["register"], "bit": p["bit"], "bitTargetType": "bool"}
    return {"tag": p["name"], "type": "16int" if p["unit"] in SIGNED_UNITS else "16uint",
            "functionCode": FUNCTION_CODE[p["table"]], "objectsCount": 1, "address": p["register"]}


def block_keys(unit, points):
    """Whole registers grouped into contiguous runs per table; bits stay single."""
    keys = []
    by_table = OrderedDict()
    for p in points:
        if p["bit"] is not None:
            keys.append(point_key(p))
        else:
            by_table.setdefault(p["table"], set()).add(p["register"])
    for table, regs in by_table.items():
        regs = sorted(regs)
        runs, start, prev = [], regs[0], regs[0]
        for r in regs[1:]:
            if r != prev + 1:
                runs.append((start, prev))
                start = r
            prev = r
        runs.append((start, prev))
        for a, b in runs:
            prefix = BLOCK_PREFIX.get((unit, table), f"u{unit}_{table}")
            if a == b:
                keys.append({"tag": f"{prefix}_r{a}", "type": "16int" if unit in SIGNED_UNITS else "16uint",
                             "functionCode": FUNCTION_CODE[table], "objectsCount": 1, "address": a})
            else:
                keys.append({"tag": prefix + "_r${address}", "type": "16int" if unit in SIGNED_UNITS else "16uint",
                             "functionCode": FUNCTION_CODE[table], "objectsCount": 1, "address": f"{a}-{b}",
                             "maxRegistersPerRequest": 125})
    return keys


def slave(host, port, unit, points, poll_ms, reads):
    keys = [point_key(p) for p in points] if reads == "per-point" else block_keys(unit, points)
    s = {
        "host": host, "port": port, "type": "tcp", "method": "socket",
        "unitId": unit, "deviceName": device_name(port, unit),
        "deviceType": UNIT_TYPE.get(unit, "default"),
        "timeout": 5, "byteOrder": "BIG", "wordOrder": "BIG",
        "retries": 1, "retryOnEmpty": False, "retryOnInvalid": False,
        "pollPeriod": poll_ms,
        "connectAttemptTimeMs": 5000, "connectAttemptCount": 5, "waitAfterFailedAttemptsMs": 30000,
        "attributes": [], "timeseries": keys,
        "attributeUpdates": [], "rpc": [],
    }
    if any(p["bit"] is not None for p in points):
        # Stock converter returns the wrong bit for FC03 "bits" + "bit" (see riser_bits_converter.py).
        s["uplink_converter"] = "RiserBitsUplinkConverter"
    return s


def logs_config(level):
    handlers = {
        "file": {
            "class": "logging.FileHandler", "formatter": "fmt",
            "filename": "./logs/tb_gateway.log", "encoding": "utf-8",
        },
    }
    loggers = {name: {"handlers": ["file"], "level": level, "propagate": False}
               for name in ("service", "connector", "converter", "tb_connection", "storage",
                            "extension", "database")}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"fmt": {"class": "logging.Formatter",
                               "format": "%(asctime)s.%(msecs)03d |%(levelname)s| %(name)s %(module)s.%(funcName)s: %(message)s",
                               "datefmt": "%Y-%m-%d %H:%M:%S"}},
        "handlers": handlers, "loggers": loggers,
        # As in the stock logs.json: root (pymodbus, paho...) at ERROR. At WARNING,
        # pymodbus logs a deprecation warning for every decoded value.
        "root": {"level": "ERROR", "handlers": ["file"]},
    }


def gateway_config(mqtt_host, mqtt_port, token):
    return {
        "thingsboard": {
            "host": mqtt_host, "port": mqtt_port,
            "remoteShell": False, "remoteConfiguration": False, "latencyDebugMode": False,
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600,
                           "customStatsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False, "filterFile": "list.json"},
            "maxPayloadSizeBytes": 8196, "minPackSendDelayMS": 50, "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60, "handleDeviceRenaming": False,
            "security": {"type": "accessToken", "accessToken": token},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False, "inactivityTimeoutSeconds": 300,
                                       "inactivityCheckPeriodSeconds": 10},
            # "0:0," = no client-side rate limit (also the default for a host
            # that is not thingsboard.cloud / demo.thingsboard.io).
            "rateLimits": "0:0,", "dpRateLimits": "0:0,", "messagesRateLimits": "0:0,",
            "deviceMessagesRateLimits": "0:0,", "deviceRateLimits": "0:0,", "deviceDpRateLimits": "0:0,",
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 100000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}],
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default=os.path.join(here, "points.json"))
    ap.add_argument("--out", default=os.path.join(here, "run", "config"))
    ap.add_argument("--modbus-host", default="127.0.0.1")
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--token", default="riser-bench-tb-gateway",
                    help="access token, sent as the MQTT user name (anonymous Mosquitto ignores it)")
    ap.add_argument("--poll-ms", type=int, default=1000)
    ap.add_argument("--reads", choices=["per-point", "blocks"], default="per-point")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args()

    with open(a.points) as f:
        points = json.load(f)
    devices = OrderedDict()
    for p in points:
        devices.setdefault((p["port"], p["unit"]), []).append(p)

    slaves = [slave(a.modbus_host, port, unit, pts, a.poll_ms, a.reads) for (port, unit), pts in devices.items()]
    os.makedirs(a.out, exist_ok=True)
    files = {
        "tb_gateway.json": gateway_config(a.mqtt_host, a.mqtt_port, a.token),
        "logs.json": logs_config(a.log_level),
        "modbus.json": {"master": {"slaves": slaves}},
    }
    for name, body in files.items():
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(body, f, indent=2)
            f.write("\n")
    # The gateway rewrites these at run time; start from empty files.
    for name in ("connected_devices.json", "list.json"):
        with open(os.path.join(a.out, name), "w") as f:
            f.write("{}\n" if name == "list.json" else "")
    n_keys = sum(len(s["timeseries"]) for s in slaves)
    print(f"{a.out}: {len(slaves)} devices, {len(points)} points, {n_keys} telemetry keys "
          f"(= Modbus requests per {a.poll_ms} ms round, reads={a.reads})")


if __name__ == "__main__":
    main()
