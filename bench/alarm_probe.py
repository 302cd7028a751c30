#!/usr/bin/env python3
"""alarm_probe — the client of bench/alarm_latency.sh (standard library only).

  setup  creates -r RULES threshold rules: one per water-level sensor (each
         sensor its own limit, scope.entities = [it], as a city configures
         them; the sensors are created too) plus one never-firing rule per
         (type, attribute) the background load (bench/loadgen.c) sends, so
         every background reading is evaluated against rules as well.
  probe  listens on GET /api/v1/stream?kind=alarm and, -n times, sends one
         reading that crosses a sensor's limit (then one that clears it) and
         times the alarm event's arrival on the stream against the moment the
         ingest request was acknowledged (and against when it was sent).

Output: one line of key=value pairs on stdout (latencies in ms)."""
import argparse
import http.client
import json
import socket
import sys
import threading
import time

LOAD_TYPES = ["AirQualityObserved", "ParkingSpot", "WaterLevelSensor", "ManholeCover", "Streetlight",
              "SmokeDetector", "NoiseLevelObserved", "TrafficFlowObserved"]
LOAD_ATTRS = ["pm25", "pm10", "no2"]


class Api:
    def __init__(self, port, key):
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Authorization": "Bearer " + self.key, "Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit(f"alarm_probe: {method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else None


def sensor(i):
    return f"urn:ngsi-ld:WaterLevelSensor:probe-{i:05d}"


def setup(a):
    api = Api(a.port, a.key)
    background = [(t, attr) for t in LOAD_TYPES for attr in LOAD_ATTRS]
    n_sensors = max(1, a.rules - len(background))
    for first in range(0, n_sensors, 5000):
        items = [{"id": sensor(i), "type": "WaterLevelSensor", "location": [113.23, 35.24], "department": "SWJ"}
                 for i in range(first, min(n_sensors, first + 5000))]
        api.call("POST", "/api/v1/entities", {"entities": items})
    t0 = time.time()
    for i in range(n_sensors):
        api.call("POST", "/api/v1/rules", {
            "name": f"水位超限 {i}", "kind": "threshold", "scope": {"type": "WaterLevelSensor", "entities": [sensor(i)]},
            "attr": "level_m", "op": ">", "value": 3.0 + (i % 50) / 100, "clear": 2.5, "severity": "major",
            "category": "0801", "dedup_s": 0})
    for t, attr in background:
        api.call("POST", "/api/v1/rules", {
            "name": f"{t} {attr} 超限", "kind": "threshold", "scope": {"type": t}, "attr": attr, "op": ">",
            "value": 1e9, "severity": "minor", "category": "0901"})
    print(f"rules={n_sensors + len(background)} sensors={n_sensors} seconds={time.time() - t0:.1f}")


class Listener(threading.Thread):
    """Reads the SSE stream; records (arrival time, type, entity) of each alarm event."""

    def __init__(self, port, key):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall((f"GET /api/v1/stream?kind=alarm HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Bearer {key}\r\n\r\n").encode())
        self.cond = threading.Condition()
        self.seen = {}  # (type, entity) -> arrival time of the newest
        self.ready = threading.Event()

    def run(self):
        raw, text = b"", b""
        head_done = False
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return
            now = time.monotonic()
            raw += chunk
            if not head_done:
                if b"\r\n\r\n" not in raw:
                    continue
                raw = raw.split(b"\r\n\r\n", 1)[1]
                head_done = True
                self.ready.set()
            while True:  # chunked transfer coding
                i = raw.find(b"\r\n")
                if i < 0:
                    break
                size = int(raw[:i], 16)
                if len(raw) < i + 2 + size + 2:
                    break
                text += raw[i + 2:i + 2 + size]
                raw = raw[i + 4 + size:]
            while b"\n\n" in text:
                frame, text = text.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        ev = json.loads(line[6:])
                        if "data" in ev:
                            with self.cond:
                                self.seen[(ev["type"], ev["data"]["entity"])] = now
                                self.cond.notify_all()

    def wait(self, key, after, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (key in self.seen and self.seen[key] >= after):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen[key]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def probe(a):
    api = Api(a.port, a.key)
    listen = Listener(a.port, a.key)
    listen.start()
    listen.ready.wait(10)
    ack_ms, send_ms, lost = [], [], 0
    ts = int(time.time() * 1000)
    for k in range(a.probes):
        eid = sensor(k % a.sensors)
        for level, typ in ((5.0, "alarm.raised"), (1.0, "alarm.cleared")):
            ts += 1
            body = {"readings": [{"entity": eid, "ts": ts, "values": {"level_m": level}}]}
            t_send = time.monotonic()
            out = api.call("POST", "/api/v1/ingest", body)
            t_ack = time.monotonic()
            if out.get("accepted") != 1:
                sys.exit(f"alarm_probe: reading refused: {out}")
            t_event = listen.wait((typ, eid), t_send)
            if t_event is None:
                lost += 1
                continue
            ack_ms.append((t_event - t_ack) * 1000)
            send_ms.append((t_event - t_send) * 1000)
        time.sleep(a.gap)
    if not ack_ms:
        sys.exit("alarm_probe: no alarm event arrived")
    print(f"events={len(ack_ms)} lost={lost} ack_p50_ms={pct(ack_ms, 50):.2f} ack_p99_ms={pct(ack_ms, 99):.2f} "
          f"ack_max_ms={max(ack_ms):.2f} send_p50_ms={pct(send_ms, 50):.2f} send_p99_ms={pct(send_ms, 99):.2f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["setup", "probe"])
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("-k", "--key", required=True)
    p.add_argument("-r", "--rules", type=int, default=10000)
    p.add_argument("-n", "--probes", type=int, default=200)
    p.add_argument("-s", "--sensors", type=int, default=1000, help="probe sensors cycled through")
    p.add_argument("-g", "--gap", type=float, default=0.02, help="seconds between probes")
    a = p.parse_args()
    setup(a) if a.mode == "setup" else probe(a)


if __name__ == "__main__":
    main()
