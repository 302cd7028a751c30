"""Open311 GeoReport v2 at /open311/v2/ over real HTTP: discovery, services
and service definitions in JSON and XML, POST requests with an api_key
(form-encoded), the standard's errors, GET requests with its filters and
the 90-day default window, one request with agency_responsible and
expected_datetime once dispatched, tokens, and 404s. Reporter names, phones
and e-mail addresses never appear in an answer."""
import datetime
import json
import os
import sqlite3
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

from harness import REPO, ServerTestCase

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NAME_FIRST, NAME_LAST, PHONE, EMAIL = "小明", "王", "13912345678", "wxm@example.org"


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Open311Test(ServerTestCase):
    def setUp(self):
        self.s = self.start_server("--city-dir", os.path.join(REPO, "city"))
        self.admin = self.s.key("admin")
        self.viewer = self.s.key("viewer")

    # --- helpers ---

    def get(self, path):
        return self.s.request("GET", "/open311/v2/" + path)

    def post(self, fields, fmt="json"):
        body = urllib.parse.urlencode(fields)
        return self.s.request("POST", "/open311/v2/requests." + fmt, body=body, headers=FORM)

    def report(self, key=None, **extra):
        fields = {"api_key": key or self.viewer, "service_code": "01001", "lat": "35.2403", "long": "113.2308",
                  "description": "井盖不见了", "attribute[condition]": "missing", "first_name": NAME_FIRST,
                  "last_name": NAME_LAST, "phone": PHONE, "email": EMAIL, "device_id": "dev-1",
                  "account_id": "acct-9"}
        fields.update(extra)
        r = self.post(fields)
        self.assertEqual(r.status, 201, r)
        return r

    def assertOpen311Error(self, r, status, contains=None):
        self.assertEqual(r.status, status, r)
        if r.headers.get("content-type", "").startswith("text/xml"):
            root = ET.fromstring(r.body)
            self.assertEqual(root.tag, "errors")
            self.assertEqual(root.find("error/code").text, str(status))
            desc = root.find("error/description").text
        else:
            body = r.json()
            self.assertIsInstance(body, list)
            self.assertEqual(body[0]["code"], status, r)
            desc = body[0]["description"]
        self.assertTrue(desc)
        if contains:
            self.assertIn(contains, desc)

    def assertPrivate(self, text):
        for secret in (NAME_FIRST, NAME_LAST + NAME_FIRST, PHONE, PHONE[-4:] + "\"", EMAIL, "138****", "139****"):
            self.assertNotIn(secret, text)

    def act(self, case_id, action, body=None):
        r = self.s.request("POST", f"/api/v1/cases/{case_id}/{action}", body=body or {}, key=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()

    # --- discovery and services ---

    def test_discovery_json_and_xml(self):
        d = self.get("discovery.json").json()
        ep = d["endpoints"][0]
        self.assertEqual(ep["specification"], "http://wiki.open311.org/GeoReport_v2")
        self.assertEqual(ep["url"], f"http://127.0.0.1:{self.s.port}/open311/v2")
        self.assertEqual(sorted(ep["formats"]), ["application/json", "text/xml"])
        r = self.get("discovery.xml")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/xml"))
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "discovery")
        self.assertEqual([f.text for f in root.findall("endpoints/endpoint/formats/format")],
                         ["text/xml", "application/json"])

    def test_services_both_formats(self):
        services = self.get("services.json").json()
        by_code = {s["service_code"]: s for s in services}
        self.assertGreater(len(services), 50)
        m = by_code["01001"]
        self.assertEqual(m["service_name"], "上水井盖")
        self.assertEqual(m["group"], "市政公用设施")
        self.assertEqual(m["type"], "realtime")
        self.assertIs(m["metadata"], True)          # components ask for their condition
        self.assertIn("2 小时", m["description"])
        self.assertIs(by_code["06002"]["metadata"], False)  # a matter asks nothing more
        root = ET.fromstring(self.get("services.xml").body)
        self.assertEqual(root.tag, "services")
        xml_codes = [s.find("service_code").text for s in root.findall("service")]
        self.assertEqual(xml_codes, [s["service_code"] for s in services])
        first = root.find("service")
        self.assertEqual(first.find("metadata").text, "true")
        self.assertEqual(first.find("group").text, services[0]["group"])

    def test_service_definition(self):
        d = self.get("services/01001.json").json()
        self.assertEqual(d["service_code"], "01001")
        a = d["attributes"][0]
        self.assertEqual((a["code"], a["datatype"], a["required"], a["variable"], a["order"]),
                         ("condition", "singlevaluelist", True, True, 1))
        self.assertIn({"key": "missing", "name": "丢失"}, a["values"])
        self.assertEqual(self.get("services/06002.json").json()["attributes"], [])
        root = ET.fromstring(self.get("services/01001.xml").body)
        self.assertEqual(root.tag, "service_definition")
        keys = [v.find("key").text for v in root.findall("attributes/attribute/values/value")]
        self.assertIn("missing", keys)
        self.assertOpen311Error(self.get("services/99999.json"), 404, "99999")
        self.assertOpen311Error(self.get("services/99999.xml"), 404)

    # --- POST requests ---

    def test_post_with_a_valid_key(self):
        r = self.report()
        body = r.json()
        self.assertEqual(len(body), 1)
        rid = body[0]["service_request_id"]
        self.assertRegex(rid, r"^C\d{8}-\d{6}$")
        self.assertIn(rid, body[0]["service_notice"])
        self.assertEqual(body[0]["account_id"], "acct-9")
        self.assertPrivate(r.body)
        # the case behind it: channel citizen, the reporter kept (masked to staff), the attribute in the text
        case = self.s.request("GET", f"/api/v1/cases/{rid}", key=self.admin).json()
        self.assertEqual(case["channel"], "citizen")
        self.assertEqual(case["category"], "01001")
        self.assertEqual(case["status"], "reported")
        self.assertIn("丢失", case["description"])
        self.assertEqual(case["reporter"]["phone"], PHONE)  # admin sees it whole
        # XML variant
        r = self.post({"api_key": self.viewer, "service_code": "06002", "address_string": "解放区民主路 12 号"}, "xml")
        self.assertEqual(r.status, 201, r)
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "service_requests")
        self.assertRegex(root.find("request/service_request_id").text, r"^C\d{8}-\d{6}$")

    def test_post_with_a_bad_key(self):
        fields = {"service_code": "06002", "address_string": "民主路"}
        self.assertOpen311Error(self.post({**fields, "api_key": "cb_000000000000_nope"}), 403, "api_key")
        self.assertOpen311Error(self.post(fields), 403, "api_key")
        self.assertOpen311Error(self.post({**fields, "api_key": "cbd_00000001_x"}), 403)  # a device token is no key
        self.assertOpen311Error(self.post({**fields, "api_key": "bad"}, "xml"), 403)
        # a revoked key stops working at once
        kid = self.s.request("GET", "/api/v1/keys", key=self.admin).json()
        kid = [k for k in (kid["keys"] if isinstance(kid, dict) else kid) if k["role"] == "viewer"][0]["id"]
        self.assertEqual(self.s.request("DELETE", f"/api/v1/keys/{kid}", key=self.admin).status, 200)
        self.assertOpen311Error(self.post({**fields, "api_key": self.viewer}), 403)

    def test_post_field_errors(self):
        k = self.viewer
        self.assertOpen311Error(self.post({"api_key": k, "lat": "35.2", "long": "113.2"}), 400, "service_code")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "99999", "lat": "35.2", "long": "113.2"}),
                                400, "99999")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "06002"}), 400, "lat")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "06002", "lat": "95", "long": "113"}), 400,
                                "lat")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "06002", "lat": "35.2"}), 400, "long")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "01001", "lat": "35.2", "long": "113.2"}),
                                400, "attribute[condition]")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "01001", "lat": "35.2", "long": "113.2",
                                           "attribute[condition]": "on fire"}), 400, "attribute[condition]")
        self.assertOpen311Error(self.post({"api_key": k, "service_code": "06002", "address_string": "x",
                                           "media_url": "http://evil.example/x.jpg"}), 400, "media_url")
        r = self.s.request("POST", "/open311/v2/requests.json", body="api_key=%ZZ", headers=FORM)
        self.assertOpen311Error(r, 400)
        r = self.s.request("POST", "/open311/v2/requests.json", body='{"service_code": "06002"}',
                           headers={"Content-Type": "application/json"})
        self.assertOpen311Error(r, 415)
        self.assertOpen311Error(self.s.request("POST", "/open311/v2/services.json", body="", headers=FORM), 405)

    def test_post_with_a_photo(self):
        r = self.s.request("POST", "/api/v1/media", body=b"\xff\xd8\xff\xe0" + os.urandom(64),
                           headers={"Content-Type": "image/jpeg"})
        self.assertEqual(r.status, 201, r)
        url = r.json()["url"]
        rid = self.report(media_url=f"http://127.0.0.1:{self.s.port}{url}").json()[0]["service_request_id"]
        req = self.get(f"requests/{rid}.json").json()[0]
        self.assertEqual(req["media_url"], url)

    # --- GET requests ---

    def test_request_fields_and_dispatch(self):
        rid = self.report().json()[0]["service_request_id"]
        r = self.get(f"requests/{rid}.json")
        self.assertEqual(r.status, 200, r)
        self.assertPrivate(r.body)
        req = r.json()[0]
        self.assertEqual(req["service_request_id"], rid)
        self.assertEqual(req["status"], "open")
        self.assertEqual(req["service_code"], "01001")
        self.assertEqual(req["service_name"], "上水井盖")
        self.assertAlmostEqual(req["lat"], 35.2403)
        self.assertAlmostEqual(req["long"], 113.2308)
        self.assertIsNone(req["agency_responsible"])  # not dispatched yet
        self.assertIsNone(req["expected_datetime"])
        self.assertLess(abs(parse_time(req["requested_datetime"]) - time.time()), 60)
        self.assertTrue(req["status_notes"])
        # accepted and filed by the operations centre: routing sends 01001 to the water company, 2 h natural time
        self.act(rid, "accept")
        t0 = time.time()
        case = self.act(rid, "file")
        self.assertEqual(case["status"], "dispatched", case)
        req = self.get(f"requests/{rid}.json").json()[0]
        self.assertEqual(req["agency_responsible"], "焦作市供水公司")
        self.assertEqual(req["status"], "open")
        self.assertLess(abs(parse_time(req["expected_datetime"]) - (t0 + 2 * 3600)), 60)
        self.assertGreaterEqual(parse_time(req["updated_datetime"]), parse_time(req["requested_datetime"]))
        root = ET.fromstring(self.get(f"requests/{rid}.xml").body)
        self.assertEqual(root.tag, "service_requests")
        self.assertEqual(root.find("request/agency_responsible").text, "焦作市供水公司")
        self.assertEqual(root.find("request/expected_datetime").text, req["expected_datetime"])
        self.assertEqual(root.find("request/long").text[:6], "113.23")
        self.assertPrivate(self.get(f"requests/{rid}.xml").body)
        # handled, checked, closed: status closed
        for action, body in (("start", None), ("handle", {"note": "已盖好"}), ("check", {"passed": True}),
                             ("close", None)):
            self.act(rid, action, body)
        self.assertEqual(self.get(f"requests/{rid}.json").json()[0]["status"], "closed")

    def test_request_filters(self):
        a = self.report().json()[0]["service_request_id"]
        b = self.report(service_code="06002", **{"attribute[condition]": ""}).json()[0]["service_request_id"]
        c = self.report(service_code="06003", lat="35.30", long="113.10").json()[0]["service_request_id"]
        self.act(c, "reject", {"note": "不属实"})
        ids = lambda q: [r["service_request_id"] for r in self.get("requests.json" + q).json()]
        self.assertEqual(ids(""), [c, b, a])  # newest first
        self.assertEqual(ids("?status=open"), [b, a])
        self.assertEqual(ids("?status=closed"), [c])
        self.assertEqual(ids("?status=open,closed"), [c, b, a])
        self.assertEqual(ids("?service_code=06002"), [b])
        self.assertEqual(ids("?service_code=06002,01001"), [b, a])
        self.assertEqual(sorted(ids(f"?service_request_id={a},{c}")), sorted([a, c]))
        self.assertEqual(ids(f"?service_request_id={a}&status=closed"), [a])  # ids override the other filters
        root = ET.fromstring(self.get("requests.xml?status=closed").body)
        self.assertEqual([r.find("service_request_id").text for r in root.findall("request")], [c])
        self.assertEqual(root.find("request/status").text, "closed")
        # the 90-day default: a request from 100 days ago is outside it, inside an explicit window
        old_ms = int((time.time() - 100 * 86400) * 1000)
        db = sqlite3.connect(os.path.join(self.s.data_dir, "citybrain.db"), timeout=10)
        db.execute("UPDATE cases SET created_at = ? WHERE id = ?", (old_ms, a))
        db.commit()
        db.close()
        self.assertEqual(ids(""), [c, b])
        start = datetime.datetime.fromtimestamp(int(time.time() - 120 * 86400), datetime.timezone.utc)
        end = datetime.datetime.fromtimestamp(int(time.time() - 40 * 86400), datetime.timezone.utc)
        q = "?" + urllib.parse.urlencode({"start_date": start.isoformat(), "end_date": end.isoformat()})
        self.assertEqual(ids(q), [a])
        q = "?" + urllib.parse.urlencode({"start_date": start.isoformat()})  # start + 90 days
        self.assertEqual(ids(q), [a])
        # errors: a span over 90 days, bad dates, a bad status
        wide = "?" + urllib.parse.urlencode({"start_date": start.isoformat(),
                                             "end_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        self.assertOpen311Error(self.get("requests.json" + wide), 400, "90 days")
        self.assertOpen311Error(self.get("requests.json?start_date=yesterday"), 400, "start_date")
        self.assertOpen311Error(self.get("requests.json?status=pending"), 400, "status")
        self.assertOpen311Error(self.get("requests.xml?status=pending"), 400)

    def test_list_is_capped(self):
        # 1000 at most: insert 1005 rows straight into the table
        db = sqlite3.connect(os.path.join(self.s.data_dir, "citybrain.db"), timeout=10)
        now = int(time.time() * 1000)
        db.executemany("INSERT INTO cases (id, status, category, channel, priority, reported_by, created_at, "
                       "updated_at) VALUES (?, 'reported', '06002', 'citizen', 'normal', 'k', ?, ?)",
                       [(f"C20990101-{i:06d}", now - i, now - i) for i in range(1005)])
        db.commit()
        db.close()
        self.assertEqual(len(self.get("requests.json").json()), 1000)

    def test_tokens_and_404s(self):
        rid = self.report().json()[0]["service_request_id"]
        t = self.get(f"tokens/{rid}.json").json()
        self.assertEqual(t, [{"service_request_id": rid, "token": rid}])
        root = ET.fromstring(self.get(f"tokens/{rid}.xml").body)
        self.assertEqual(root.find("request/token").text, rid)
        self.assertOpen311Error(self.get("tokens/T-nope.json"), 404)
        self.assertOpen311Error(self.get("requests/C20000101-000001.json"), 404, "C20000101-000001")
        self.assertOpen311Error(self.get("requests/C20000101-000001.xml"), 404)
        self.assertOpen311Error(self.get(f"requests/{rid}.txt"), 404)
        self.assertOpen311Error(self.get(f"requests/{rid}"), 404)
        self.assertOpen311Error(self.get("nothing.json"), 404)
        self.assertOpen311Error(self.get("services"), 404)


if __name__ == "__main__":
    unittest.main()
