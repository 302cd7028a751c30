"""Rules and alarms over real HTTP (预测预警): rule CRUD and validation, each
kind end to end through /api/v1/ingest, acknowledge and clear, stats,
filters and paging, maintenance windows, and open alarms across a graceful
restart and kill -9.

One server on the Jiaozuo districts (1 km grid) serves most tests; each test
uses its own entity ids, types and rules, so tests stay independent."""
import http.client
import json
import signal
import time
import unittest
import urllib.parse

from harness import CityServerTestCase, Server, ServerTestCase, import_jiaozuo

JIEFANG = (113.230816, 35.240282)    # inside 解放区 410802
SHANYANG = (113.2655, 35.184)        # inside 山阳区 410811


def now_ms():
    return int(time.time() * 1000)


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


def square(lon, lat, d):
    return {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                                                [lon - d, lat + d], [lon - d, lat - d]]]}


class RulesServer(CityServerTestCase):
    def req(self, method, path, body=None, key=None):
        return self.s.request(method, path, body, key=key or self.admin)

    def entity(self, id, type, loc=JIEFANG, department="SLJ"):
        return self.ok(self.req("POST", "/api/v1/entities", {"id": id, "type": type, "location": list(loc),
                                                             "department": department}), 201)

    def rule(self, **body):
        return self.ok(self.req("POST", "/api/v1/rules", body), 201)

    def ingest(self, *readings):
        return self.ok(self.req("POST", "/api/v1/ingest", {"readings": list(readings)}))

    def alarms(self, **params):
        return self.ok(self.req("GET", "/api/v1/alarms" + qs(**params)))["alarms"]

    def wait_alarms(self, n, timeout=10, **params):
        """Polls until exactly n alarms match (alarms are stored by the rules thread)."""
        deadline = time.time() + timeout
        while True:
            got = self.alarms(**params)
            if len(got) == n or time.time() > deadline:
                self.assertEqual(len(got), n, got)
                return got
            time.sleep(0.05)


class RuleCrud(RulesServer):
    def test_create_read_update_delete(self):
        r = self.rule(name="水位超限", kind="threshold", scope={"type": "CrudSensor"}, attr="level_m", op=">",
                      value=3.2, clear=3.0, severity="critical", category="防汛")
        self.assertTrue(r["id"].startswith("r"), r)
        self.assertTrue(r["enabled"])
        got = self.ok(self.req("GET", "/api/v1/rules/" + r["id"]))
        self.assertEqual(got["value"], 3.2)
        ids = [x["id"] for x in self.ok(self.req("GET", "/api/v1/rules"))["rules"]]
        self.assertIn(r["id"], ids)
        upd = dict(got, value=4.0)
        self.assertEqual(self.ok(self.req("PUT", "/api/v1/rules/" + r["id"], upd))["value"], 4.0)
        self.assertEqual(self.ok(self.req("GET", "/api/v1/rules/" + r["id"]))["value"], 4.0)
        self.ok(self.req("DELETE", "/api/v1/rules/" + r["id"]))
        self.assertError(self.req("GET", "/api/v1/rules/" + r["id"]), 404, "not_found")
        self.assertError(self.req("DELETE", "/api/v1/rules/" + r["id"]), 404, "not_found")

    def test_validation_errors_name_the_field(self):
        base = dict(name="n", kind="threshold", attr="a", op=">", value=1, severity="major", category="c")
        cases = [
            ({k: v for k, v in base.items() if k != "name"}, 400, "missing_field", "name"),
            (dict(base, kind="sometimes"), 400, "invalid_field", "kind"),
            (dict(base, op="=>"), 400, "invalid_field", "op"),
            (dict(base, severity="urgent"), 400, "invalid_field", "severity"),
            (dict(base, clear=5), 400, "invalid_field", "clear"),
            (dict(base, for_s=-1), 400, "invalid_field", "for_s"),
            (dict(base, colour="red"), 400, "invalid_field", "colour"),
            (dict(base, scope={"district": "999999"}), 400, "invalid_field", "scope.district"),
            (dict(base, scope={"entities": []}), 400, "invalid_field", "scope.entities"),
            (dict(base, kind="rate", op=None, value=None, change_pct=-30), 400, "missing_field", "window_s"),
            (dict(name="g", kind="geofence", on="exit", severity="major", category="c",
                  polygon={"type": "Polygon", "coordinates": [[[113, 35], [113.1, 35.1], [113.1, 35], [113, 35.1], [113, 35]]]}),
             400, "invalid_field", "polygon"),
            (dict(name="g", kind="geofence", on="around", severity="major", category="c", polygon=square(113, 35, 0.1)),
             400, "invalid_field", "on"),
            (dict(base, open_case={"kind": "x"}), 400, "invalid_field", "open_case.category"),
        ]
        for body, status, code, field in cases:
            body = {k: v for k, v in body.items() if v is not None}
            with self.subTest(field=field):
                self.assertError(self.req("POST", "/api/v1/rules", body), status, code, field=field)
        self.assertError(self.req("POST", "/api/v1/rules", "{not json"), 400, "invalid_json")
        self.rule(id="r-dup", **base)
        self.assertError(self.req("POST", "/api/v1/rules", dict(base, id="r-dup")), 409, "conflict", field="id")

    def test_roles(self):
        viewer = self.s.key("viewer")
        operator = self.s.key("operator")
        self.ok(self.req("GET", "/api/v1/rules", key=viewer))
        self.ok(self.req("GET", "/api/v1/alarms", key=viewer))
        body = dict(name="n", kind="nodata", seconds=60, severity="minor", category="运维", scope={"type": "RoleSensor"})
        self.assertError(self.req("POST", "/api/v1/rules", body, key=viewer), 403, "forbidden")
        self.ok(self.req("POST", "/api/v1/rules", body, key=operator), 201)
        self.assertError(self.s.request("GET", "/api/v1/rules"), 401, "unauthorized")


