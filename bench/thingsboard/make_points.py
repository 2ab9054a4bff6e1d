#!/usr/bin/env python3
"""Write points.json: the 1 000 Modbus points of the gateway benchmark.

20 simulated buildings (riser-sim serve --count 20 --modbus-base-port 16020),
building i on 127.0.0.1:(16020+i), units 1-5 behind each port = 100 devices.
Per building, 50 points:

  unit 1 level transmitter    holding 0-6                     7
  unit 1 level transmitter    input   0-6 (same table, FC 04) 7
  unit 2 pressure transmitter holding 0-6                     7
  unit 3 pump cabinet         holding 0 bits 0-4, regs 1-2    7
  unit 4 fire panel           holding 0 bits 0-5              6
  unit 5 4-20 mA module       holding 0-7 and input 0-7      16
                                                             --
                                                             50  x 20 = 1000

Every entry is a distinct (port, unit, table, register, bit) read. A "bit"
point is one bit of a holding register (status word); bit is null for a
whole register.

Usage: make_points.py [--count 20] [--base-port 16020] [-o points.json]
"""

import argparse
import json

TRANSMITTER = ["addr", "baud", "unit", "decimals", "value", "range_zero", "range_full"]
PUMP_BITS = ["fire_pump_running", "fire_pump_fault", "fire_pump_auto",
             "jockey_running", "jockey_fault"]
PANEL_BITS = ["fire_alarm", "fault", "supervisory", "disabled", "mains_fault", "backup_fault"]


def building_points(port):
    pts = []

    def add(unit, table, register, bit, name):
        pts.append({"port": port, "unit": unit, "table": table,
                    "register": register, "bit": bit, "name": name})

    for table, prefix in (("holding", "level"), ("input", "level_in")):
        for reg, what in enumerate(TRANSMITTER):
            add(1, table, reg, None, f"{prefix}_{what}")
    for reg, what in enumerate(TRANSMITTER):
        add(2, "holding", reg, None, f"pressure_{what}")
    for bit, what in enumerate(PUMP_BITS):
        add(3, "holding", 0, bit, what)
    add(3, "holding", 1, None, "jockey_starts")
    add(3, "holding", 2, None, "jockey_present")
    for bit, what in enumerate(PANEL_BITS):
        add(4, "holding", 0, bit, what)
    for table, prefix in (("holding", "ai"), ("input", "ai_in")):
        for ch in range(8):
            add(5, table, ch, None, f"{prefix}{ch}_ua")
    return pts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--base-port", type=int, default=16020)
    ap.add_argument("-o", "--output", default="points.json")
    a = ap.parse_args()
    points = [p for i in range(a.count) for p in building_points(a.base_port + i)]
    with open(a.output, "w") as f:
        f.write("[\n")
        f.write(",\n".join("  " + json.dumps(p) for p in points))
        f.write("\n]\n")
    devices = {(p["port"], p["unit"]) for p in points}
    print(f"{a.output}: {len(points)} points on {len(devices)} devices")


if __name__ == "__main__":
    main()
