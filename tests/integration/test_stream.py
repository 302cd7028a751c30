"""The live event stream (GET /api/v1/stream, Server-Sent Events) and webhooks,
over real HTTP. Events come from a real producer: a threshold rule and
readings through the ingest door raise and clear alarms."""
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import threading
import time
import unittest

from harness import REPO, ServerTestCase, import_jiaozuo, Server

JIEFANG = (113.230816, 35.240282)    # inside 解放区 410802
SHANYANG = (113.2655, 35.184)        # inside 山阳区 410811


class SSE:
    """A Server-Sent Events client over a plain socket (HTTP/1.1, chunked)."""

    def __init__(self, server, key, query="", headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        h = {"Host": "127.0.0.1", "Accept": "text/event-stream", **(headers or {})}
        if key:
            h["Authorization"] = "Bearer " + key
        req = f"GET /api/v1/stream{query} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed before headers: %r" % self.raw)
            self.raw += chunk
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.text = ""
        self.eof = False
        if self.status == 200:
            self._decode()  # the first frames may have come with the headers
        else:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n:
                self.raw += self.sock.recv(65536)
            self.body = json.loads(self.raw[:n])
            self.close()

    def _decode(self):
        if not self.chunked:
            self.text += self.raw.decode()
            self.raw = b""
            return
        while True:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if size == 0:
                self.eof = True
                return
            if len(self.raw) < i + 2 + size + 2:
                return
            self.text += self.raw[i + 2:i + 2 + size].decode()
            self.raw = self.raw[i + 2 + size + 2:]

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        self._decode()
        return True

    def next_block(self, timeout=10):
        """The next frame or comment block as a dict, or None on timeout or EOF."""
        deadline = time.time() + timeout
        while "\n\n" not in self.text:
            if self.eof or time.time() >= deadline:
                return None
            self._fill(deadline)
        block, self.text = self.text.split("\n\n", 1)
        out = {"comments": [], "data": None}
        for line in block.split("\n"):
            if line.startswith(":"):
                out["comments"].append(line[1:].strip())
            elif ":" in line:
                k, v = line.split(":", 1)
                out[k] = v[1:] if v.startswith(" ") else v
        if out["data"] is not None:
            out["json"] = json.loads(out["data"])
        return out

    def next_event(self, timeout=10):
        """The next frame with an event (skipping retry hints and comments)."""
        deadline = time.time() + timeout
        while True:
            b = self.next_block(max(0, deadline - time.time()))
            if b is None or "event" in b:
                return b

    def events(self, n, timeout=10):
        out = []
        deadline = time.time() + timeout
        while len(out) < n:
            e = self.next_event(max(0, deadline - time.time()))
            if e is None:
                raise AssertionError(f"got {len(out)} of {n} events: {out}")
            out.append(e)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class StreamCase(ServerTestCase):
    flags = ()

    def setUp(self):
        s = import_jiaozuo(Server(*self.flags))
        self.s = s.start()
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        self.key = s.key("admin")
        self.rule(">", 3.2)
        self.ts = int(time.time() * 1000) - 60_000

    def ok(self, r, status=200):
        self.assertEqual(r.status, status, r)
        return r.json()

    def post(self, path, body, key=None):
        return self.s.request("POST", path, body, key=key or self.key)

    def get(self, path, key=None):
        return self.s.request("GET", path, key=key or self.key)

    def rule(self, op, value):
        return self.ok(self.post("/api/v1/rules", {
            "name": "水位超限", "kind": "threshold", "scope": {"type": "WaterLevelSensor"}, "attr": "level_m",
            "op": op, "value": value, "severity": "major", "category": "0801", "dedup_s": 0}), 201)

    def entity(self, eid, loc=JIEFANG, department="SWJ"):
        return self.ok(self.post("/api/v1/entities", {"id": eid, "type": "WaterLevelSensor", "location": list(loc),
                                                      "department": department}), 201)

    def levels(self, *pairs):
        """Ingests (entity, level) readings in one batch, each a millisecond later."""
        readings = []
        for eid, level in pairs:
            self.ts += 1
            readings.append({"entity": eid, "ts": self.ts, "values": {"level_m": level}})
        out = self.ok(self.post("/api/v1/ingest", {"readings": readings}))
        self.assertEqual(out["accepted"], len(readings), out)

    def stream(self, query="", key=None, **kw):
        c = SSE(self.s, key or self.key, query, **kw)
        self.addCleanup(c.close)
        return c

    def hook(self, url, **kw):
        return self.ok(self.post("/api/v1/webhooks", {"url": url, **kw}), 201)

    def metric(self, name):
        text = self.get("/metrics").body
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")