class Kinds(RulesServer):
    def test_threshold_with_hysteresis_end_to_end(self):
        self.rule(id="r-level", name="水位超限", kind="threshold", scope={"type": "E2EWater"}, attr="level_m", op=">",
                  value=3.2, clear=3.0, severity="critical", category="防汛")
        self.entity("urn:e2e:w1", "E2EWater")
        t = now_ms()
        self.ingest({"entity": "urn:e2e:w1", "ts": t, "values": {"level_m": 3.4}})
        a = self.wait_alarms(1, rule="r-level", state="open")[0]
        self.assertEqual(a["message"], "水位 3.40 m 超过阈值 3.2 m")
        self.assertEqual((a["entity"], a["district"], a["department"], a["severity"], a["category"], a["value"]),
                         ("urn:e2e:w1", "410802", "SLJ", "critical", "防汛", 3.4))
        self.assertTrue(a["id"].startswith("A"), a)
        self.ingest({"entity": "urn:e2e:w1", "ts": t + 1000, "values": {"level_m": 3.1}})
        self.ingest({"entity": "urn:e2e:w1", "ts": t + 500, "values": {"level_m": 1.0}})  # out of order: ignored
        time.sleep(0.3)
        self.wait_alarms(1, rule="r-level", state="open")
        self.ingest({"entity": "urn:e2e:w1", "ts": t + 2000, "values": {"level_m": 2.9}})
        c = self.wait_alarms(1, rule="r-level", state="cleared")[0]
        self.assertEqual(c["cleared_by"], "auto")
        detail = self.ok(self.req("GET", "/api/v1/alarms/" + c["id"]))
        self.assertEqual([h["action"] for h in detail["history"]], ["raised", "cleared"])

    def test_rate_of_change(self):
        self.rule(id="r-rate", name="压力骤降", kind="rate", scope={"type": "E2EPipe"}, attr="pressure_mpa",
                  change_pct=-30, window_s=600, severity="major", category="供水")
        self.entity("urn:e2e:p1", "E2EPipe")
        t = now_ms() - 120000
        self.ingest({"entity": "urn:e2e:p1", "ts": t, "values": {"pressure_mpa": 0.40}},
                    {"entity": "urn:e2e:p1", "ts": t + 60000, "values": {"pressure_mpa": 0.38}})
        time.sleep(0.2)
        self.wait_alarms(0, rule="r-rate")
        self.ingest({"entity": "urn:e2e:p1", "ts": t + 120000, "values": {"pressure_mpa": 0.25}})
        a = self.wait_alarms(1, rule="r-rate", state="open")[0]
        self.assertIn("下降 37.5%", a["message"])

    def test_nodata_with_a_short_heartbeat(self):
        self.rule(id="r-offline", name="设备离线", kind="nodata", scope={"type": "E2EBeacon"}, seconds=2,
                  severity="minor", category="运维")
        self.entity("urn:e2e:b1", "E2EBeacon")
        self.ingest({"entity": "urn:e2e:b1", "values": {"battery": 90}})
        time.sleep(0.5)
        self.wait_alarms(0, rule="r-offline")
        a = self.wait_alarms(1, timeout=6, rule="r-offline", state="open")[0]
        self.assertIn("无数据", a["message"])
        self.ingest({"entity": "urn:e2e:b1", "values": {"battery": 89}})
        self.wait_alarms(1, rule="r-offline", state="cleared")

    def test_geofence_exit_and_return(self):
        corridor = square(JIEFANG[0], JIEFANG[1], 0.01)
        self.rule(id="r-corridor", name="危化品车辆通行走廊", kind="geofence", on="exit", polygon=corridor,
                  scope={"entities": ["urn:e2e:truck"]}, severity="critical", category="危化品运输")
        self.entity("urn:e2e:truck", "E2EVehicle")
        t = now_ms() - 10000
        self.ingest({"entity": "urn:e2e:truck", "ts": t, "location": list(JIEFANG), "values": {"speed_kmh": 40}})
        time.sleep(0.2)
        self.wait_alarms(0, rule="r-corridor")
        self.ingest({"entity": "urn:e2e:truck", "ts": t + 1000, "location": [JIEFANG[0] + 0.02, JIEFANG[1]]})
        a = self.wait_alarms(1, rule="r-corridor", state="open")[0]
        self.assertIn("驶出电子围栏", a["message"])
        self.ingest({"entity": "urn:e2e:truck", "ts": t + 2000, "location": list(JIEFANG)})
        self.wait_alarms(1, rule="r-corridor", state="cleared")

    def test_region_count_in_one_grid_cell(self):
        self.rule(id="r-smoke", name="网格火情", kind="region_count", scope={"type": "E2ESmoke"}, attr="smoke", op="==",
                  value=1, count=3, window_s=300, group="grid", severity="critical", category="消防")
        ids = [f"urn:e2e:s{i}" for i in range(4)]
        for i, id in enumerate(ids[:3]):
            self.entity(id, "E2ESmoke", loc=(JIEFANG[0] + 0.0005 * i, JIEFANG[1]))
        self.entity(ids[3], "E2ESmoke", loc=SHANYANG)
        cell = self.ok(self.req("GET", "/api/v1/entities/" + ids[0]))["grid"]
        self.ingest({"entity": ids[0], "values": {"smoke": True}}, {"entity": ids[1], "values": {"smoke": True}},
                    {"entity": ids[3], "values": {"smoke": True}})
        time.sleep(0.2)
        self.wait_alarms(0, rule="r-smoke")
        self.ingest({"entity": ids[2], "values": {"smoke": True}})
        a = self.wait_alarms(1, rule="r-smoke", state="open")[0]
        self.assertEqual((a["entity"], a["entity_type"], a["grid"], a["district"]), (cell, "grid", cell, "410802"))
        self.assertEqual(sorted(a["data"]["entities"]), ids[:3])
        self.ingest({"entity": ids[1], "values": {"smoke": False}})
        self.wait_alarms(1, rule="r-smoke", state="cleared")


