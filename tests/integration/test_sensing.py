"""Sensing over real HTTP (一网感知万物): regions, entities, the two ingest
doors (JSON and line protocol), device tokens, queries and aggregates,
persistence across restarts and kill -9, backpressure and metrics.

Most classes share one server started on the Jiaozuo districts and a 1 km
grid; each test uses its own entity ids and types so tests stay independent."""
import json
import math
import re
import signal
import threading
import time
import unittest
import urllib.parse
from datetime import datetime, timezone

from harness import CityServerTestCase, Server, ServerTestCase, import_jiaozuo

JIEFANG = (113.230816, 35.240282)    # inside 解放区 410802
SHANYANG = (113.2655, 35.184)        # inside 山阳区 410811
WUZHI = (113.396, 35.050)            # inside 武陟县 410823
OUTSIDE = (120.0, 35.0)              # east of Jiaozuo
DISTRICTS = {"410802": "解放区", "410803": "中站区", "410804": "马村区", "410811": "山阳区",
             "410821": "修武县", "410822": "博爱县", "410823": "武陟县", "410825": "温县",
             "410882": "沁阳市", "410883": "孟州市"}


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def haversine_m(lon1, lat1, lon2, lat2):
    r, rad = 6371008.8, math.pi / 180
    a = math.sin((lat2 - lat1) * rad / 2) ** 2 + \
        math.cos(lat1 * rad) * math.cos(lat2 * rad) * math.sin((lon2 - lon1) * rad / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


class CityServer(CityServerTestCase):
    # --- helpers ---
    def get(self, path, key=None):
        return self.s.request("GET", path, key=key or self.admin)

    def post(self, path, body, key=None, **kw):
        return self.s.request("POST", path, body, key=key or self.admin, **kw)

    def create(self, id, type="AirQualityObserved", loc=JIEFANG, **extra):
        body = {"id": id, "type": type, **extra}
        if loc is not None:
            body["location"] = list(loc)
        return self.ok(self.post("/api/v1/entities", body), 201)

    def entity(self, id):
        return self.ok(self.get("/api/v1/entities/" + urllib.parse.quote(id, safe=":")))

    def locate(self, lon, lat):
        return self.ok(self.get("/api/v1/regions/locate" + qs(lon=lon, lat=lat)))

    def ingest(self, readings, key=None):
        return self.post("/api/v1/ingest", {"readings": readings}, key=key)

    def write(self, text, precision=None, key=None):
        path = "/api/v1/write" + (qs(precision=precision) if precision else "")
        body = text if isinstance(text, bytes) else text.encode()
        return self.post(path, body, key=key, headers={"Content-Type": "text/plain"})

    def list_all(self, **params):
        """Pages through GET /api/v1/entities; returns every entity and each page's total."""
        out, totals, cursor = [], [], None
        for _ in range(10000):
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            page = self.ok(self.get("/api/v1/entities" + qs(**p)))
            out += page["entities"]
            totals.append(page["total"])
            self.assertEqual(page["count"], len(page["entities"]))
            cursor = page.get("next_cursor")
            if not cursor:
                return out, totals
        self.fail("paging never ended")


class Regions(CityServer):
    def test_lists_the_ten_districts_with_codes_and_names(self):
        body = self.ok(self.get("/api/v1/regions?level=district"))
        self.assertEqual(body["count"], 10)
        got = {r["code"]: r["name"] for r in body["regions"]}
        self.assertEqual(got, DISTRICTS)
        self.assertTrue(all(r["parent"] == "410800" and r["level"] == "district" for r in body["regions"]))

    def test_grid_cells_are_listed_and_belong_to_districts(self):
        body = self.ok(self.get("/api/v1/regions?level=grid"))
        self.assertGreater(body["count"], 1000)
        self.assertTrue(all(r["parent"] in DISTRICTS for r in body["regions"]))
        self.assertError(self.get("/api/v1/regions?level=province"), 400, "invalid_field", field="level")

    def test_one_region_as_geojson_feature(self):
        f = self.ok(self.get("/api/v1/regions/410802"))
        self.assertEqual(f["type"], "Feature")
        self.assertEqual(f["properties"]["code"], "410802")
        self.assertEqual(f["properties"]["name"], "解放区")
        self.assertIn(f["geometry"]["type"], ("Polygon", "MultiPolygon"))
        ring = f["geometry"]["coordinates"][0]
        ring = ring[0] if f["geometry"]["type"] == "MultiPolygon" else ring
        self.assertGreater(len(ring), 10)
        self.assertEqual(ring[0], ring[-1])
        self.assertError(self.get("/api/v1/regions/999999"), 404, "not_found")

    def test_locate_inside_and_outside(self):
        at = self.locate(*JIEFANG)
        self.assertEqual(at["district"]["code"], "410802")
        self.assertTrue(at["grid"]["code"].startswith("410802-"), at)
        self.assertEqual(at["grid"]["parent"], "410802")
        self.assertEqual(self.locate(*SHANYANG)["district"]["code"], "410811")
        out = self.locate(*OUTSIDE)
        self.assertIsNone(out["district"])
        self.assertIsNone(out["grid"])

    def test_locate_with_bad_coordinates_names_the_field(self):
        self.assertError(self.get("/api/v1/regions/locate?lon=abc&lat=35.2"), 400, "invalid_field", field="lon")
        self.assertError(self.get("/api/v1/regions/locate?lon=200&lat=35.2"), 400, "invalid_field", field="lon")
        self.assertError(self.get("/api/v1/regions/locate?lon=113.2&lat=91"), 400, "invalid_field", field="lat")
        self.assertError(self.get("/api/v1/regions/locate?lon=113.2"), 400, "missing_field", field="lat")

    def test_regions_need_a_key(self):
        self.assertError(self.s.request("GET", "/api/v1/regions"), 401, "unauthorized")


class Entities(CityServer):
    def test_create_assigns_district_and_grid_as_locate_does(self):
        for i, point in enumerate((JIEFANG, SHANYANG, WUZHI)):
            e = self.create(f"urn:ngsi-ld:AirQualityObserved:ent-{i}", loc=point, department="HBJ",
                            properties={"model": "AQ-7"})
            at = self.locate(*point)
            self.assertEqual(e["district"], at["district"]["code"], e)
            self.assertEqual(e["grid"], at["grid"]["code"], e)
            self.assertEqual(e["location"], list(point))
            self.assertEqual(e["department"], "HBJ")
            self.assertEqual(e["readings"], 0)
            self.assertNotIn("token", e)
            got = self.entity(e["id"])
            self.assertEqual((got["district"], got["grid"]), (e["district"], e["grid"]))
            self.assertEqual(got["properties"], {"model": "AQ-7"})
        outside = self.create("urn:ent:outside", loc=OUTSIDE)
        self.assertIsNone(outside["district"])
        self.assertIsNone(outside["grid"])

    def test_duplicate_id_is_409(self):
        self.create("urn:ent:dup")
        r = self.post("/api/v1/entities", {"id": "urn:ent:dup", "type": "Streetlight", "location": list(SHANYANG)})
        self.assertError(r, 409, "conflict", field="id")
        self.assertEqual(self.entity("urn:ent:dup")["type"], "AirQualityObserved")

    def test_bad_fields_are_400_naming_the_field(self):
        cases = [({"id": "urn:bad:1", "type": "T", "location": [113.2]}, "location"),
                 ({"id": "urn:bad:2", "type": "T", "location": [113.2, 95]}, "location"),
                 ({"id": "urn:bad:3", "type": "T", "location": "here"}, "location"),
                 ({"id": "urn:bad:4", "location": list(JIEFANG)}, "type"),
                 ({"type": "T", "location": list(JIEFANG)}, "id"),
                 ({"id": "urn:bad:6", "type": "no spaces please"}, "type"),
                 ({"id": "urn:bad:7", "type": "T", "heartbeat_s": "soon"}, "heartbeat_s")]
        for body, field in cases:
            with self.subTest(field=field, body=body):
                r = self.post("/api/v1/entities", body)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["error"]["field"], field, r)
                if "id" in body:
                    self.assertEqual(self.get("/api/v1/entities/" + body["id"]).status, 404)
        self.assertError(self.post("/api/v1/entities", b"{not json"), 400, "invalid_json")

    def test_only_operators_create(self):
        viewer = self.s.key("viewer")
        r = self.post("/api/v1/entities", {"id": "urn:ent:viewer", "type": "T"}, key=viewer)
        self.assertError(r, 403, "forbidden")
        self.assertEqual(self.ok(self.get("/api/v1/entities?type=T", key=viewer))["total"], 0)

    def test_bulk_of_ten_thousand_in_one_request(self):
        items = [{"id": f"urn:bulk:{i:05d}", "type": "BulkSensor",
                  "location": [112.9 + (i % 100) * 0.006, 34.95 + (i // 100) * 0.004]} for i in range(10000)]
        t0 = time.time()
        out = self.ok(self.post("/api/v1/entities", {"entities": items}, timeout=120))
        took = time.time() - t0
        self.assertEqual((out["created"], out["rejected"], out["errors"]), (10000, 0, []))
        self.assertLess(took, 10, "bulk create of 10,000 took %.1f s" % took)
        self.assertEqual(self.ok(self.get("/api/v1/entities?type=BulkSensor&limit=1"))["total"], 10000)
        # regions are assigned in bulk too
        e = self.entity("urn:bulk:05050")
        at = self.locate(*e["location"])
        self.assertEqual(e["district"], at["district"] and at["district"]["code"])

    def test_bulk_reports_bad_items_by_index_and_keeps_the_good(self):
        items = [{"id": "urn:mix:0", "type": "MixNew", "department": "MixDept", "location": list(JIEFANG)},
                 {"id": "urn:mix:1", "type": "MixNew", "location": [1000, 0]},
                 {"id": "urn:mix:2", "type": "MixNew", "location": list(SHANYANG), "device": True},
                 {"type": "MixNew"},
                 {"id": "urn:mix:0", "type": "MixNew"},
                 "not an object",
                 {"id": "urn:mix:6", "type": "MixNew"}]
        out = self.ok(self.post("/api/v1/entities", {"entities": items}))
        self.assertEqual((out["created"], out["rejected"]), (3, 4), out)
        by_index = {e["index"]: e for e in out["errors"]}
        self.assertEqual(sorted(by_index), [1, 3, 4, 5])
        self.assertEqual(by_index[1]["field"], "entities[1].location")
        self.assertEqual(by_index[3]["field"], "entities[3].id")
        self.assertEqual(by_index[4]["code"], "conflict")
        for i in (0, 2, 6):
            self.assertEqual(self.get(f"/api/v1/entities/urn:mix:{i}").status, 200)
        self.assertEqual(self.get("/api/v1/entities/urn:mix:1").status, 404)
        self.assertEqual([t["id"] for t in out["tokens"]], ["urn:mix:2"])
        self.assertTrue(out["tokens"][0]["token"].startswith("cbd_"))
        self.assertEqual(self.entity("urn:mix:0")["department"], "MixDept")

    def test_bulk_over_ten_thousand_is_413(self):
        items = [{"id": f"urn:big:{i}", "type": "Big"} for i in range(10001)]
        self.assertError(self.post("/api/v1/entities", {"entities": items}, timeout=60), 413,
                         "payload_too_large", field="entities")
        self.assertEqual(self.get("/api/v1/entities/urn:big:0").status, 404)

    def test_patch_location_moves_district_and_grid(self):
        self.create("urn:ent:mover", type="Vehicle", loc=JIEFANG)
        e = self.ok(self.s.request("PATCH", "/api/v1/entities/urn:ent:mover",
                                   {"location": list(SHANYANG), "heartbeat_s": 30}, key=self.admin))
        at = self.locate(*SHANYANG)
        self.assertEqual((e["district"], e["grid"]), (at["district"]["code"], at["grid"]["code"]))
        self.assertEqual(e["heartbeat_s"], 30)
        self.assertEqual(self.entity("urn:ent:mover")["district"], "410811")
        ids = [x["id"] for x in self.ok(self.get("/api/v1/entities?type=Vehicle&district=410811"))["entities"]]
        self.assertIn("urn:ent:mover", ids)
        ids = [x["id"] for x in self.ok(self.get("/api/v1/entities?type=Vehicle&district=410802"))["entities"]]
        self.assertNotIn("urn:ent:mover", ids)
        r = self.s.request("PATCH", "/api/v1/entities/urn:ent:mover", {"type": "Bus"}, key=self.admin)
        self.assertError(r, 400, "invalid_field", field="type")
        r = self.s.request("PATCH", "/api/v1/entities/urn:ent:mover", {"location": [0]}, key=self.admin)
        self.assertError(r, 400, "invalid_field", field="location")
        r = self.s.request("PATCH", "/api/v1/entities/urn:ent:nobody", {"heartbeat_s": 5}, key=self.admin)
        self.assertError(r, 404, "not_found")

    def test_delete_then_404(self):
        self.create("urn:ent:gone")
        r = self.s.request("DELETE", "/api/v1/entities/urn:ent:gone", key=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertError(self.get("/api/v1/entities/urn:ent:gone"), 404, "not_found")
        self.assertError(self.s.request("DELETE", "/api/v1/entities/urn:ent:gone", key=self.admin), 404, "not_found")
        r = self.ingest([{"entity": "urn:ent:gone", "values": {"x": 1}}])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"][0]["code"], "not_found")
        self.create("urn:ent:gone", type="Streetlight")  # the id can be used again
        self.assertEqual(self.entity("urn:ent:gone")["type"], "Streetlight")

    def test_types_list_and_heartbeat(self):
        self.create("urn:ent:typed", type="ManholeCover")
        types = {t["type"]: t["heartbeat_s"] for t in self.ok(self.get("/api/v1/types"))["types"]}
        self.assertIn("ManholeCover", types)
        self.assertGreater(types["ManholeCover"], 0)
        r = self.s.request("PUT", "/api/v1/types/ManholeCover", {"heartbeat_s": 42}, key=self.admin)
        self.assertEqual(self.ok(r)["heartbeat_s"], 42)
        types = {t["type"]: t["heartbeat_s"] for t in self.ok(self.get("/api/v1/types"))["types"]}
        self.assertEqual(types["ManholeCover"], 42)
        self.assertEqual(self.entity("urn:ent:typed")["heartbeat_s"], 42)
        for bad in ({"heartbeat_s": 0}, {"heartbeat_s": "x"}, {}):
            r = self.s.request("PUT", "/api/v1/types/ManholeCover", bad, key=self.admin)
            self.assertError(r, 400, "invalid_field", field="heartbeat_s")
        op = self.s.key("operator")
        r = self.s.request("PUT", "/api/v1/types/ManholeCover", {"heartbeat_s": 1}, key=op)
        self.assertError(r, 403, "forbidden")


class IngestJson(CityServer):
    def test_good_batch(self):
        self.create("urn:ij:good")
        t = now_ms() - 1000
        r = self.ingest([{"entity": "urn:ij:good", "ts": t, "values": {"pm25": 35.5, "status": "ok", "on": True}},
                         {"entity": "urn:ij:good", "ts": t, "values": {"pm10": 70}}])
        self.assertEqual(self.ok(r), {"accepted": 4, "rejected": 0, "errors": []})
        e = self.entity("urn:ij:good")
        self.assertEqual(e["readings"], 4)
        self.assertEqual({k: v["value"] for k, v in e["values"].items()},
                         {"pm25": 35.5, "status": "ok", "on": True, "pm10": 70})
        self.assertEqual(e["values"]["pm25"]["ts"], rfc3339(t))
        self.assertTrue(e["online"])
        self.assertEqual(e["last_seen"], rfc3339(t))

    def test_bare_array_body_and_missing_ts_means_now(self):
        self.create("urn:ij:now")
        before = now_ms()
        r = self.post("/api/v1/ingest", [{"entity": "urn:ij:now", "values": {"v": 1}}])
        self.assertEqual(self.ok(r)["accepted"], 1)
        ts = self.entity("urn:ij:now")["values"]["v"]["ts"]
        got = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000
        self.assertLessEqual(abs(got - before), 5000)

    def test_per_reading_errors_name_index_and_field(self):
        self.create("urn:ij:mixed")
        now = now_ms()
        readings = [
            {"entity": "urn:ij:mixed", "values": {"ok": 1}},                                  # 0 good
            {"entity": "urn:ij:nobody", "values": {"x": 1}},                                  # 1 unknown
            {"entity": "urn:ij:mixed", "values": {"n": None, "o": {"a": 1}, "fine": 2}},      # 2 null/object
            {"entity": "urn:ij:mixed", "ts": now + 3600 * 1000, "values": {"x": 1}},          # 3 future
            {"entity": "urn:ij:mixed", "ts": "1999-01-01T00:00:00Z", "values": {"x": 1}},    # 4 past
            {"entity": "urn:ij:mixed", "ts": "yesterday noon", "values": {"x": 1}},           # 5 bad text
            {"entity": "urn:ij:mixed", "values": {"bad name!": 1}},                           # 6 bad attr
            {"entity": "urn:ij:mixed", "values": {"long": "x" * 5000}},                       # 7 too long
            {"entity": "urn:ij:mixed", "location": [500, 0]},                                 # 8 bad location
            {"values": {"x": 1}},                                                             # 9 no entity
            "nonsense",                                                                       # 10
        ]
        out = self.ok(self.ingest(readings))
        self.assertEqual(out["accepted"], 2, out)
        self.assertEqual(out["rejected"], 11, out)
        errs = {(e["index"], e["field"]): e for e in out["errors"]}
        expect = {(1, "readings[1].entity"): "not_found",
                  (2, "readings[2].values.n"): "invalid_field",
                  (2, "readings[2].values.o"): "invalid_field",
                  (3, "readings[3].ts"): "invalid_field",
                  (4, "readings[4].ts"): "invalid_field",
                  (5, "readings[5].ts"): "invalid_field",
                  (6, "readings[6].values.bad name!"): "invalid_field",
                  (7, "readings[7].values.long"): "invalid_field",
                  (8, "readings[8].location"): "invalid_field",
                  (9, "readings[9].entity"): "not_found"}
        for key, code in expect.items():
            self.assertIn(key, errs, out)
            self.assertEqual(errs[key]["code"], code, errs[key])
            self.assertTrue(errs[key]["message"])
        self.assertIn(10, [e["index"] for e in out["errors"]])
        self.assertIn("future", errs[(3, "readings[3].ts")]["message"])
        self.assertIn("past", errs[(4, "readings[4].ts")]["message"])
        e = self.entity("urn:ij:mixed")
        self.assertEqual(sorted(e["values"]), ["fine", "ok"])
        self.assertEqual(e["readings"], 2)

    def test_errors_quoting_cut_utf8_are_still_reported(self):
        # the attribute name is cut at 64 bytes inside a two-byte character
        self.create("urn:ij:utf8")
        name = "a" * 63 + "é" * 10
        out = self.ok(self.ingest([{"entity": "urn:ij:utf8", "values": {name: 1, "fine": 2}}]))
        self.assertEqual((out["accepted"], out["rejected"]), (1, 1), out)
        self.assertEqual(len(out["errors"]), 1, out)
        self.assertEqual(out["errors"][0]["index"], 0)
        self.assertTrue(out["errors"][0]["field"].startswith("readings[0].values.aaa"), out)
        out = self.write(b"x,id=urn:ij:utf8 caf\xe9=1,ok=2")  # not UTF-8 at all
        self.assertEqual(self.ok(out)["rejected"], 1, out)
        self.assertEqual(len(out.json()["errors"]), 1, out)

    def test_all_bad_is_400_with_error(self):
        r = self.ingest([{"entity": "urn:ij:nobody", "values": {"x": 1}},
                         {"entity": "urn:ij:nobody2", "values": {"x": 1, "y": 2}}])
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual((body["accepted"], body["rejected"]), (0, 3))
        self.assertEqual(body["error"]["code"], "invalid_field")
        self.assertEqual(body["error"]["field"], "readings[0].entity")
        r = self.ingest([])
        self.assertEqual(r.status, 400, r)
        self.assertIn("error", r.json())

    def test_body_level_errors(self):
        self.assertError(self.post("/api/v1/ingest", b"{\"readings\": [", headers={"Content-Type": "application/json"}),
                         400, "invalid_json", field="body")
        self.assertError(self.post("/api/v1/ingest", {"values": {}}), 400, "missing_field", field="readings")
        self.assertError(self.s.request("POST", "/api/v1/ingest", {"readings": []}), 401, "unauthorized")
        viewer = self.s.key("viewer")
        self.assertError(self.ingest([], key=viewer), 403, "forbidden")

    def test_timestamps_rfc3339_and_epoch_ms(self):
        self.create("urn:ij:times")
        t = now_ms() - 60000
        offset = datetime.fromtimestamp((t + 1000) / 1000, timezone.utc).astimezone()
        out = self.ok(self.ingest([
            {"entity": "urn:ij:times", "ts": t, "values": {"a": 1}},
            {"entity": "urn:ij:times", "ts": rfc3339(t + 500), "values": {"b": 2}},
            {"entity": "urn:ij:times", "ts": offset.isoformat(timespec="milliseconds"), "values": {"c": 3}},
        ]))
        self.assertEqual(out["accepted"], 3, out)
        v = self.entity("urn:ij:times")["values"]
        self.assertEqual(v["a"]["ts"], rfc3339(t))
        self.assertEqual(v["b"]["ts"], rfc3339(t + 500))
        self.assertEqual(v["c"]["ts"], rfc3339(t + 1000))

    def test_last_write_wins_by_time(self):
        self.create("urn:ij:lww")
        t = now_ms() - 10000
        self.ok(self.ingest([{"entity": "urn:ij:lww", "ts": t, "values": {"level": 2.0}}]))
        self.ok(self.ingest([{"entity": "urn:ij:lww", "ts": t - 5000, "values": {"level": 1.0}}]))
        e = self.entity("urn:ij:lww")
        self.assertEqual(e["values"]["level"], {"value": 2.0, "ts": rfc3339(t)})
        self.assertEqual(e["readings"], 2)  # the older reading is counted, not shown
        self.ok(self.ingest([{"entity": "urn:ij:lww", "ts": t + 1, "values": {"level": 3.0}}]))
        self.assertEqual(self.entity("urn:ij:lww")["values"]["level"]["value"], 3.0)
        # in one batch too: the newest time wins whatever the order
        self.ok(self.ingest([{"entity": "urn:ij:lww", "ts": t + 3, "values": {"level": 5.0}},
                             {"entity": "urn:ij:lww", "ts": t + 2, "values": {"level": 4.0}}]))
        self.assertEqual(self.entity("urn:ij:lww")["values"]["level"]["value"], 5.0)

    def test_location_moves_a_vehicle_and_its_district_follows(self):
        self.create("urn:ij:bus", type="Vehicle", loc=JIEFANG)
        t = now_ms() - 2000
        out = self.ok(self.ingest([{"entity": "urn:ij:bus", "ts": t, "location": list(SHANYANG),
                                    "values": {"speed": 31.5}}]))
        self.assertEqual(out["accepted"], 2)
        e = self.entity("urn:ij:bus")
        at = self.locate(*SHANYANG)
        self.assertEqual(e["location"], list(SHANYANG))
        self.assertEqual((e["district"], e["grid"]), (at["district"]["code"], at["grid"]["code"]))
        listed = self.ok(self.get("/api/v1/entities?district=410811&type=Vehicle"))["entities"]
        self.assertIn("urn:ij:bus", [x["id"] for x in listed])
        self.ok(self.ingest([{"entity": "urn:ij:bus", "location": list(OUTSIDE)}]))
        e = self.entity("urn:ij:bus")
        self.assertIsNone(e["district"])
        self.assertIsNone(e["grid"])


class LineProtocol(CityServer):
    def test_precision_ms_and_s_and_default_ns(self):
        self.create("urn:lp:p")
        t = now_ms() - 30000
        self.ok(self.write(f"air,id=urn:lp:p a=1 {t}", precision="ms"))
        self.ok(self.write(f"air,id=urn:lp:p b=2i {t // 1000}", precision="s"))
        self.ok(self.write(f"air,id=urn:lp:p c=3u {t * 1000000}"))
        self.ok(self.write(f"air,id=urn:lp:p d=4 {t * 1000}", precision="us"))
        v = self.entity("urn:lp:p")["values"]
        self.assertEqual(v["a"], {"value": 1.0, "ts": rfc3339(t)})
        self.assertEqual(v["b"], {"value": 2.0, "ts": rfc3339(t // 1000 * 1000)})
        self.assertEqual(v["c"]["ts"], rfc3339(t))
        self.assertEqual(v["d"]["ts"], rfc3339(t))

    def test_value_types(self):
        self.create("urn:lp:types")
        self.ok(self.write('air,id=urn:lp:types f=1.5,i=-3i,b=true,s="hi there",t=F'))
        v = {k: x["value"] for k, x in self.entity("urn:lp:types")["values"].items()}
        self.assertEqual(v, {"f": 1.5, "i": -3, "b": True, "s": "hi there", "t": False})

    def test_bad_lines_reported_by_number_good_lines_kept(self):
        self.create("urn:lp:mix")
        t = now_ms()
        body = "\n".join([
            f"air,id=urn:lp:mix pm25=10 {t}",          # 1 good
            f"air pm25=11 {t}",                         # 2 no id tag
            "air,id=urn:lp:mix pm25=",                  # 3 syntax
            f"air,id=urn:lp:nobody pm25=12 {t}",       # 4 unknown entity
            "# a comment",                              # 5
            f"air,id=urn:lp:mix pm10=20,no2=3 {t}",    # 6 good
            f"air,id=urn:lp:mix x=1 {t + 3600 * 1000}",  # 7 future
        ])
        out = self.ok(self.write(body, precision="ms"))
        self.assertEqual(out["accepted"], 3, out)
        errs = {e["index"]: e for e in out["errors"]}
        self.assertEqual(sorted(errs), [2, 3, 4, 7], out)
        for line, e in errs.items():
            self.assertEqual(e["field"], f"line {line}")
        self.assertEqual(errs[2]["code"], "missing_field")
        self.assertIn("id", errs[2]["message"])
        self.assertEqual(errs[4]["code"], "not_found")
        self.assertIn("future", errs[7]["message"])
        v = self.entity("urn:lp:mix")["values"]
        self.assertEqual(sorted(v), ["no2", "pm10", "pm25"])
        self.assertEqual(v["pm25"]["value"], 10)

    def parsed_off_thread(self):
        metrics = self.get("/metrics").body
        m = re.search(r"^citybrain_ingest_parsed_off_thread_total (\d+)$", metrics, re.M)
        self.assertIsNotNone(m, metrics)
        return int(m.group(1))

    def test_large_bodies_are_parsed_by_a_worker_with_the_same_answers(self):
        # 64 KB and more go to a parse worker: the same report, line numbers and
        # rights as a small body, and the readings visible once answered.
        self.create("urn:lp:big")
        dev = self.create("urn:lp:bigdev", device=True)
        self.create("urn:lp:other")
        t = now_ms() - 4000 * 1000
        lines = [f"air,id=urn:lp:big pm25={i % 300}.5,seq={i}i {t + i * 1000}" for i in range(4000)]
        lines[9] = "air,id=urn:lp:big pm25="                 # line 10: syntax
        lines[1999] = f"air,id=urn:lp:nobody pm25=1 {t}"    # line 2000: unknown entity
        body = "\n".join(lines)
        self.assertGreater(len(body), 64 * 1024)
        before = self.parsed_off_thread()
        out = self.ok(self.write(body, precision="ms"))
        self.assertEqual(self.parsed_off_thread(), before + 1)
        self.assertEqual((out["accepted"], out["rejected"]), (2 * 3998, 2), out)
        self.assertEqual(sorted(e["index"] for e in out["errors"]), [10, 2000])
        v = self.entity("urn:lp:big")["values"]
        self.assertEqual(v["seq"]["value"], 3999)
        self.assertEqual(v["seq"]["ts"], rfc3339(t + 3999 * 1000))
        # A device's big body: only its own entity, as on the HTTP thread.
        dlines = [f"x,id=urn:lp:{'bigdev' if i % 2 else 'other'} u={i}i {t + i}" for i in range(4000)]
        out = self.ok(self.write("\n".join(dlines), precision="ms", key=dev["token"]))
        self.assertEqual((out["accepted"], out["rejected"]), (2000, 2000), out)
        self.assertEqual(out["errors"][0]["code"], "forbidden")
        self.assertNotIn("u", self.entity("urn:lp:other")["values"])
        # A big JSON body goes the same way.
        readings = [{"entity": "urn:lp:big", "ts": t + i, "values": {"j": i}} for i in range(3000)]
        out = self.ok(self.ingest(readings))
        self.assertEqual(out["accepted"], 3000)
        self.assertEqual(self.parsed_off_thread(), before + 3)
        self.assertEqual(self.entity("urn:lp:big")["values"]["j"]["value"], 2999)

    def test_entity_tag_alias_and_measurement_is_informational(self):
        self.create("urn:lp:alias")
        self.ok(self.write("anything,entity=urn:lp:alias,site=x v=7"))
        self.assertEqual(self.entity("urn:lp:alias")["values"]["v"]["value"], 7)

    def test_bad_precision_is_400_and_nothing_good_is_400(self):
        self.create("urn:lp:prec")
        self.assertError(self.write("air,id=urn:lp:prec a=1", precision="minutes"), 400, "invalid_field",
                         field="precision")
        self.assertNotIn("a", self.entity("urn:lp:prec")["values"])
        r = self.write("air pm25=1\nair,id=urn:lp:nobody x=1")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["field"], "line 1")


class DeviceTokens(CityServer):
    def test_device_writes_only_its_own_entity(self):
        dev = self.create("urn:dev:a", device=True)
        token = dev["token"]
        self.assertRegex(token, r"^cbd_")
        self.assertNotIn("token", self.entity("urn:dev:a"))
        self.create("urn:dev:b")
        self.assertEqual(self.ok(self.ingest([{"entity": "urn:dev:a", "values": {"t": 1}}], key=token))["accepted"], 1)
        self.assertEqual(self.ok(self.write("x,id=urn:dev:a u=2", key=token))["accepted"], 1)
        r = self.ingest([{"entity": "urn:dev:a", "values": {"t": 3}}, {"entity": "urn:dev:b", "values": {"t": 4}}],
                        key=token)
        out = self.ok(r)
        self.assertEqual((out["accepted"], out["rejected"]), (1, 1))
        self.assertEqual(out["errors"][0]["index"], 1)
        self.assertEqual(out["errors"][0]["code"], "forbidden")
        r = self.write("x,id=urn:dev:b u=2", key=token)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errors"][0]["code"], "forbidden")
        self.assertEqual(self.entity("urn:dev:b")["values"], {})
        self.assertEqual(self.entity("urn:dev:a")["values"]["t"]["value"], 3)
        # a device is not staff
        self.assertError(self.post("/api/v1/entities", {"id": "urn:dev:c", "type": "T"}, key=token), 403, "forbidden")

    def test_revoked_token_is_401_and_a_reissued_one_works(self):
        token = self.create("urn:dev:r", device=True)["token"]
        self.ok(self.ingest([{"entity": "urn:dev:r", "values": {"t": 1}}], key=token))
        self.ok(self.s.request("DELETE", "/api/v1/entities/urn:dev:r/token", key=self.admin))
        self.assertError(self.ingest([{"entity": "urn:dev:r", "values": {"t": 2}}], key=token), 401, "unauthorized")
        new = self.ok(self.post("/api/v1/entities/urn:dev:r/token", None), 201)["token"]
        self.assertNotEqual(new, token)
        self.ok(self.ingest([{"entity": "urn:dev:r", "values": {"t": 3}}], key=new))
        self.assertError(self.ingest([{"entity": "urn:dev:r", "values": {"t": 4}}], key=token), 401, "unauthorized")
        newer = self.ok(self.post("/api/v1/entities/urn:dev:r/token", None), 201)["token"]
        self.assertError(self.ingest([{"entity": "urn:dev:r", "values": {"t": 5}}], key=new), 401, "unauthorized")
        self.ok(self.ingest([{"entity": "urn:dev:r", "values": {"t": 6}}], key=newer))
        self.assertEqual(self.entity("urn:dev:r")["values"]["t"]["value"], 6)

    def test_forged_and_deleted_tokens_are_401(self):
        token = self.create("urn:dev:f", device=True)["token"]
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        self.assertError(self.ingest([], key=forged), 401, "unauthorized")
        self.ok(self.s.request("DELETE", "/api/v1/entities/urn:dev:f", key=self.admin))
        self.assertError(self.ingest([{"entity": "urn:dev:f", "values": {"t": 1}}], key=token), 401, "unauthorized")


class Queries(CityServer):
    """A small known city: 30 QSensor entities over three districts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.points = {"410802": JIEFANG, "410811": SHANYANG, "410823": WUZHI}
        items, readings = [], []
        cls.truth = {}
        t = now_ms() - 1000
        for i in range(30):
            d = list(cls.points)[i % 3]
            lon, lat = cls.points[d]
            loc = [round(lon + (i // 3) * 0.001, 6), round(lat + (i // 3) * 0.0005, 6)]
            eid = f"urn:q:{i:02d}"
            items.append({"id": eid, "type": "QSensor" if i % 5 else "QGauge", "location": loc})
            pm = float(i * 3 % 17)
            state = "alarm" if i % 4 == 0 else "normal"
            readings.append({"entity": eid, "ts": t, "values": {"pm25": pm, "state": state}})
            cls.truth[eid] = {"district": d, "loc": loc, "pm25": pm, "state": state,
                              "type": items[-1]["type"]}
        s = cls.server
        r = s.request("POST", "/api/v1/entities", {"entities": items}, key=cls.admin)
        assert r.status == 200 and r.json()["created"] == 30, r
        for v in cls.truth.values():  # the district as the locate endpoint sees it
            r = s.request("GET", "/api/v1/regions/locate" + qs(lon=v["loc"][0], lat=v["loc"][1]), key=cls.admin)
            v["district"] = r.json()["district"]["code"]
        r = s.request("POST", "/api/v1/ingest", {"readings": readings}, key=cls.admin)
        assert r.status == 200 and r.json()["accepted"] == 60, r

    def ids(self, **params):
        found, totals = self.list_all(**params)
        ids = [e["id"] for e in found]
        self.assertEqual(len(ids), len(set(ids)), "an entity came twice")
        self.assertTrue(all(t == len(ids) for t in totals), (totals, len(ids)))
        return set(i for i in ids if i.startswith("urn:q:"))

    def expect(self, pred):
        return {k for k, v in self.truth.items() if pred(v)}

    def test_type_district_grid(self):
        self.assertEqual(self.ids(type="QSensor"), self.expect(lambda v: v["type"] == "QSensor"))
        self.assertEqual(self.ids(type="QGauge"), self.expect(lambda v: v["type"] == "QGauge"))
        self.assertEqual(self.ids(district="410811"), self.expect(lambda v: v["district"] == "410811"))
        self.assertEqual(self.ids(type="QSensor", district="410823"),
                         self.expect(lambda v: v["type"] == "QSensor" and v["district"] == "410823"))
        e = self.entity("urn:q:00")
        same_grid = {k for k in self.truth if self.entity(k)["grid"] == e["grid"]}
        self.assertIn("urn:q:00", same_grid)
        self.assertEqual(self.ids(grid=e["grid"]), same_grid)
        self.assertEqual(self.ok(self.get("/api/v1/entities?type=NoSuchType"))["total"], 0)

    def test_bbox(self):
        lon, lat = JIEFANG
        box = (lon - 0.0001, lat - 0.0001, lon + 0.0035, lat + 0.0018)
        want = self.expect(lambda v: box[0] <= v["loc"][0] <= box[2] and box[1] <= v["loc"][1] <= box[3])
        self.assertEqual(len(want), 4)
        self.assertEqual(self.ids(bbox=",".join(map(str, box))), want)

    def test_near_is_sorted_by_distance(self):
        lon, lat = SHANYANG
        found, _ = self.list_all(near=f"{lon},{lat},5000", limit=4)
        found = [e for e in found if e["id"].startswith("urn:q:")]
        want = self.expect(lambda v: haversine_m(lon, lat, *v["loc"]) <= 5000)
        self.assertEqual({e["id"] for e in found}, want)
        self.assertGreater(len(want), 5)
        dists = [e["distance_m"] for e in found]
        self.assertEqual(dists, sorted(dists))
        self.assertEqual(found[0]["id"], "urn:q:01")
        self.assertLess(dists[0], 1)
        for e in found:
            self.assertAlmostEqual(e["distance_m"], haversine_m(lon, lat, *self.truth[e["id"]]["loc"]), delta=1)
        small = self.ok(self.get("/api/v1/entities" + qs(near=f"{lon},{lat},200")))["entities"]
        self.assertEqual({e["id"] for e in small}, self.expect(lambda v: haversine_m(lon, lat, *v["loc"]) <= 200))
        self.assertEqual({e["id"] for e in small}, {"urn:q:01", "urn:q:04"})

    def test_q_numbers_and_text(self):
        for op, f in (("=", lambda a, b: a == b), ("!=", lambda a, b: a != b), ("<", lambda a, b: a < b),
                      ("<=", lambda a, b: a <= b), (">", lambda a, b: a > b), (">=", lambda a, b: a >= b)):
            with self.subTest(op=op):
                self.assertEqual(self.ids(type="QSensor", q=f"pm25{op}8"),
                                 self.expect(lambda v: v["type"] == "QSensor" and f(v["pm25"], 8)))
        self.assertEqual(self.ids(q="state=alarm"), self.expect(lambda v: v["state"] == "alarm"))
        self.assertEqual(self.ids(q="state!=alarm;type=x", type="QSensor"), set())  # attr 'type' never sent
        self.assertEqual(self.ids(q="state=normal;pm25>=10"),
                         self.expect(lambda v: v["state"] == "normal" and v["pm25"] >= 10))
        self.assertEqual(self.ids(q="nosuchattr>1"), set())
        self.assertError(self.get("/api/v1/entities?q=state>alarm"), 400, "invalid_field", field="q")
        self.assertError(self.get("/api/v1/entities?q=pm25"), 400, "invalid_field", field="q")

    def test_paging_returns_each_entity_once(self):
        everyone = set(self.truth)
        for limit in (1, 7, 30, 1000):
            with self.subTest(limit=limit):
                self.assertEqual(self.ids(limit=limit, q="pm25>=0") & everyone, everyone)
        found, totals = self.list_all(limit=3, district="410811", type="QSensor")
        want = self.expect(lambda v: v["district"] == "410811" and v["type"] == "QSensor")
        self.assertEqual(sorted(e["id"] for e in found), sorted(want))
        self.assertEqual(totals, [len(want)] * ((len(want) + 2) // 3))

    def test_bad_filters_name_the_parameter(self):
        for params, field in (({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "x"}, "limit"),
                              ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "3,3,1,1"}, "bbox"),
                              ({"near": "113,35"}, "near"), ({"near": "113,35,0"}, "near"),
                              ({"district": "999999"}, "district"), ({"grid": "nope"}, "grid"),
                              ({"online": "maybe"}, "online"), ({"cursor": "garbage"}, "cursor")):
            with self.subTest(params=params):
                self.assertError(self.get("/api/v1/entities" + qs(**params)), 400, "invalid_field", field=field)

    def test_online_after_heartbeat(self):
        for i in range(4):
            self.create(f"urn:on:{i}", type="Blinker", loc=WUZHI)
        self.ok(self.s.request("PUT", "/api/v1/types/Blinker", {"heartbeat_s": 2}, key=self.admin))
        self.ok(self.s.request("PATCH", "/api/v1/entities/urn:on:3", {"heartbeat_s": 600}, key=self.admin))
        self.ok(self.ingest([{"entity": f"urn:on:{i}", "values": {"x": i}} for i in (0, 1, 3)]))
        self.assertEqual(self.ids(type="Blinker", online="true"), set())  # not urn:q
        on = {e["id"] for e in self.list_all(type="Blinker", online="true")[0]}
        off = {e["id"] for e in self.list_all(type="Blinker", online="false")[0]}
        self.assertEqual((on, off), ({"urn:on:0", "urn:on:1", "urn:on:3"}, {"urn:on:2"}))
        time.sleep(2.5)
        on = {e["id"] for e in self.list_all(type="Blinker", online="true")[0]}
        off = {e["id"] for e in self.list_all(type="Blinker", online="false")[0]}
        self.assertEqual((on, off), ({"urn:on:3"}, {"urn:on:0", "urn:on:1", "urn:on:2"}))
        self.assertFalse(self.entity("urn:on:0")["online"])
        stats = self.ok(self.get("/api/v1/entities/stats?by=type&type=Blinker"))["groups"]
        self.assertEqual([(g["type"], g["total"], g["online"]) for g in stats], [("Blinker", 4, 1)])

    def test_stats_by_type_and_district(self):
        body = self.ok(self.get("/api/v1/entities/stats?by=type,district&attr=pm25"))
        self.assertEqual(body["attr"], "pm25")
        groups = {(g["type"], g["district"]): g for g in body["groups"] if g["type"] in ("QSensor", "QGauge")}
        want = {}
        for v in self.truth.values():
            want.setdefault((v["type"], v["district"]), []).append(v["pm25"])
        self.assertEqual(set(groups), set(want))
        for k, vals in want.items():
            g = groups[k]
            self.assertEqual((g["total"], g["count"]), (len(vals), len(vals)), g)
            self.assertAlmostEqual(g["avg"], sum(vals) / len(vals), places=6)
            self.assertEqual((g["min"], g["max"]), (min(vals), max(vals)))
            self.assertEqual(g["online"], len(vals))
        body = self.ok(self.get("/api/v1/entities/stats?by=district&attr=pm25&type=QSensor"))
        for g in body["groups"]:
            vals = [v["pm25"] for v in self.truth.values() if v["type"] == "QSensor" and v["district"] == g["district"]]
            self.assertEqual(g["count"], len(vals))
            self.assertAlmostEqual(g["avg"], sum(vals) / len(vals), places=6)
        self.assertError(self.get("/api/v1/entities/stats?by=planet"), 400, "invalid_field", field="by")
        body = self.ok(self.get("/api/v1/entities/stats?by=type&attr=nosuch&type=QGauge"))
        self.assertEqual([(g["count"], g["avg"]) for g in body["groups"]], [(0, None)])


def entity_snapshot(server, key, ids):
    out = {}
    for eid in ids:
        r = server.request("GET", "/api/v1/entities/" + eid, key=key)
        assert r.status == 200, r
        e = r.json()
        out[eid] = (e["readings"], e["last_seen"], e["location"], e["district"], e["grid"],
                    json.dumps(e["values"], sort_keys=True))
    return out


class Persistence(ServerTestCase):
    def test_acknowledged_readings_survive_sigterm_and_kill_9(self):
        s = import_jiaozuo(Server("--checkpoint-interval", "1"))
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        s.start()
        key = s.key("admin")
        ids = [f"urn:p:{i}" for i in range(20)]
        r = s.request("POST", "/api/v1/entities",
                      {"entities": [{"id": i, "type": "Vehicle", "location": list(JIEFANG)} for i in ids]}, key=key)
        self.assertEqual(r.json()["created"], 20, r)

        def load(round_no):
            t = now_ms() - 100000 + round_no * 1000
            for b in range(5):
                readings = [{"entity": i, "ts": t + b, "values": {"seq": round_no * 10 + b, "note": f"r{round_no}"}}
                            for i in ids]
                readings.append({"entity": ids[b], "ts": t + b, "location": list(SHANYANG if b % 2 else WUZHI)})
                self.assertEqual(s.request("POST", "/api/v1/ingest", {"readings": readings}, key=key).status, 200)
                lp = "\n".join(f"v,id={i} lp={round_no}i,b={b} {t + b}" for i in ids)
                self.assertEqual(s.request("POST", "/api/v1/write?precision=ms", lp, key=key).status, 200)

        load(1)
        time.sleep(1.5)  # a checkpoint happens, then more readings only in the WAL
        load(2)
        before = entity_snapshot(s, key, ids)
        self.assertEqual(before["urn:p:0"][0], 2 * 5 * 4 + 2)
        self.assertEqual(s.stop(), 0)
        s.log.close()
        s.start()
        self.assertEqual(entity_snapshot(s, key, ids), before)
        load(3)
        before = entity_snapshot(s, key, ids)
        s.stop(signal.SIGKILL)
        s.log.close()
        s.start()
        self.assertEqual(entity_snapshot(s, key, ids), before)
        self.assertIn("event=replay", s.log_text())
        # entities created and deleted before a kill stay so
        s.request("DELETE", "/api/v1/entities/urn:p:19", key=key)
        s.stop(signal.SIGKILL)
        s.log.close()
        s.start()
        self.assertEqual(s.request("GET", "/api/v1/entities/urn:p:19", key=key).status, 404)
        self.assertEqual(entity_snapshot(s, key, ids[:19]), {k: v for k, v in before.items() if k != "urn:p:19"})


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class BackpressureAndMetrics(ServerTestCase):
    def test_full_queue_is_503_with_retry_after_and_memory_stays_bounded(self):
        s = import_jiaozuo(Server("--ingest-queue", "1000", "--max-batch-readings", "5000",
                                  "--wal-fsync", "always"), grid_m=0)
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        s.start()
        key = s.key("admin")
        ids = [f"urn:bp:{i}" for i in range(100)]
        s.request("POST", "/api/v1/entities", {"entities": [{"id": i, "type": "Flood"} for i in ids]}, key=key)
        body = json.dumps({"readings": [{"entity": i, "values": {"a": n, "b": n * 2, "c": n * 3}}
                                        for n in range(3) for i in ids]})  # 900 readings
        big = json.dumps({"readings": [{"entity": ids[0], "values": {f"k{j}": j for j in range(50)}}] * 101})
        self.assertError(s.request("POST", "/api/v1/ingest", big, key=key,
                                   headers={"Content-Type": "application/json"}), 413, "payload_too_large")
        statuses, bad, lock = {}, [], threading.Lock()
        accepted = [0]
        rss_peak = [0]
        stop_at = time.time() + 6

        def hammer():
            while time.time() < stop_at:
                try:
                    r = s.request("POST", "/api/v1/ingest", body, key=key,
                                  headers={"Content-Type": "application/json"})
                except OSError as e:
                    with lock:
                        bad.append(repr(e))
                    continue
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.status == 200:
                        accepted[0] += r.json()["accepted"]
                    elif r.status != 503 or r.headers.get("retry-after") != "1" or \
                            r.json()["error"]["code"] != "unavailable":
                        bad.append(r)

        def watch():
            while time.time() < stop_at:
                rss_peak[0] = max(rss_peak[0], rss_kb(s.proc.pid))
                time.sleep(0.1)

        base_rss = rss_kb(s.proc.pid)
        threads = [threading.Thread(target=hammer) for _ in range(8)] + [threading.Thread(target=watch)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(bad, [])
        self.assertIsNone(s.proc.poll(), "the server died")
        self.assertGreater(statuses.get(200, 0), 0, statuses)
        self.assertGreater(statuses.get(503, 0), 0, statuses)
        self.assertEqual(set(statuses), {200, 503}, statuses)
        self.assertLess(rss_peak[0] - base_rss, 150 * 1024, f"RSS grew from {base_rss} kB to {rss_peak[0]} kB")
        # what was acknowledged is what the server counted
        metrics = s.request("GET", "/metrics", key=key).body
        m = re.search(r'^citybrain_ingest_readings_total\{result="accepted"\} (\d+)$', metrics, re.M)
        self.assertIsNotNone(m, metrics)
        self.assertEqual(int(m.group(1)), accepted[0])
        m = re.search(r'^citybrain_ingest_batches_total\{result="refused_queue_full"\} (\d+)$', metrics, re.M)
        self.assertEqual(int(m.group(1)), statuses[503])
        m = re.search(r"^citybrain_entities (\d+)$", metrics, re.M)
        self.assertEqual(int(m.group(1)), 100)
        total = sum(s.request("GET", "/api/v1/entities/" + i, key=key).json()["readings"] for i in ids)
        self.assertEqual(total, accepted[0])

    def test_large_line_protocol_goes_in_parts_and_a_503_or_413_stores_nothing(self):
        # A big body goes to the writer in parts while it is parsed: a 200 has
        # stored all of it, a 503 (the queue was full at its first part) and a
        # 413 (too many readings, known before any part went) none of it.
        s = import_jiaozuo(Server("--ingest-queue", "1000", "--max-batch-readings", "20000",
                                  "--checkpoint-interval", "1"), grid_m=0)
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        s.start()
        key = s.key("admin")
        ids = [f"urn:parts:{i}" for i in range(100)]
        s.request("POST", "/api/v1/entities", {"entities": [{"id": i, "type": "Flood"} for i in ids]}, key=key)
        t0 = now_ms() - 3600 * 1000

        def body(k, fields=1, lines=6000):
            vals = ",".join(f"f{j}={k}.{j}" for j in range(fields))
            return "\n".join(f"flood,id={ids[i % 100]} {vals} {t0 + k * 10000 + i}" for i in range(lines)).encode()

        def metric(name):
            m = re.search(r"^" + re.escape(name) + r" (\S+)$", s.request("GET", "/metrics", key=key).body, re.M)
            self.assertIsNotNone(m, name)
            return float(m.group(1))

        committed = 'citybrain_ingest_batches_total{result="committed"}'
        before = metric(committed)
        out = s.request("POST", "/api/v1/write?precision=ms", body(0), key=key).json()
        self.assertEqual((out["accepted"], out["rejected"]), (6000, 0), out)
        self.assertGreaterEqual(metric(committed) - before, 3)  # 2,048 + 2,048 + the rest, at least
        r = s.request("POST", "/api/v1/write?precision=ms", body(1, fields=3, lines=7000), key=key)
        self.assertError(r, 413, "payload_too_large")
        statuses, bad, lock = {}, [], threading.Lock()
        accepted = [6000]

        def post(k):
            r = s.request("POST", "/api/v1/write?precision=ms", body(k), key=key)
            with lock:
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status == 200 and r.json()["accepted"] == 6000:
                    accepted[0] += 6000
                elif r.status != 503 or r.headers.get("retry-after") != "1":
                    bad.append((r.status, r.body[:200]))

        for k in range(2, 18, 8):
            threads = [threading.Thread(target=post, args=(k + j,)) for j in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(bad, [])
        self.assertGreater(statuses.get(200, 0), 0, statuses)
        total = sum(s.request("GET", "/api/v1/entities/" + i, key=key).json()["readings"] for i in ids)
        self.assertEqual(total, accepted[0], statuses)
        # the checkpoints stored them off the writer thread; a restart finds the same counts
        deadline = time.time() + 10
        while metric("citybrain_checkpoint_stored_entities_total") < 100 and time.time() < deadline:
            time.sleep(0.1)
        self.assertGreaterEqual(metric("citybrain_checkpoint_stored_entities_total"), 100)
        s.stop()
        s.start()
        total = sum(s.request("GET", "/api/v1/entities/" + i, key=key).json()["readings"] for i in ids)
        self.assertEqual(total, accepted[0])

    def test_metrics_count_readings_and_entities(self):
        s = self.start_server()
        key = s.key("admin")
        metrics = s.request("GET", "/metrics", key=key).body
        self.assertRegex(metrics, r'(?m)^citybrain_ingest_readings_total\{result="accepted"\} 0$')
        self.assertRegex(metrics, r"(?m)^citybrain_entities 0$")
        s.request("POST", "/api/v1/entities", {"id": "urn:m:1", "type": "T"}, key=key)
        s.request("POST", "/api/v1/ingest", {"readings": [{"entity": "urn:m:1", "values": {"a": 1, "b": 2}},
                                                          {"entity": "urn:m:2", "values": {"a": 1}}]}, key=key)
        metrics = s.request("GET", "/metrics", key=key).body
        self.assertRegex(metrics, r'(?m)^citybrain_ingest_readings_total\{result="accepted"\} 2$')
        self.assertRegex(metrics, r'(?m)^citybrain_ingest_readings_total\{result="rejected"\} 1$')
        self.assertRegex(metrics, r"(?m)^citybrain_entities 1$")


if __name__ == "__main__":
    unittest.main()