class TestStream(StreamCase):
    def test_alarm_events_arrive_as_sse_frames(self):
        self.entity("urn:wl:1")
        c = self.stream()
        self.assertEqual(c.status, 200)
        self.assertTrue(c.headers["content-type"].startswith("text/event-stream"), c.headers)
        self.assertEqual(c.headers.get("cache-control"), "no-store")
        first = c.next_block()
        self.assertEqual(first.get("retry"), "3000", first)
        self.levels(("urn:wl:1", 3.5))
        e = c.next_event()
        self.assertEqual(e["event"], "alarm.raised", e)
        j = e["json"]
        self.assertEqual(j["id"], int(e["id"]))
        self.assertEqual((j["kind"], j["type"], j["district"], j["department"]), ("alarm", "alarm.raised", "410802", "SWJ"))
        self.assertEqual(j["data"]["entity"], "urn:wl:1")
        self.assertEqual(j["data"]["state"], "open")
        self.assertAlmostEqual(j["data"]["value"], 3.5)
        self.assertTrue(j["time"].endswith("Z"))
        self.levels(("urn:wl:1", 1.0))
        e2 = c.next_event()
        self.assertEqual(e2["event"], "alarm.cleared")
        self.assertEqual(int(e2["id"]), int(e["id"]) + 1)
        self.assertGreaterEqual(self.metric("citybrain_stream_clients"), 1)
        self.assertGreaterEqual(self.metric("citybrain_stream_events_sent_total"), 2)
        self.assertGreaterEqual(self.metric('citybrain_events_published_total{kind="alarm"}'), 2)

    def test_kind_and_district_filters(self):
        self.entity("urn:wl:j", JIEFANG)
        self.entity("urn:wl:s", SHANYANG)
        shanyang = self.stream("?district=410811")
        jiefang_alarms = self.stream("?kind=alarm,supervision&district=410802")
        cases = self.stream("?kind=case")
        self.levels(("urn:wl:j", 4.0), ("urn:wl:s", 4.0))
        e = shanyang.next_event()
        self.assertEqual((e["json"]["data"]["entity"], e["json"]["district"]), ("urn:wl:s", "410811"))
        e = jiefang_alarms.next_event()
        self.assertEqual(e["json"]["data"]["entity"], "urn:wl:j")
        self.assertIsNone(shanyang.next_event(timeout=1.0))
        self.assertIsNone(jiefang_alarms.next_event(timeout=0.2))
        self.assertIsNone(cases.next_event(timeout=0.2))

    def test_bad_filters_are_400(self):
        c = self.stream("?kind=alarm,parade")
        self.assertEqual(c.status, 400)
        self.assertEqual(c.body["error"]["field"], "kind")
        self.assertIn("parade", c.body["error"]["message"])
        c = self.stream(headers={"Last-Event-ID": "abc"})
        self.assertEqual(c.status, 400)
        self.assertEqual(c.body["error"]["field"], "Last-Event-ID")
        self.assertEqual(self.stream(key="cb_nope_nope").status, 401)

    def test_reconnect_with_last_event_id_gets_exactly_the_missed(self):
        self.entity("urn:wl:1")
        c = self.stream()
        self.levels(("urn:wl:1", 3.5))
        first = c.next_event()
        c.close()
        self.levels(("urn:wl:1", 1.0))
        self.levels(("urn:wl:1", 3.6))
        # wait until both are published (the rules thread publishes after the ack)
        deadline = time.time() + 10
        while self.metric('citybrain_events_published_total{kind="alarm"}') < 3 and time.time() < deadline:
            time.sleep(0.05)
        for how in ({"headers": {"Last-Event-ID": first["id"]}}, {"query": "?last_event_id=" + first["id"]}):
            c2 = self.stream(**how)
            got = c2.events(2)
            self.assertEqual([g["event"] for g in got], ["alarm.cleared", "alarm.raised"], how)
            self.assertEqual([int(g["id"]) for g in got], [int(first["id"]) + 1, int(first["id"]) + 2])
            self.assertIsNone(c2.next_event(timeout=0.5), how)  # nothing more, no repeat
        # the header wins over the query
        c3 = self.stream("?last_event_id=" + str(int(first["id"]) + 1), headers={"Last-Event-ID": first["id"]})
        self.assertEqual(int(c3.next_event()["id"]), int(first["id"]) + 1)

    def test_dept_key_sees_only_its_department(self):
        self.entity("urn:wl:swj", JIEFANG, "SWJ")
        self.entity("urn:wl:cgj", JIEFANG, "CGJ")
        dept = self.s.key("dept", "--department", "SWJ", "--name", "水务局")
        self.assertEqual(self.stream("?department=CGJ", key=dept).status, 403)
        c = self.stream(key=dept)
        self.assertEqual(c.status, 200)
        self.levels(("urn:wl:cgj", 5.0), ("urn:wl:swj", 5.0))
        e = c.next_event()
        self.assertEqual((e["json"]["department"], e["json"]["data"]["entity"]), ("SWJ", "urn:wl:swj"))
        self.assertIsNone(c.next_event(timeout=1.0))
        viewer = self.s.key("viewer")
        v = self.stream(key=viewer, headers={"Last-Event-ID": str(int(e["id"]) - 5)})
        self.assertEqual(len(v.events(2)), 2)  # a viewer sees both departments