class Workflow(RulesServer):
    def raise_three(self, prefix):
        self.rule(id=f"r-{prefix}", name="高温", kind="threshold", scope={"type": f"{prefix}T"}, attr="temp", op=">=",
                  value=60, severity="major", category="消防")
        for i, loc in enumerate([JIEFANG, JIEFANG, SHANYANG]):
            self.entity(f"urn:{prefix}:{i}", f"{prefix}T", loc=loc)
            self.ingest({"entity": f"urn:{prefix}:{i}", "values": {"temp": 70 + i}})
        return self.wait_alarms(3, rule=f"r-{prefix}")

    def test_acknowledge_then_clear_with_history(self):
        a = self.raise_three("ack")[0]
        path = "/api/v1/alarms/" + a["id"]
        got = self.ok(self.req("POST", path + "/acknowledge", {"note": "已派人核查"}))
        self.assertEqual(got["state"], "acknowledged")
        self.assertTrue(got["acknowledged_at"] and got["acknowledged_by"])
        self.assertError(self.req("POST", path + "/acknowledge"), 409, "conflict")
        got = self.ok(self.req("POST", path + "/clear", {"note": "已处置"}))
        self.assertEqual(got["state"], "cleared")
        self.assertEqual([(h["action"], h["note"]) for h in got["history"]][1:],
                         [("acknowledged", "已派人核查"), ("cleared", "已处置")])
        self.assertError(self.req("POST", path + "/clear"), 409, "conflict")
        self.assertError(self.req("POST", "/api/v1/alarms/A999999/clear"), 404, "not_found")
        self.assertError(self.req("POST", path + "/clear", {"note": 5}), 400, "invalid_field", field="note")
        viewer = self.s.key("viewer")
        self.assertError(self.req("POST", path + "/acknowledge", key=viewer), 403, "forbidden")

    def test_filters_paging_and_stats(self):
        self.raise_three("flt")
        self.assertEqual(len(self.alarms(rule="r-flt", district="410811")), 1)
        self.assertEqual(len(self.alarms(rule="r-flt", type="fltT", severity="major")), 3)
        self.assertEqual(len(self.alarms(rule="r-flt", severity="critical")), 0)
        self.assertEqual(len(self.alarms(rule="r-flt", entity="urn:flt:1")), 1)
        page = self.ok(self.req("GET", "/api/v1/alarms" + qs(rule="r-flt", limit=2)))
        self.assertEqual(len(page["alarms"]), 2)
        rest = self.ok(self.req("GET", "/api/v1/alarms" + qs(rule="r-flt", limit=2, cursor=page["next_cursor"])))
        seen = [a["id"] for a in page["alarms"] + rest["alarms"]]
        self.assertEqual(len(set(seen)), 3)
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.assertError(self.req("GET", "/api/v1/alarms?state=burning"), 400, "invalid_field", field="state")
        self.assertError(self.req("GET", "/api/v1/alarms?limit=0"), 400, "invalid_field", field="limit")
        stats = self.ok(self.req("GET", "/api/v1/alarms/stats?state=active"))
        self.assertGreaterEqual(stats["by_type"]["fltT"], 3)
        self.assertEqual(stats["total"], sum(stats["by_severity"].values()))
        self.assertIn("410811", stats["by_district"])

    def test_maintenance_window_suppresses_raising(self):
        self.rule(id="r-mnt", name="高水位", kind="threshold", scope={"type": "MntW"}, attr="level_m", op=">",
                  value=3, severity="major", category="防汛")
        self.entity("urn:mnt:1", "MntW")
        t = now_ms()
        w = self.ok(self.req("POST", "/api/v1/maintenance", {"entity": "urn:mnt:1", "from": t - 1000, "to": t + 3000,
                                                             "reason": "设备校准"}), 201)
        self.assertTrue(w["id"])
        self.assertError(self.req("POST", "/api/v1/maintenance", {"entity": "urn:mnt:1", "from": t, "to": t - 1,
                                                                  "reason": "x"}), 400, "invalid_field", field="to")
        self.assertError(self.req("POST", "/api/v1/maintenance", {"from": t, "to": t + 1}), 400, "missing_field",
                         field="reason")
        self.ingest({"entity": "urn:mnt:1", "ts": t, "values": {"level_m": 3.5}})
        time.sleep(0.3)
        self.wait_alarms(0, rule="r-mnt")
        ids = [x["id"] for x in self.ok(self.req("GET", "/api/v1/maintenance"))["maintenance"]]
        self.assertIn(w["id"], ids)
        self.ok(self.req("DELETE", "/api/v1/maintenance/" + w["id"]))
        self.assertError(self.req("DELETE", "/api/v1/maintenance/" + w["id"]), 404, "not_found")
        self.ingest({"entity": "urn:mnt:1", "ts": t + 100, "values": {"level_m": 3.6}})
        self.wait_alarms(1, rule="r-mnt", state="open")

    def test_alarm_events_on_the_stream(self):
        self.rule(id="r-sse", name="高水位", kind="threshold", scope={"type": "SseW"}, attr="level_m", op=">",
                  value=3, severity="major", category="防汛")
        self.entity("urn:sse:1", "SseW")
        conn = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        conn.request("GET", "/api/v1/stream?kind=alarm&district=410802", headers={"Authorization": "Bearer " + self.admin})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.ingest({"entity": "urn:sse:1", "values": {"level_m": 3.5}})
        text, deadline = "", time.time() + 10
        while "urn:sse:1" not in text and time.time() < deadline:
            text += resp.read1(65536).decode()
        conn.close()
        frame = text[text.index("event: alarm.raised"):]
        data = json.loads(frame.split("data: ", 1)[1].split("\n", 1)[0])
        alarm = data.get("data", data)
        self.assertEqual((alarm["rule"], alarm["entity"], alarm["state"]), ("r-sse", "urn:sse:1", "open"))

    def test_metrics(self):
        body = self.req("GET", "/metrics").body
        self.assertIn("citybrain_rules ", body)
        self.assertIn('citybrain_alarms_total{change="raised"}', body)


