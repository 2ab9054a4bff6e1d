#!/usr/bin/env python3
"""Benchmark ThingsBoard IoT Gateway's SQLite event storage (store-and-forward buffer).

Run with the venv's python (bench/thingsboard/.venv, made by setup.sh); the
wrapper storage_bench.sh does that. Uses the gateway's own classes:

  thingsboard_gateway.storage.sqlite.sqlite_event_storage.SQLiteEventStorage
      with its default settings (only data_file_path is set), i.e. what
      `"storage": {"type": "sqlite"}` gives in tb_gateway.json;
  ConvertedData/TelemetryEntry + simplejson.dumps, to make each stored event
      exactly as TBGatewayService.__send_data_pack_to_storage does;
  tb_gateway_mqtt.TBGatewayMqttClient (tb-mqtt-client, the gateway's MQTT
      client) and gw_send_telemetry(), QoS 1, topic v1/gateway/telemetry.

Phases:
  1. build: N/--per-put events (one device, --per-put readings each, one poll
     cycle per event, ts 1 s apart), serialized as the gateway does; not timed
     as storage work.
  2. write: put() them all, then wait until every row is committed in SQLite
     (polled through a second, read-only connection: SELECT max(id)).
     "committed rate" = readings / (first put() .. last row committed).
     Capped at --max-seconds (default 180); the rate is then on what was
     committed by the cap.
  3. latency probe (separate, empty storage): single put()s spaced out; time
     from put() returning until the row is visible as committed.
  4. drain: the loop of TBGatewayService.__read_data_from_storage:
     get_event_pack() -> group by deviceName -> gw_send_telemetry() per device
     -> TBPublishInfo.get() on each (the gateway's PUBACK wait) ->
     event_pack_processing_done(), until the storage is empty. The MQTT
     connection goes through a byte-counting TCP relay (a child process) so
     the bytes on the socket are counted; --no-relay connects directly.

The broker must accept anonymous clients. tb-mqtt-client waits for the
server's answer to its getSessionLimits RPC before it publishes anything;
session_limits_responder.py (next to this file) gives it (no rate limits,
maxPayloadSize 65536, maxInflightMessages 100).

Usage: storage_bench.py [--readings 1000000] [--host 127.0.0.1] [--port 1883] ...
"""

import argparse
import json
import os
import random
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------
# Byte-counting TCP relay (runs as a child process: `storage_bench.py --relay-child HOST PORT`)
# --------------------------------------------------------------------------

def relay_child(host, port):
    """Listen on 127.0.0.1:<ephemeral>, relay to host:port, count bytes each way.
    Prints the listening port; then answers each line on stdin with
    "<client->broker bytes> <broker->client bytes>"; exits on stdin EOF."""
    import selectors
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    sel.register(lsock, selectors.EVENT_READ, ("listen", None))
    sel.register(sys.stdin, selectors.EVENT_READ, ("ctl", None))
    print(lsock.getsockname()[1], flush=True)
    counts = {"c2s": 0, "s2c": 0}
    while True:
        for key, _ in sel.select():
            kind, peer = key.data
            if kind == "listen":
                c, _addr = lsock.accept()
                s = socket.create_connection((host, port))
                for x in (c, s):
                    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(c, selectors.EVENT_READ, ("c2s", s))
                sel.register(s, selectors.EVENT_READ, ("s2c", c))
            elif kind == "ctl":
                line = sys.stdin.readline()
                if not line:
                    return
                print(counts["c2s"], counts["s2c"], flush=True)
            else:
                src = key.fileobj
                try:
                    data = src.recv(262144)
                except OSError:
                    data = b""
                if not data:
                    for x in (src, peer):
                        try:
                            sel.unregister(x)
                        except (KeyError, ValueError):
                            pass
                        x.close()
                    continue
                counts[kind] += len(data)
                peer.sendall(data)


