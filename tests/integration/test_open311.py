"""Open311 GeoReport v2 at /open311/v2/ over real HTTP: discovery, services
and service definitions in JSON and XML, POST requests with an api_key
(form-encoded, api_key in the body; a citizen app's key only, never a
staff key: requests are public), the standard's errors, GET requests with
its filters and the 90-day default window (citizens' reports only), one
request with agency_responsible and expected_datetime once dispatched,
tokens, 404s, and the rating extension with the access_token a POST
returns. Reporter names, phones and e-mail addresses never appear in an
answer; the citizen role reads nothing but what citizens may."""
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
        self.citizen = self.s.key("citizen", "--name", "市民端")

    # --- helpers ---

    def get(self, path):
        return self.s.request("GET", "/open311/v2/" + path)

    def post(self, fields, fmt="json"):
        body = urllib.parse.urlencode(fields)
        return self.s.request("POST", "/open311/v2/requests." + fmt, body=body, headers=FORM)

    def report(self, key=None, **extra):
        fields = {"api_key": key or self.citizen, "service_code": "01001", "lat": "35.2403", "long": "113.2308",
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
        self.assertRegex(body[0]["access_token"], r"^cbf_[0-9a-f]{32}$")
        self.assertPrivate(r.body)
        # the case behind it: channel citizen, the reporter kept (masked to staff), the attribute in the text
        case = self.s.request("GET", f"/api/v1/cases/{rid}", key=self.admin).json()
        self.assertEqual(case["channel"], "citizen")
        self.assertEqual(case["category"], "01001")
        self.assertEqual(case["status"], "reported")
        self.assertIn("丢失", case["description"])
        self.assertEqual(case["reporter"]["phone"], PHONE)  # admin sees it whole
        first = case["history"][0]
        self.assertEqual((first["action"], first["role"]), ("report", "citizen"))
        # only the hash of the access token is stored
        db = sqlite3.connect(os.path.join(self.s.data_dir, "citybrain.db"), timeout=10)
        (stored,) = db.execute("SELECT follow_hash FROM cases WHERE id = ?", (rid,)).fetchone()
        db.close()
        self.assertEqual(len(stored), 32)
        self.assertNotIn(body[0]["access_token"].encode(), stored)
        # XML variant
        r = self.post({"api_key": self.citizen, "service_code": "06002", "address_string": "解放区民主路 12 号"}, "xml")
        self.assertEqual(r.status, 201, r)
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "service_requests")
        self.assertRegex(root.find("request/service_request_id").text, r"^C\d{8}-\d{6}$")
        self.assertRegex(root.find("request/access_token").text, r"^cbf_[0-9a-f]{32}$")

    def test_which_keys_may_post(self):
        fields = {"service_code": "06002", "address_string": "民主路"}
        r = self.post({**fields, "api_key": self.citizen})
        self.assertEqual(r.status, 201, r)
        case = self.s.request("GET", f"/api/v1/cases/{r.json()[0]['service_request_id']}", key=self.admin).json()
        self.assertEqual((case["channel"], case["history"][0]["role"]), ("citizen", "citizen"))
        # staff report through /api/v1/cases: what a 12345 operator types about a caller never becomes public
        for role, extra in (("admin", ()), ("operator", ()), ("hotline", ()), ("viewer", ()),
                            ("grid", ("--department", "410802")), ("dept", ("--department", "szgy"))):
            key = self.admin if role == "admin" else self.s.key(role, *extra)
            self.assertOpen311Error(self.post({**fields, "api_key": key}), 403, role)
        self.assertOpen311Error(self.post({**fields, "api_key": self.viewer}, "xml"), 403)
        self.assertEqual(self.get("requests.json").json(), [self.get(f"requests/{case['id']}.json").json()[0]])
        # the api_key is read from the body only: a URL (which proxies log) carries no secret
        r = self.s.request("POST", "/open311/v2/requests.json?" + urllib.parse.urlencode({"api_key": self.citizen}),
                           body=urllib.parse.urlencode(fields), headers=FORM)
        self.assertOpen311Error(r, 403, "api_key is required")

    def test_post_with_a_bad_key(self):
        fields = {"service_code": "06002", "address_string": "民主路"}
        self.assertOpen311Error(self.post({**fields, "api_key": "cb_000000000000_nope"}), 403, "api_key")
        self.assertOpen311Error(self.post(fields), 403, "api_key")
        self.assertOpen311Error(self.post({**fields, "api_key": "cbd_00000001_x"}), 403)  # a device token is no key
        self.assertOpen311Error(self.post({**fields, "api_key": "bad"}, "xml"), 403)
        # a revoked key stops working at once
        self.assertEqual(self.post({**fields, "api_key": self.citizen}).status, 201)
        kid = self.s.request("GET", "/api/v1/keys", key=self.admin).json()
        kid = [k for k in (kid["keys"] if isinstance(kid, dict) else kid) if k["role"] == "citizen"][0]["id"]
        self.assertEqual(self.s.request("DELETE", f"/api/v1/keys/{kid}", key=self.admin).status, 200)
        self.assertOpen311Error(self.post({**fields, "api_key": self.citizen}), 403)

    def test_post_field_errors(self):
        k = self.citizen
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
        photo = b"\xff\xd8\xff\xe0" + os.urandom(64)
        r = self.s.request("POST", "/api/v1/media", body=photo, headers={"Content-Type": "image/jpeg"})
        self.assertError(r, 401, "unauthorized")  # uploading needs a key: a citizen app's or staff's
        r = self.s.request("POST", "/api/v1/media", body=photo, headers={"Content-Type": "image/jpeg"},
                           key=self.viewer)
        self.assertError(r, 403, "forbidden")
        r = self.s.request("POST", "/api/v1/media", body=photo, headers={"Content-Type": "image/jpeg"},
                           key=self.citizen)
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


    # --- public reads show citizens' reports only ---

    def test_reads_show_citizens_reports_only(self):
        hotline, grid = self.s.key("hotline"), self.s.key("grid", "--department", "410802")
        rid = self.report().json()[0]["service_request_id"]
        others = []
        for key, channel in ((hotline, "hotline"), (grid, "grid")):
            r = self.s.request("POST", "/api/v1/cases", key=key, body={
                "channel": channel, "category": "06002", "description": f"{channel}: 王小明来电，家门口堆物",
                "lon": 113.25, "lat": 35.25, "reporter": {"name": "王小明", "phone": PHONE}})
            self.assertEqual(r.status, 201, r)
            others.append(r.json()["id"])
        listed = self.get("requests.json")
        self.assertEqual([x["service_request_id"] for x in listed.json()], [rid])
        self.assertNotIn("王小明来电", listed.body)
        for oid in others:
            self.assertOpen311Error(self.get(f"requests/{oid}.json"), 404, oid)
            self.assertOpen311Error(self.get(f"tokens/{oid}.json"), 404)
            self.assertEqual(self.get(f"requests.json?service_request_id={oid},{rid}").json()[0]["service_request_id"],
                             rid)
            self.assertNotIn(oid, self.get("requests.xml").body)

    # --- the rating extension ---

    def rate(self, rid, fmt="json", **fields):
        body = urllib.parse.urlencode(fields)
        return self.s.request("POST", f"/open311/v2/requests/{rid}/rating.{fmt}", body=body, headers=FORM)

    def close(self, rid):
        self.act(rid, "accept")
        if self.act(rid, "file")["status"] == "filed":
            self.act(rid, "dispatch")
        for action, body in (("start", None), ("handle", {"note": "已处理"}), ("check", {"passed": True}),
                             ("close", None)):
            self.act(rid, action, body)

    def case(self, rid):
        return self.s.request("GET", f"/api/v1/cases/{rid}", key=self.admin).json()

    def test_rating_with_the_access_token(self):
        reply = self.report().json()[0]
        rid, token = reply["service_request_id"], reply["access_token"]
        other = self.report(service_code="06002", lat="35.30", long="113.10").json()[0]
        # before closure: the state is refused, but only after the token
        self.assertOpen311Error(self.rate(rid, access_token=token, rating="满意"), 409, "not closed yet")
        self.assertOpen311Error(self.rate(rid, access_token="cbf_" + "0" * 32, rating="满意"), 403, "access_token")
        self.close(rid)
        # wrong, missing, another request's token, an unknown request: 403 alike, nothing changes
        self.assertOpen311Error(self.rate(rid, access_token="cbf_" + "0" * 32, rating="满意"), 403, "access_token")
        self.assertOpen311Error(self.rate(rid, access_token=token[:-1], rating="满意"), 403)
        self.assertOpen311Error(self.rate(rid, rating="满意"), 403, "access_token is required")
        r = self.s.request("POST", f"/open311/v2/requests/{rid}/rating.json?access_token={token}",
                           body=urllib.parse.urlencode({"rating": "满意"}), headers=FORM)
        self.assertOpen311Error(r, 403, "access_token is required")  # from the body only, never the URL
        self.assertOpen311Error(self.rate(rid, access_token=other["access_token"], rating="满意"), 403)
        self.assertOpen311Error(self.rate("C20000101-000001", access_token=token, rating="满意"), 403)
        self.assertOpen311Error(self.rate(rid, "xml", access_token="nope", rating="满意"), 403)
        self.assertEqual(self.case(rid)["status"], "closed")
        # bad requests
        self.assertOpen311Error(self.rate(rid, access_token=token, rating="很好"), 400, "rating")
        self.assertOpen311Error(self.rate(rid, access_token=token), 400, "rating")
        self.assertOpen311Error(self.rate(rid, access_token=token, rating="满意", comment="长" * 200), 400, "comment")
        self.assertOpen311Error(self.s.request("POST", f"/open311/v2/requests/{rid}/stars.json", body="", headers=FORM),
                                404)
        # the rating: the workflow's evaluate, by the citizen
        r = self.rate(rid, access_token=token, rating="满意", comment="处理很快，谢谢")
        self.assertEqual(r.status, 200, r)
        req = r.json()[0]
        self.assertEqual((req["service_request_id"], req["status"], req["status_notes"]), (rid, "closed", "已评价"))
        case = self.case(rid)
        self.assertEqual((case["status"], case["rating"]), ("evaluated", "满意"))
        last = case["history"][-1]
        self.assertEqual((last["action"], last["by"], last["role"], last["note"]),
                         ("evaluate", "citizen", "citizen", "处理很快，谢谢"))
        # once: a second rating is refused and changes nothing
        self.assertOpen311Error(self.rate(rid, access_token=token, rating="不满意"), 409, "rated already")
        self.assertOpen311Error(self.rate(rid, "xml", access_token=token, rating="不满意"), 409)
        self.assertEqual(self.case(rid)["rating"], "满意")
        # a staff case has no token: nothing rates it
        hot = self.s.request("POST", "/api/v1/cases", key=self.admin, body={
            "channel": "hotline", "category": "06002", "description": "x", "lon": 113.4, "lat": 35.2}).json()["id"]
        self.assertOpen311Error(self.rate(hot, access_token=token, rating="不满意"), 403)

    def test_unsatisfied_reopens_as_rework(self):
        reply = self.report().json()[0]
        rid, token = reply["service_request_id"], reply["access_token"]
        self.close(rid)
        r = self.rate(rid, "xml", access_token=token, rating="不满意", comment="井盖还是松的")
        self.assertEqual(r.status, 200, r)
        root = ET.fromstring(r.body)
        self.assertEqual((root.find("request/status").text, root.find("request/status_notes").text), ("open", "返工"))
        case = self.case(rid)
        self.assertEqual((case["status"], case["rating"]), ("rework", "不满意"))
        # the citizen rated; the reopen is the system's doing, not the citizen's
        self.assertEqual([(h["action"], h["by"], h["role"]) for h in case["history"][-2:]],
                         [("evaluate", "citizen", "citizen"), ("reopen", "system", "system")])
        self.assertOpen311Error(self.rate(rid, access_token=token, rating="满意"), 409, "not closed yet")
        # reworked and closed again: the citizen rates the new outcome
        for action, body in (("start", None), ("handle", {"note": "已加固"}), ("check", {"passed": True}),
                             ("close", None)):
            self.act(rid, action, body)
        self.assertEqual(self.rate(rid, access_token=token, rating="基本满意").status, 200)
        self.assertEqual(self.case(rid)["rating"], "基本满意")

    def test_rating_a_merged_duplicate(self):
        first = self.report().json()[0]["service_request_id"]
        dup = self.report().json()[0]  # same place and service: linked to the first
        self.assertIn(first, dup["service_notice"])
        self.assertOpen311Error(self.rate(dup["service_request_id"], access_token=dup["access_token"], rating="满意"),
                                409, "merged into " + first)

    # --- the citizen role ---

    def test_a_citizen_key_reads_nothing_but_what_citizens_may(self):
        rid = self.report().json()[0]["service_request_id"]
        k = self.citizen
        for method, path, body in (
                ("GET", "/api/v1/cases", None), ("GET", f"/api/v1/cases/{rid}", None),
                ("GET", "/api/v1/cases/stats", None), ("POST", "/api/v1/cases", {"channel": "citizen"}),
                ("POST", f"/api/v1/cases/{rid}/accept", {}), ("POST", f"/api/v1/cases/{rid}/evaluate", {"rating": "满意"}),
                ("GET", "/api/v1/kpis", None), ("GET", "/api/v1/rules", None), ("GET", "/api/v1/alarms", None),
                ("GET", "/api/v1/alarms/stats", None), ("GET", "/api/v1/supervisions", None),
                ("GET", "/api/v1/entities", None), ("GET", "/api/v1/entities/stats", None),
                ("GET", "/api/v1/series/aggregate?attr=aqi", None), ("GET", "/api/v1/stream", None),
                ("GET", "/api/v1/keys", None), ("GET", "/api/v1/whoami", None), ("GET", "/metrics", None),
                ("GET", "/api/v1/regions", None), ("POST", "/api/v1/ingest", {"readings": []})):
            self.assertError(self.s.request(method, path, body=body, key=k), 403, "forbidden")
        # what it may: nearby services (no device ids), photos, Open311
        r = self.s.request("GET", "/api/v1/nearby?lon=113.2308&lat=35.2403", key=k)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["parking"], {"radius_m": 1000, "total": 0, "free": 0})
        self.assertIsNone(r.json()["air"])
        self.assertError(self.s.request("GET", "/api/v1/nearby?lon=113.2", key=k), 400, "missing_field", "lat")
        self.assertError(self.s.request("GET", "/api/v1/nearby?lon=200&lat=35", key=k), 400, "invalid_field", "lon")
        self.assertError(self.s.request("GET", "/api/v1/nearby?lon=113&lat=35"), 401, "unauthorized")

    def test_nearby_counts_free_bays_and_finds_the_nearest_station(self):
        ents = [{"id": f"bay-{i}", "type": "ParkingSpot", "location": [113.2308 + i * 0.001, 35.2403]} for i in range(4)]
        ents += [{"id": "bay-far", "type": "ParkingSpot", "location": [113.30, 35.2403]},
                 {"id": "air-near", "type": "AirQualityObserved", "location": [113.24, 35.25]},
                 {"id": "air-far", "type": "AirQualityObserved", "location": [113.26, 35.26]}]
        r = self.s.request("POST", "/api/v1/entities", key=self.admin, body={"entities": ents})
        self.assertEqual(r.status, 200, r)
        readings = [{"entity": f"bay-{i}", "values": {"occupied": int(i == 0)}} for i in range(3)]  # bay-3 silent
        readings += [{"entity": "bay-far", "values": {"occupied": 0}},
                     {"entity": "air-near", "values": {"aqi": 87.4, "pm25": 61}},
                     {"entity": "air-far", "values": {"aqi": 20, "pm25": 9}}]
        r = self.s.request("POST", "/api/v1/ingest", key=self.admin, body={"readings": readings})
        self.assertEqual(r.json()["accepted"], 8, r)
        for _ in range(50):
            n = self.s.request("GET", "/api/v1/nearby?lon=113.2308&lat=35.2403", key=self.citizen).json()
            if n["parking"]["total"] == 3 and n["air"]:
                break
            time.sleep(0.1)
        self.assertEqual(n["parking"], {"radius_m": 1000, "total": 3, "free": 2})
        self.assertEqual((n["air"]["aqi"], n["air"]["pm25"], n["air"]["radius_m"]), (87.4, 61, 10000))
        self.assertAlmostEqual(n["air"]["distance_m"], 1365, delta=30)
        self.assertNotIn("air-near", json.dumps(n))

if __name__ == "__main__":
    unittest.main()