class TestStreamSmallBuffer(StreamCase):
    flags = ("--events-buffer", "16")

    def test_gap_when_the_ring_no_longer_holds_the_next_event(self):
        ids = [f"urn:wl:{i}" for i in range(30)]
        for eid in ids:
            self.entity(eid)
        c = self.stream()
        self.levels((ids[0], 3.5))
        first = c.next_event()
        c.close()
        self.levels(*[(eid, 3.5) for eid in ids[1:]])  # 29 more events; the ring keeps 16
        deadline = time.time() + 10
        while self.metric("citybrain_events_last_id") < int(first["id"]) + 29 and time.time() < deadline:
            time.sleep(0.05)
        c2 = self.stream(headers={"Last-Event-ID": first["id"]})
        gap = c2.next_event()
        self.assertEqual(gap["event"], "gap", gap)
        self.assertNotIn("id", gap)  # a gap does not move the client's position
        f = int(first["id"])
        self.assertEqual(gap["json"], {"from": f + 1, "to": f + 29 - 15})
        got = c2.events(16)
        self.assertEqual([int(g["id"]) for g in got], list(range(f + 14, f + 30)))
        self.assertEqual(self.metric("citybrain_events_buffered"), 16)

    def test_ids_after_a_restart_are_a_gap_not_other_events(self):
        self.entity("urn:wl:1")
        c = self.stream()
        self.levels(("urn:wl:1", 3.5))
        before = int(c.next_event()["id"])
        c.close()
        self.assertEqual(self.s.stop(), 0)
        self.s.start()
        c = self.stream(headers={"Last-Event-ID": str(before - 1)})
        self.levels(("urn:wl:1", 1.0))
        gap = c.next_event()
        self.assertEqual(gap["event"], "gap")
        self.assertEqual(gap["json"]["from"], before)
        e = c.next_event()
        self.assertEqual(e["event"], "alarm.cleared")
        self.assertGreater(int(e["id"]), before)


class TestStreamLimits(StreamCase):
    flags = ("--max-streams", "2", "--stream-keepalive", "1")

    def test_503_beyond_max_streams_and_the_slot_comes_back(self):
        a = self.stream()
        b = self.stream()
        self.assertEqual((a.status, b.status), (200, 200))
        c = self.stream()
        self.assertEqual(c.status, 503)
        self.assertEqual(c.body["error"]["code"], "unavailable")
        self.assertEqual(c.headers.get("retry-after"), "5")
        a.close()  # noticed at the next keepalive (1 s here)
        deadline = time.time() + 10
        while time.time() < deadline:
            d = self.stream()
            if d.status == 200:
                break
            time.sleep(0.3)
        self.assertEqual(d.status, 200)

    def assertKeepalives(self, c, count, within):
        """Stream c shows count keepalive comments, all within `within` seconds."""
        t0 = time.time()
        seen = 0
        while seen < count and time.time() - t0 < within + 2:
            b = c.next_block(timeout=3)
            self.assertIsNotNone(b)
            seen += "keepalive" in b["comments"]
        self.assertEqual(seen, count)
        self.assertLess(time.time() - t0, within)

    def test_keepalive_comments_on_an_idle_stream(self):
        self.assertKeepalives(self.stream(), 2, within=4)

    def test_keepalives_go_on_while_a_webhook_attempt_hangs(self):
        hung = socket.socket()  # accepts into the backlog, never answers (webhook_timeout: 10 s)
        hung.bind(("127.0.0.1", 0))
        hung.listen(10)
        self.addCleanup(hung.close)
        self.hook(f"http://127.0.0.1:{hung.getsockname()[1]}/hook")
        self.entity("urn:wl:1")
        c = self.stream()
        self.levels(("urn:wl:1", 3.5))
        self.assertEqual(c.next_event()["event"], "alarm.raised")
        self.assertKeepalives(c, 3, within=6)

    def test_open_streams_do_not_hold_up_shutdown(self):
        a = self.stream()
        b = self.stream()
        a.next_block()
        t0 = time.time()
        self.assertEqual(self.s.stop(), 0)
        self.assertLess(time.time() - t0, 5)
        for c in (a, b):
            while c.next_block(timeout=2) is not None:
                pass
            self.assertTrue(c.eof)
        self.assertIn("event=stopped", self.s.log_text())