class Restart(ServerTestCase):
    def restart_keeps_open_alarms(self, sig):
        s = import_jiaozuo(Server()).start()
        self._servers = [s]
        self.addCleanup(s.cleanup)
        key = s.key("admin")
        r = s.request("POST", "/api/v1/rules", {"id": "r-keep", "name": "水位超限", "kind": "threshold",
                                                "scope": {"type": "KeepW"}, "attr": "level_m", "op": ">",
                                                "value": 3.2, "severity": "critical", "category": "防汛"}, key=key)
        self.assertEqual(r.status, 201, r)
        for i in range(2):
            r = s.request("POST", "/api/v1/entities", {"id": f"urn:keep:{i}", "type": "KeepW",
                                                       "location": list(JIEFANG)}, key=key)
            self.assertEqual(r.status, 201, r)
        t = now_ms()

        def alarms(**p):
            return s.request("GET", "/api/v1/alarms" + qs(rule="r-keep", **p), key=key).json()["alarms"]

        s.request("POST", "/api/v1/ingest", {"readings": [{"entity": "urn:keep:0", "ts": t, "values": {"level_m": 3.5}}]},
                  key=key)
        deadline = time.time() + 10
        while not alarms() and time.time() < deadline:
            time.sleep(0.05)
        first = alarms()[0]
        # the second entity's reading is acknowledged and the server dies at once: its alarm comes from the
        # WAL replay if the rules thread had not stored it yet
        r = s.request("POST", "/api/v1/ingest", {"readings": [{"entity": "urn:keep:1", "ts": t, "values": {"level_m": 3.9}}]},
                      key=key)
        self.assertEqual(r.status, 200, r)
        if sig == signal.SIGKILL:
            s.proc.kill()
            s.proc.wait()
        else:
            self.assertEqual(s.stop(sig), 0)
        s.start()
        deadline = time.time() + 10
        while len(alarms()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        got = {a["entity"]: a for a in alarms(state="open")}
        self.assertEqual(sorted(got), ["urn:keep:0", "urn:keep:1"], alarms())
        self.assertEqual(got["urn:keep:0"]["id"], first["id"])
        # newer readings: still high adds nothing, low clears the same alarm
        s.request("POST", "/api/v1/ingest", {"readings": [
            {"entity": "urn:keep:0", "ts": t + 1000, "values": {"level_m": 3.6}},
            {"entity": "urn:keep:0", "ts": t + 2000, "values": {"level_m": 1.0}}]}, key=key)
        deadline = time.time() + 10
        while len(alarms(state="cleared")) < 1 and time.time() < deadline:
            time.sleep(0.05)
        cleared = alarms(state="cleared")
        self.assertEqual([a["id"] for a in cleared], [first["id"]])
        self.assertEqual(len(alarms()), 2)
        r = s.request("GET", "/api/v1/rules/r-keep", key=key)
        self.assertEqual(r.status, 200, r)

    def test_graceful_restart(self):
        self.restart_keeps_open_alarms(signal.SIGTERM)

    def test_kill_9(self):
        self.restart_keeps_open_alarms(signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