class Relay:
    def __init__(self, host, port):
        self.proc = subprocess.Popen([sys.executable, __file__, "--relay-child", host, str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def counts(self):
        self.proc.stdin.write("c\n")
        self.proc.stdin.flush()
        c2s, s2c = self.proc.stdout.readline().split()
        return int(c2s), int(s2c)

    def cpu_s(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


# --------------------------------------------------------------------------
# Load: one poll cycle of --per-put points = one event of one device
# --------------------------------------------------------------------------

def make_keys(n):
    """Telemetry keys: the point names of points.json in order (2 buildings for
    100 points); a repeated name gets a suffix _2, _3, ... to stay unique
    within the one device. Returns [(key, kind)]."""
    points = json.load(open(HERE / "points.json"))
    keys, seen = [], {}
    for p in points[:n]:
        name = p["name"]
        seen[name] = seen.get(name, 0) + 1
        key = name if seen[name] == 1 else f"{name}_{seen[name]}"
        keys.append((key, "bit" if p.get("bit") is not None else name))
    while len(keys) < n:
        keys.append((f"p{len(keys)}", "value"))
    return keys


def value_for(kind, rng):
    """Register values like the simulator's: booleans for bit points, small
    config integers, process values in the thousands (mm, kPa*?, uA)."""
    if kind == "bit":
        return rng.random() < 0.1
    if kind.endswith(("_addr", "_unit")):
        return 1
    if kind.endswith("_baud"):
        return 3
    if kind.endswith("_decimals"):
        return 3
    if kind.endswith("_range_zero"):
        return 0
    if kind.endswith("_range_full"):
        return 3160
    if kind.endswith("_ua"):
        return rng.randint(4000, 20000)
    if kind.endswith("_present"):
        return 1
    if kind.endswith("_starts"):
        return rng.randint(0, 9)
    return rng.randint(0, 5000)


def build_events(n_events, per_put, devices, ts0_ms):
    from simplejson import dumps  # the gateway's JSON library and options
    from thingsboard_gateway.gateway.entities.converted_data import ConvertedData
    from thingsboard_gateway.gateway.entities.telemetry_entry import TelemetryEntry
    keys = make_keys(per_put)
    rng = random.Random(42)
    out = []
    for i in range(n_events):
        dev = f"riser-bench-{i % devices}" if devices > 1 else "riser-bench-0"
        data = ConvertedData(device_name=dev, device_type="default")
        data.add_to_telemetry(TelemetryEntry({k: value_for(kind, rng) for k, kind in keys},
                                             ts=ts0_ms + (i // devices) * 1000))
        out.append(dumps(data.to_dict(False), separators=(',', ':'), skipkeys=True, ignore_nan=True))
    return out


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def committed_rows(conn):
    row = conn.execute("SELECT max(id) FROM messages").fetchone()
    return row[0] or 0


def make_logger():
    import logging
    from thingsboard_gateway.tb_utility.tb_logger import TbLogger
    logging.setLoggerClass(TbLogger)
    log = logging.getLogger("storage")
    log.setLevel(logging.INFO)         # as the stock logs.json: INFO, so trace()/debug() are no-ops
    h = logging.StreamHandler(sys.stderr)
    h.setLevel(logging.WARNING)        # only warnings and errors are shown
    h.setFormatter(logging.Formatter("storage %(levelname)s: %(message)s"))
    log.addHandler(h)
    log.propagate = False
    # tb-mqtt-client warns "Cannot retrieve service configuration" when it reads
    # Mosquitto's MQTT 5 CONNACK properties as if they were session limits (see
    # README, pitfall 1); the real answer comes from session_limits_responder.py.
    logging.getLogger("tb_connection").setLevel(logging.ERROR)
    return log


def fresh_dir(path):
    """(Re)create a directory for the storage; refuse to wipe anything that is
    not a ThingsBoard storage (data*.db, -wal, -shm)."""
    if path.exists():
        other = [p.name for p in path.iterdir() if not (p.name.startswith("data") and ".db" in p.name)]
        if other:
            sys.exit(f"{path} holds other files ({other[:3]}...); choose another --data-dir")
        shutil.rmtree(path)
    path.mkdir(parents=True)


def db_files_size(path):
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def new_storage(path, log, extra):
    from threading import Event
    from thingsboard_gateway.storage.sqlite.sqlite_event_storage import SQLiteEventStorage
    config = {"type": "sqlite", "data_file_path": str(path) + "/"}
    config.update(extra)
    return SQLiteEventStorage(config, log, Event())


def pragmas(db_path):
    """The pragmas as the storage's connection set them (a new connection would
    show the defaults for per-connection ones, so re-apply TB's connect())."""
    from thingsboard_gateway.storage.sqlite.database_connector import DatabaseConnector
    import logging
    c = DatabaseConnector(str(db_path), logging.getLogger("storage"), threading.Event())
    c.connect()
    res = {p: c.connection.execute(f"PRAGMA {p}").fetchone()[0]
           for p in ("journal_mode", "synchronous", "wal_autocheckpoint", "page_size", "journal_size_limit")}
    c.close()
    return res


# --------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------

def phase_write(storage, events, db_path, per_put, max_seconds):
    ro = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    n = len(events)
    failed = 0
    c0, t0 = cpu_s(), time.monotonic()
    deadline = t0 + max_seconds
    put_n = 0
    for ev in events:
        # as TBGatewayService.__send_data_pack_to_storage: retry 4 times, 0.1 s apart
        ok = storage.put(ev)
        tries = 0
        while not ok and tries < 4:
            time.sleep(0.1)
            ok = storage.put(ev)
            tries += 1
        if not ok:
            failed += 1
        put_n += 1
        if (put_n & 1023) == 0 and time.monotonic() > deadline:
            break
    t_put = time.monotonic()
    target = put_n - failed
    capped = put_n < n
    done = committed_rows(ro)
    while done < target:
        now = time.monotonic()
        if now > deadline:
            capped = True
            break
        time.sleep(0.005)
        done = committed_rows(ro)
    t1 = time.monotonic()
    c1 = cpu_s()
    ro.close()
    return {
        "events_put": put_n, "put_failed": failed, "events_committed": done,
        "readings_committed": done * per_put, "capped": capped,
        "put_seconds": t_put - t0, "put_readings_per_s": put_n * per_put / max(t_put - t0, 1e-9),
        "seconds": t1 - t0, "readings_per_s": done * per_put / (t1 - t0),
        "cpu_percent": (c1 - c0) / (t1 - t0) * 100,
    }


def phase_latency(path, log, samples, event):
    if samples <= 0:
        return None
    fresh_dir(path)
    st = new_storage(path, log, {})
    ro = sqlite3.connect(f"file:{path / 'data.db'}?mode=ro", uri=True)
    rng = random.Random(7)
    lat = []
    time.sleep(0.5)
    for i in range(samples):
        time.sleep(rng.uniform(0.05, 0.35))   # a poll cycle arriving at a random moment
        before = committed_rows(ro)
        st.put(event)
        t = time.monotonic()
        while committed_rows(ro) == before:
            if time.monotonic() - t > 10:
                sys.exit("latency probe: put() not committed within 10 s")
            time.sleep(0.001)
        lat.append((time.monotonic() - t) * 1000)
    ro.close()
    st.stop()
    time.sleep(0.3)
    shutil.rmtree(path, ignore_errors=True)
    lat.sort()
    return {"samples": samples, "min_ms": lat[0], "median_ms": statistics.median(lat),
            "p90_ms": lat[int(0.9 * (len(lat) - 1))], "max_ms": lat[-1]}


def connect_client(host, port, broker_host, broker_port, timeout=30):
    from tb_gateway_mqtt import TBGatewayMqttClient
    ready = HERE / "run" / f"storage_bench_responder.{os.getpid()}.ready"
    ready.parent.mkdir(exist_ok=True)
    ready.unlink(missing_ok=True)
    responder = subprocess.Popen([sys.executable, str(HERE / "session_limits_responder.py"),
                                  "--host", broker_host, "--port", str(broker_port),
                                  "--ready-file", str(ready), "--timeout", str(timeout)],
                                 stdout=subprocess.DEVNULL)
    for _ in range(100):
        if ready.exists():
            break
        time.sleep(0.05)
    else:
        responder.kill()
        sys.exit("session_limits_responder did not subscribe (broker down?)")
    ready.unlink(missing_ok=True)
    no_limit = "0:0,"   # as gen_config.py: no client-side rate limits
    client = TBGatewayMqttClient(host, port, username="riser-storage-bench", quality_of_service=1,
                                 messages_rate_limit=no_limit, telemetry_rate_limit=no_limit,
                                 telemetry_dp_rate_limit=no_limit, device_messages_rate_limit=no_limit,
                                 device_telemetry_rate_limit=no_limit, device_telemetry_dp_rate_limit=no_limit)
    client.connect(keepalive=120, min_reconnect_delay=5)   # TBClient.__send_connect's arguments
    t = time.monotonic()
    while not (client.is_connected() and client.rate_limits_received):
        if time.monotonic() - t > timeout:
            responder.kill()
            sys.exit("MQTT client not ready (no getSessionLimits answer?)")
        time.sleep(0.05)
    responder.wait(10)
    time.sleep(0.5)   # let the subscriptions made on connect settle before counting bytes
    return client


def phase_drain(storage, client, relay, per_put, max_seconds):
    from simplejson import loads
    from tb_device_mqtt import TBPublishInfo

    published = []   # (topic_len, payload_len) per PUBLISH packet
    paho = client._client
    real_publish = paho.publish

    def counting_publish(topic, payload=None, qos=0, retain=False, properties=None):
        size = len(payload) if isinstance(payload, (bytes, bytearray)) else len(str(payload).encode())
        published.append((len(topic.encode()), size))
        return real_publish(topic, payload, qos, retain, properties)

    paho.publish = counting_publish
    limits = {"max_payload_size": client.max_payload_size,
              "max_inflight_messages": paho._max_inflight_messages,
              "max_queued_messages": paho._max_queued_messages}

    seen = set()
    packs = events_n = readings = dups = unacked_at_done = failed_packs = 0
    infos_all = []
    wire0 = relay.counts() if relay else None
    rcpu0 = relay.cpu_s() if relay else None
    c0, t0 = cpu_s(), time.monotonic()
    while True:
        if time.monotonic() - t0 > max_seconds:
            print(f"drain: stopped after {max_seconds} s, storage not empty", file=sys.stderr)
            break
        events = storage.get_event_pack()
        if not events:
            if storage.len() == 0:
                break
            time.sleep(0.05)      # minPackSendDelayMS default
            continue
        packs += 1
        pack = {}
        for ev in events:
            cur = loads(ev)
            dev = cur["deviceName"]
            d = pack.setdefault(dev, {"telemetry": [], "attributes": {}})
            tel = cur.get("telemetry")
            items = tel if isinstance(tel, list) else [tel] if tel else []
            for item in items:
                d["telemetry"].append(item)
                readings += len(item.get("values", ()))
                k = (dev, item.get("ts"))
                if k in seen:
                    dups += 1
                seen.add(k)
            events_n += 1
        infos = [client.gw_send_telemetry(dev, d["telemetry"], quality_of_service=1)
                 for dev, d in pack.items() if d["telemetry"]]
        # TBGatewayService.__handle_published_events: event.get() == TB_ERR_SUCCESS for all
        ok = all(info.get() == TBPublishInfo.TB_ERR_SUCCESS for info in infos)
        for info in infos:
            mis = info.message_info if isinstance(info.message_info, list) else [info.message_info]
            infos_all.extend(mis)
            unacked_at_done += sum(1 for mi in mis if not mi.is_published())
        if ok:
            storage.event_pack_processing_done()
        else:
            failed_packs += 1
    t_empty = time.monotonic()
    # every PUBLISH acknowledged? (the gateway's get() gives up after 1 s per message)
    while any(not mi.is_published() for mi in infos_all) and time.monotonic() - t_empty < 10:
        time.sleep(0.01)
    t1 = time.monotonic()
    c1 = cpu_s()
    wire1 = relay.counts() if relay else None
    rcpu1 = relay.cpu_s() if relay else None
    paho.publish = real_publish
    unacked_end = sum(1 for mi in infos_all if not mi.is_published())

    # MQTT 5 PUBLISH QoS 1 without properties: fixed header byte + remaining
    # length varint + topic length (2) + topic + packet id (2) + property length (1) + payload
    def varint_len(n):
        return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4

    publish_bytes = 0
    for tl, pl in published:
        rem = 2 + tl + 2 + 1 + pl
        publish_bytes += 1 + varint_len(rem) + rem
    payload = sum(pl for _, pl in published)
    res = {
        "packs": packs, "events": events_n, "unique_events": len(seen), "duplicate_events": dups,
        "readings": readings, "publishes": len(published),
        "payload_bytes": payload, "payload_max": max((pl for _, pl in published), default=0),
        "topic_bytes": sum(tl for tl, _ in published),
        "mqtt_publish_bytes_computed": publish_bytes,
        "unacked_at_pack_done": unacked_at_done, "unacked_at_end": unacked_end, "failed_packs": failed_packs,
        "client_limits": limits,
        "seconds": t1 - t0, "seconds_to_empty": t_empty - t0,
        "readings_per_s": readings / (t1 - t0), "cpu_percent": (c1 - c0) / (t1 - t0) * 100,
    }
    if relay:
        res["wire_c2s_bytes"] = wire1[0] - wire0[0]
        res["wire_s2c_bytes"] = wire1[1] - wire0[1]
        res["relay_cpu_percent"] = (rcpu1 - rcpu0) / (t1 - t0) * 100
    return res


# --------------------------------------------------------------------------

def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--relay-child":
        relay_child(sys.argv[2], int(sys.argv[3]))
        return 0

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=1_000_000, help="readings to write (default 1000000)")
    ap.add_argument("--per-put", type=int, default=100, help="readings per put() = per poll cycle (default 100)")
    ap.add_argument("--devices", type=int, default=1, help="device names the events rotate over (default 1)")
    ap.add_argument("--host", default="127.0.0.1", help="MQTT broker (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    ap.add_argument("--data-dir", type=Path, default=HERE / "run" / "storage_bench",
                    help="where the SQLite files go (default bench/thingsboard/run/storage_bench)")
    ap.add_argument("--max-seconds", type=float, default=180, help="cap on the write phase (default 180)")
    ap.add_argument("--max-drain-seconds", type=float, default=900, help="cap on the drain (default 900)")
    ap.add_argument("--latency-samples", type=int, default=30, help="put->commit latency samples (0 = skip)")
    ap.add_argument("--read-records", type=int, default=None,
                    help="max_read_records_count (events per get_event_pack); default: TB's default (1000)")
    ap.add_argument("--no-relay", action="store_true", help="connect straight to the broker (no byte count)")
    ap.add_argument("--no-drain", action="store_true", help="write phase only")
    ap.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    a = ap.parse_args()

    from importlib.metadata import version
    log = make_logger()
    tbv = version("thingsboard-gateway")

    load_start = os.getloadavg()[0]
    n_events = max(1, a.readings // a.per_put)
    store_dir = a.data_dir / "tb_storage"
    fresh_dir(store_dir)
    extra = {} if a.read_records is None else {"max_read_records_count": a.read_records}

    t = time.monotonic()
    events = build_events(n_events, a.per_put, a.devices, int(time.time() * 1000) - n_events * 1000)
    build_s = time.monotonic() - t
    event_bytes = sum(len(e) for e in events) / n_events

    from thingsboard_gateway.storage.sqlite.storage_settings import StorageSettings
    s = StorageSettings(extra)
    settings = {"writing_batch_size": s.batch_size, "max_read_records_count": s.max_read_records_count,
                "size_limit_mb": s.size_limit, "max_db_amount": s.max_db_amount,
                "messages_ttl_in_days": s.messages_ttl_in_days}

    storage = new_storage(store_dir, log, extra)
    db_path = store_dir / "data.db"
    prag = pragmas(db_path)
    w = phase_write(storage, events, db_path, a.per_put, a.max_seconds)
    del events
    disk_after_write = db_files_size(store_dir)

    lat = phase_latency(a.data_dir / "tb_latency", log, a.latency_samples,
                        build_events(1, a.per_put, 1, int(time.time() * 1000))[0])

    d = None
    if not a.no_drain:
        relay = None if a.no_relay else Relay(a.host, a.port)
        try:
            host, port = ("127.0.0.1", relay.port) if relay else (a.host, a.port)
            client = connect_client(host, port, a.host, a.port)
            d = phase_drain(storage, client, relay, a.per_put, a.max_drain_seconds)
            client.stop()
            client.disconnect()
        finally:
            if relay:
                relay.close()
    disk_end = db_files_size(store_dir)
    storage.stop()
    peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # ---------------- report ----------------
    r = {"thingsboard_gateway": tbv, "sqlite": sqlite3.sqlite_version, "python": sys.version.split()[0],
         "readings_requested": a.readings, "per_put": a.per_put, "devices": a.devices,
         "event_json_bytes_mean": event_bytes, "build_seconds": build_s,
         "settings": settings, "pragmas": prag, "write": w, "disk_bytes_after_write": disk_after_write,
         "loadavg_1min_start_end": [load_start, os.getloadavg()[0]],
         "latency": lat, "drain": d, "disk_bytes_after_drain": disk_end, "peak_rss_kb": peak_rss_kb}
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n")

    def f(x, nd=0):
        return f"{x:,.{nd}f}"
    out = []
    out.append(f"ThingsBoard IoT Gateway {tbv} SQLiteEventStorage, SQLite {sqlite3.sqlite_version}, "
               f"Python {r['python']}, {os.cpu_count()} CPUs, "
               f"load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    out.append(f"settings: {settings}")
    out.append(f"pragmas:  {prag}")
    out.append(f"load: {f(w['events_put'])} puts x {a.per_put} readings, {a.devices} device(s), "
               f"{f(event_bytes)} B per stored event (JSON)")
    out.append("")
    out.append(f"{'figure':<44} {'value':>16}")
    out.append(f"{'-' * 44} {'-' * 16}")
    rows = [
        ("write: readings committed", f(w["readings_committed"]) + (" (capped)" if w["capped"] else "")),
        ("write: committed readings/s", f(w["readings_per_s"])),
        ("write: put() readings/s (in-memory queue)", f(w["put_readings_per_s"])),
        ("write: wall s / CPU % of one core", f"{w['seconds']:.2f} / {w['cpu_percent']:.0f}"),
        ("disk after write, bytes/reading", f(disk_after_write / max(w["readings_committed"], 1), 1)),
    ]
    if lat:
        rows.append(("put() -> committed latency ms, median", f(lat["median_ms"], 1)))
        rows.append(("  min / p90 / max ms", f"{lat['min_ms']:.0f}/{lat['p90_ms']:.0f}/{lat['max_ms']:.0f}"))
    if d:
        rows += [
            ("drain: readings published (PUBACKed)", f(d["readings"])),
            ("drain: readings/s", f(d["readings_per_s"])),
            ("drain: wall s / CPU % of one core", f"{d['seconds']:.2f} / {d['cpu_percent']:.0f}"),
            ("drain: packs / PUBLISH messages", f"{d['packs']} / {d['publishes']}"),
            ("drain: readings per PUBLISH / max payload B", f"{d['readings'] / max(d['publishes'], 1):.0f} / {d['payload_max']}"),
            ("drain: client max payload / max inflight", f"{d['client_limits']['max_payload_size']} / {d['client_limits']['max_inflight_messages']}"),
            ("drain: duplicate events / unacked at end", f"{d['duplicate_events']} / {d['unacked_at_end']}"),
            ("wire: payload bytes/reading", f(d["payload_bytes"] / max(d["readings"], 1), 2)),
            ("wire: MQTT PUBLISH bytes/reading (computed)", f(d["mqtt_publish_bytes_computed"] / max(d["readings"], 1), 2)),
        ]
        if "wire_c2s_bytes" in d:
            rows += [
                ("wire: socket bytes/reading, client->broker", f(d["wire_c2s_bytes"] / max(d["readings"], 1), 2)),
                ("wire: socket bytes/reading, broker->client", f(d["wire_s2c_bytes"] / max(d["readings"], 1), 3)),
            ]
    rows.append(("peak RSS of this process, kB", f(peak_rss_kb)))
    for k, v in rows:
        out.append(f"{k:<44} {v:>16}")
    print("\n".join(out))
    stored = w["events_put"] - w["put_failed"]
    bad = d and (d["unique_events"] != stored or d["unacked_at_end"])
    if bad:
        print(f"WARNING: published {d['unique_events']} distinct events of {stored} stored; "
              f"{d['unacked_at_end']} PUBLISH without PUBACK", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