class TestCaseEvents(StreamCase):
    flags = ("--city-dir", os.path.join(REPO, "city"))

    def test_case_transitions_arrive_filtered_by_kind_and_department(self):
        alarms = self.stream("?kind=alarm")
        cases = self.stream("?kind=case")
        r = self.post("/api/v1/cases", {"channel": "hotline", "category": "09002", "description": "占道经营",
                                         "lon": JIEFANG[0], "lat": JIEFANG[1],
                                         "reporter": {"name": "张三丰", "phone": "13812345678"}})
        self.assertEqual(r.status, 201, r)
        case = r.json()
        e = cases.next_event()
        self.assertEqual(e["event"], "case.created", e)
        self.assertEqual(e["json"]["kind"], "case")
        self.assertEqual(e["json"]["data"]["id"], case["id"])
        self.assertEqual(e["json"]["district"], "410802")
        self.assertIsNone(alarms.next_event(timeout=0.5))
        # 12345 intake routes at once: its department's key sees the next
        # transition, another department's does not
        self.assertTrue(case.get("department"), case)
        own = self.stream("?kind=case", key=self.s.key("dept", "--department", case["department"]))
        other = self.stream("?kind=case", key=self.s.key("dept", "--department", "NOPE"))
        self.assertEqual(self.post(f"/api/v1/cases/{case['id']}/start", {}).status, 200)
        ev = own.next_event(timeout=5)
        self.assertIsNotNone(ev)
        self.assertEqual(ev["json"]["department"], case["department"])
        self.assertEqual(ev["json"]["data"]["id"], case["id"])
        self.assertIsNone(other.next_event(timeout=0.5))


# --- webhooks ---

class Receiver:
    """An HTTP receiver that answers 500 to the first `fail` requests."""

    def __init__(self, fail=0):
        self.fail = fail
        self.got = []  # (monotonic time, status answered, headers, body)
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = 500 if len(outer.got) < outer.fail else 200
                    outer.got.append((time.monotonic(), status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.got)} of {n}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class TestWebhooks(StreamCase):
    def test_delivery_is_signed_and_retried_with_backoff(self):
        rx = Receiver(fail=2)
        self.addCleanup(rx.close)
        wh = self.hook(rx.url, kinds=["alarm"])
        self.assertEqual(len(wh["secret"]), 64)
        self.assertEqual(wh["kinds"], ["alarm"])
        self.entity("urn:wl:1")
        self.levels(("urn:wl:1", 3.5))
        got = rx.wait(3)
        times = [g[0] for g in got]
        self.assertEqual([g[1] for g in got], [500, 500, 200])
        self.assertGreaterEqual(times[1] - times[0], 0.9)   # 1 s
        self.assertGreaterEqual(times[2] - times[1], 1.9)   # 2 s
        self.assertLess(times[2] - times[0], 6)
        _, _, h, body = got[2]
        self.assertEqual(h["X-Citybrain-Event"], "alarm.raised")
        self.assertEqual(h["Content-Type"], "application/json")
        event = json.loads(body)
        self.assertEqual(str(event["id"]), h["X-Citybrain-Delivery"])
        self.assertEqual(event["data"]["entity"], "urn:wl:1")
        ts = h["X-Citybrain-Timestamp"]
        self.assertLess(abs(int(ts) - time.time()), 60)
        want = hmac.new(wh["secret"].encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        self.assertEqual(h["X-Citybrain-Signature"], "sha256=" + want)
        bad = hmac.new(b"other secret", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        self.assertNotEqual(h["X-Citybrain-Signature"], "sha256=" + bad)
        # every attempt of one event carries the same delivery id
        self.assertEqual({g[2]["X-Citybrain-Delivery"] for g in got}, {h["X-Citybrain-Delivery"]})
        listed = self.ok(self.get("/api/v1/webhooks"))["webhooks"]
        self.assertEqual(len(listed), 1)
        self.assertNotIn("secret", listed[0])
        self.assertEqual((listed[0]["delivered"], listed[0]["failed"], listed[0]["dropped"]), (1, 2, 0))
        self.assertEqual(listed[0]["last_status"], 200)
        self.assertEqual(self.metric(f'citybrain_webhook_deliveries_total{{webhook="{wh["id"]}",outcome="delivered"}}'), 1)

    def test_kinds_select_events_and_a_given_secret_is_used(self):
        rx = Receiver()
        self.addCleanup(rx.close)
        secret = "s3cret-of-the-water-bureau"
        wh = self.hook(rx.url, kinds=["case"], secret=secret)
        self.assertEqual(wh["secret"], secret)
        rx_all = Receiver()
        self.addCleanup(rx_all.close)
        self.hook(rx_all.url)  # no kinds: everything
        self.entity("urn:wl:1")
        self.levels(("urn:wl:1", 3.5))
        rx_all.wait(1)
        time.sleep(0.5)
        self.assertEqual(rx.got, [])

    def test_a_hung_receiver_does_not_hold_up_shutdown(self):
        hung = socket.socket()  # accepts into the backlog, never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(10)
        self.addCleanup(hung.close)
        self.hook(f"http://127.0.0.1:{hung.getsockname()[1]}/hook")  # webhook_timeout: 10 s
        self.entity("urn:wl:1")
        self.levels(("urn:wl:1", 3.5))
        time.sleep(1.0)  # the attempt is under way
        t0 = time.time()
        self.assertEqual(self.s.stop(), 0)
        self.assertLess(time.time() - t0, 4)

    def test_admin_api_validates_and_deletes(self):
        for body, field in (({}, "url"), ({"url": "ftp://x/"}, "url"), ({"url": "http://"}, "url"),
                            ({"url": 5}, "url"), ({"url": "http://x/", "kinds": ["parade"]}, "kinds"),
                            ({"url": "http://x/", "kinds": "alarm"}, "kinds"),
                            ({"url": "http://x/", "secret": "short"}, "secret")):
            r = self.post("/api/v1/webhooks", body)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json()["error"]["field"], field, (body, r))
        op = self.s.key("operator")
        self.assertEqual(self.post("/api/v1/webhooks", {"url": "http://x/"}, key=op).status, 403)
        self.assertEqual(self.get("/api/v1/webhooks", key=op).status, 403)
        wh = self.hook("http://127.0.0.1:9/hook")
        self.assertEqual(self.s.request("DELETE", "/api/v1/webhooks/" + wh["id"], key=self.key).status, 200)
        self.assertEqual(self.s.request("DELETE", "/api/v1/webhooks/" + wh["id"], key=self.key).status, 404)
        self.assertEqual(self.ok(self.get("/api/v1/webhooks"))["webhooks"], [])


class TestDeadWebhook(StreamCase):
    flags = ("--webhook-queue", "16", "--webhook-timeout", "2")

    def test_a_dead_receiver_never_slows_ingest(self):
        # accepts connections and never answers: each attempt waits out the timeout
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead.listen(1000)
        self.addCleanup(dead.close)
        self.hook(f"http://127.0.0.1:{dead.getsockname()[1]}/hook")
        self.entity("urn:wl:1")
        c = self.stream()
        slowest = 0
        for i in range(200):  # 200 alarm events
            t0 = time.time()
            self.levels(("urn:wl:1", 3.5 if i % 2 == 0 else 1.0))
            slowest = max(slowest, time.time() - t0)
        got = c.events(200, timeout=20)  # the stream keeps up regardless
        self.assertEqual(len(got), 200)
        self.assertLess(slowest, 1.0)
        # the sender, stuck in a 2 s attempt, finds 199 more and keeps the newest 16
        deadline = time.time() + 15
        while self.metric("citybrain_webhook_queue_dropped_total") < 150 and time.time() < deadline:
            time.sleep(0.2)
        self.assertGreaterEqual(self.metric("citybrain_webhook_queue_dropped_total"), 150)
        self.assertLessEqual(self.metric("citybrain_webhook_queue"), 16)
        self.assertEqual(self.ok(self.get("/api/v1/webhooks"))["webhooks"][0]["delivered"], 0)


if __name__ == "__main__":
    unittest.main()
