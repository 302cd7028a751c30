"""Integration tests of the case centre (一体运行联动) over real HTTP: intake
from every channel, automatic and manual dispatch, return to the dispatcher,
the whole main path to evaluation, 409/403/404 answers, department scope,
masking per role, Chinese full-text search, photo upload, duplicates,
reference data and the 督办 timer."""
import http.client
import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import BIN, ServerTestCase, cli

JIEFANG = (113.230, 35.230)   # 解放区
ZHONGZHAN = (113.140, 35.290)  # 中站区
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class CasesTest(ServerTestCase):
    flags = ()

    def setUp(self):
        s = self.start_city_server(*self.flags)
        self.s = s
        self.admin = s.key("admin")
        self.op = s.key("operator")
        self.hotline = s.key("hotline")
        self.grid = s.key("grid", "--department", "410802")
        self.viewer = s.key("viewer")

    # -- helpers --
    def post(self, path, body=None, key=None):
        return self.s.request("POST", path, body if body is not None else {}, key=key or self.admin)

    def get(self, path, key=None):
        return self.s.request("GET", path, key=key or self.admin)

    def get_bytes(self, path):
        """(status, headers, body bytes): photos are not text."""
        conn = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def report(self, key=None, channel="hotline", category="09002", where=JIEFANG, status=201, **extra):
        body = {"channel": channel, "category": category, "description": extra.pop("description", "占道经营，摊位堵住人行道"),
                "lon": where[0], "lat": where[1], "reporter": {"name": "张三丰", "phone": "13812345678"}}
        body.update(extra)
        r = self.post("/api/v1/cases", body, key=key or self.hotline)
        self.assertEqual(r.status, status, r)
        return r.json()

    def act(self, case, action, body=None, key=None, status=200):
        r = self.post(f"/api/v1/cases/{case}/{action}", body, key=key or self.op)
        self.assertEqual(r.status, status, r)
        return r.json()


class IntakeTest(CasesTest):
    def test_each_channel(self):
        hot = self.report()  # 12345: accepted, filed and routed at once
        self.assertRegex(hot["id"], r"^C\d{8}-\d{6}$")
        self.assertEqual(hot["status"], "dispatched")
        self.assertEqual(hot["status_name"], "已派遣")
        self.assertEqual(hot["district"], "410802")
        self.assertEqual(hot["district_name"], "解放区")
        self.assertTrue(hot["grid"].startswith("410802-G"))
        self.assertEqual(hot["department"], "cg-410802")
        self.assertEqual(hot["department_name"], "解放区城管分局")
        self.assertEqual(hot["category_name"], "占道经营")
        self.assertEqual(hot["priority"], "normal")
        self.assertEqual(hot["timer"], "green")
        self.assertFalse(hot["overdue"])
        self.assertEqual([h["action"] for h in hot["history"]], ["report", "accept", "file", "dispatch"])
        self.assertEqual(hot["history"][-1]["role"], "system")

        grid = self.report(self.grid, "grid", "03001", (JIEFANG[0] + 0.01, JIEFANG[1]))
        self.assertEqual((grid["channel"], grid["status"], grid["department"]), ("grid", "dispatched", "cg-410802"))
        citizen = self.report(self.op, "citizen", "09002", (JIEFANG[0] + 0.02, JIEFANG[1]))
        self.assertEqual(citizen["status"], "reported")  # waits for the operations centre
        sensor = self.report(self.op, "sensor", "01002", (JIEFANG[0], JIEFANG[1] + 0.01))
        self.assertEqual((sensor["status"], sensor["department"], sensor["priority"]), ("dispatched", "szgy", "urgent"))
        dept = self.s.key("dept", "--department", "ylj")
        own = self.report(dept, "department", "04001", (JIEFANG[0], JIEFANG[1] + 0.02))
        self.assertEqual((own["status"], own["department"]), ("dispatched", "ylj"))
        # a county case is routed to the county's own bureau
        zz = self.report(where=ZHONGZHAN)
        self.assertEqual((zz["district"], zz["department"]), ("410803", "cg-410803"))
        # address only, no map point: still a case, routed by the district given
        addr = self.post("/api/v1/cases", {"channel": "hotline", "category": "09002", "description": "占道",
                                           "address": "解放区民主南路 12 号", "district": "410802"}, key=self.hotline)
        self.assertEqual(addr.status, 201, addr)
        self.assertEqual(addr.json()["department"], "cg-410802")
        self.assertEqual(addr.headers["location"], "/api/v1/cases/" + addr.json()["id"])

    def test_intake_refusals(self):
        r = self.post("/api/v1/cases", {"channel": "hotline", "category": "09002", "description": "x",
                                        "lon": JIEFANG[0], "lat": JIEFANG[1]}, key=self.grid)
        self.assertError(r, 403, "forbidden", field="channel")
        # a 12345 call is channel hotline: channel citizen is public through Open311
        r = self.post("/api/v1/cases", {"channel": "citizen", "category": "09002", "description": "x",
                                        "lon": JIEFANG[0], "lat": JIEFANG[1]}, key=self.hotline)
        self.assertError(r, 403, "forbidden", field="channel")
        r = self.post("/api/v1/cases", {"channel": "grid", "category": "09002", "description": "x"}, key=self.viewer)
        self.assertError(r, 403, "forbidden")
        r = self.post("/api/v1/cases", {"channel": "hotline", "category": "99999", "description": "x",
                                        "address": "y"}, key=self.hotline)
        self.assertError(r, 400, "invalid_field", field="category", contains="99999")
        r = self.post("/api/v1/cases", {"channel": "hotline", "category": "09002", "description": "x"},
                      key=self.hotline)
        self.assertError(r, 400, "missing_field", field="lon")
        r = self.post("/api/v1/cases", {"channel": "hotline", "category": "09002", "description": "x",
                                        "address": "y", "district": "999999"}, key=self.hotline)
        self.assertError(r, 400, "invalid_field", field="district", contains="999999")
        r = self.s.request("POST", "/api/v1/cases", "{not json", key=self.hotline,
                           headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")
        r = self.s.request("POST", "/api/v1/cases", {"channel": "hotline"})
        self.assertError(r, 401, "unauthorized")


class WorkflowTest(CasesTest):
    def test_main_path_to_evaluated(self):
        dept = self.s.key("dept", "--department", "cg-410802")
        upload = self.s.request("POST", "/api/v1/media", JPEG, headers={"Content-Type": "image/jpeg"}, key=self.hotline)
        self.assertEqual(upload.status, 201, upload)
        photo = upload.json()["url"]
        c = self.report(self.op, "citizen", media=[photo])
        cid = c["id"]
        self.assertEqual(c["media"], [photo])
        self.assertEqual(self.act(cid, "accept", key=self.hotline)["status"], "accepted")
        filed = self.act(cid, "file")
        self.assertEqual(filed["status"], "dispatched")  # filed, then routed automatically
        self.assertEqual(filed["department"], "cg-410802")
        self.assertEqual(self.act(cid, "start", key=dept)["status"], "in_progress")
        handled = self.act(cid, "handle", {"note": "已劝离摊主", "attachments": [photo]}, key=dept)
        self.assertEqual(handled["status"], "handled")
        self.assertEqual(handled["history"][-1]["attachments"], [photo])
        self.assertEqual(handled["step"], "check")
        self.assertEqual(self.act(cid, "check", {"passed": True, "note": "现场已恢复"}, key=self.grid)["status"],
                         "checked")
        self.assertEqual(self.act(cid, "close")["status"], "closed")
        done = self.act(cid, "evaluate", {"rating": "满意"}, key=self.hotline)
        self.assertEqual(done["status"], "evaluated")
        self.assertEqual(done["rating"], "满意")
        self.assertIsNone(done["deadline"])
        hist = done["history"]
        self.assertEqual([h["to"] for h in hist], ["reported", "accepted", "filed", "dispatched", "in_progress",
                                                   "handled", "checked", "closed", "evaluated"])
        self.assertEqual([h["role"] for h in hist],
                         ["operator", "hotline", "operator", "system", "dept", "dept", "grid", "operator", "hotline"])
        for h in hist:
            self.assertRegex(h["at"], r"^\d{4}-\d\d-\d\dT")
        # the photo behind the case is served
        status, headers, body = self.get_bytes(photo)
        self.assertEqual((status, headers["content-type"], body), (200, "image/jpeg", JPEG))

    def test_unsatisfied_reopens_as_rework(self):
        dept = self.s.key("dept", "--department", "cg-410802")
        cid = self.report()["id"]
        self.act(cid, "start", key=dept)
        self.act(cid, "handle", {"note": "已处理"}, key=dept)
        self.act(cid, "check", {"passed": True})
        self.act(cid, "close")
        again = self.act(cid, "evaluate", {"rating": "不满意", "note": "摊位又回来了"}, key=self.hotline)
        self.assertEqual((again["status"], again["rework_count"], again["department"]),
                         ("rework", 1, "cg-410802"))
        self.assertEqual(self.act(cid, "start", key=dept)["status"], "in_progress")

    def test_manual_dispatch_and_return(self):
        c = self.report(category="08001")  # 工地扬尘: two departments own it, so a dispatcher decides
        cid = c["id"]
        self.assertEqual((c["status"], c["department"]), ("filed", None))
        zjj = self.s.key("dept", "--department", "zjj")
        self.assertError(self.post(f"/api/v1/cases/{cid}/start", key=zjj), 404, "not_found")
        r = self.post(f"/api/v1/cases/{cid}/dispatch", {}, key=self.op)
        self.assertError(r, 400, "missing_field", field="department")
        r = self.post(f"/api/v1/cases/{cid}/dispatch", {"department": "nope"}, key=self.op)
        self.assertError(r, 400, "invalid_field", field="department")
        d = self.act(cid, "dispatch", {"department": "zjj"})
        self.assertEqual((d["status"], d["department"]), ("dispatched", "zjj"))
        back = self.act(cid, "return", {"reason": "扬尘属生态环境局监管"}, key=zjj)
        self.assertEqual(back["status"], "returned")
        self.assertEqual(back["history"][-1]["note"], "扬尘属生态环境局监管")
        r = self.post(f"/api/v1/cases/{cid}/return", {"reason": "x"}, key=zjj)
        self.assertError(r, 409, "conflict", contains="returned")
        again = self.act(cid, "dispatch", {"department": "sthjj"})
        self.assertEqual((again["department"], again["return_count"]), ("sthjj", 1))
        self.assertError(self.s.request("GET", f"/api/v1/cases/{cid}", key=zjj), 404, "not_found")

    def test_invalid_transitions(self):
        cid = self.report()["id"]
        r = self.post(f"/api/v1/cases/{cid}/close", key=self.op)
        self.assertError(r, 409, "conflict", field="action")
        msg = r.json()["error"]["message"]
        self.assertIn("dispatched", msg)
        self.assertIn("已派遣", msg)
        self.assertIn("allowed actions: start, return, dispatch, park, supervise", msg)
        r = self.post(f"/api/v1/cases/{cid}/start", key=self.op)  # a department's step
        self.assertError(r, 403, "forbidden", contains="dept")
        r = self.post(f"/api/v1/cases/{cid}/start", key=self.viewer)
        self.assertError(r, 403, "forbidden")
        r = self.post(f"/api/v1/cases/{cid}/teleport", key=self.op)
        self.assertError(r, 404, "not_found", contains="allowed actions")
        r = self.post("/api/v1/cases/C20200101-000001/accept", key=self.op)
        self.assertError(r, 404, "not_found")
        r = self.s.request("POST", f"/api/v1/cases/{cid}/dispatch", "{", key=self.op,
                           headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json")
        # park and unpark: back where it was, with a fresh timer
        parked = self.act(cid, "park", {"note": "待预算"})
        self.assertEqual((parked["status"], parked["deadline"]), ("parked", None))
        self.assertEqual(self.act(cid, "unpark")["status"], "dispatched")
        # 督办 by hand: a record, no change of state
        self.assertEqual(self.act(cid, "supervise", {"note": "请加快处置"})["status"], "dispatched")
        sup = self.get(f"/api/v1/supervisions?case={cid}").json()["supervisions"]
        self.assertEqual([(s["level"], s["note"]) for s in sup], [("manual", "请加快处置")])

    def test_extension(self):
        dept = self.s.key("dept", "--department", "cg-410802")
        c = self.report()
        self.act(c["id"], "start", key=dept)
        ext = self.act(c["id"], "extend", {"hours": 8, "reason": "需协调执法力量"}, key=dept)
        self.assertEqual((ext["status"], ext["extension_requested_hours"]), ("extended", 8))
        self.assertError(self.post(f"/api/v1/cases/{c['id']}/approve_extension", key=dept), 403, "forbidden")
        ok = self.act(c["id"], "approve_extension")
        self.assertEqual(ok["status"], "in_progress")
        self.assertGreater(ok["deadline"], c["deadline"])


class ScopeAndMaskingTest(CasesTest):
    def test_department_scope(self):
        a = self.report()  # cg-410802
        b = self.report(category="01002", where=(JIEFANG[0] + 0.01, JIEFANG[1]))  # szgy
        cg = self.s.key("dept", "--department", "cg-410802")
        listed = self.get("/api/v1/cases", key=cg).json()["cases"]
        self.assertEqual([c["id"] for c in listed], [a["id"]])
        self.assertEqual(self.get(f"/api/v1/cases/{a['id']}", key=cg).status, 200)
        self.assertError(self.get(f"/api/v1/cases/{b['id']}", key=cg), 404, "not_found")
        listed = self.get("/api/v1/cases?department=szgy", key=cg).json()["cases"]
        self.assertEqual(listed, [])
        self.assertEqual(self.get("/api/v1/cases/stats", key=cg).json()["open"], 1)
        self.assertEqual(self.get("/api/v1/cases/stats").json()["open"], 2)

    def test_actions_per_role(self):
        """GET /api/v1/cases/{id} says which actions the asker may take now, from the server's table."""
        def actions(case, key):
            return [(a["action"], a["name"], a["needs"], a["required"])
                    for a in self.get(f"/api/v1/cases/{case}", key=key).json()["actions"]]
        filed = self.report(category="05001")  # no routing rule: waits for a dispatcher
        self.assertEqual(filed["status"], "filed")
        self.assertEqual(actions(filed["id"], self.op), [("dispatch", "派遣", ["department"], []),
                                                         ("reject", "不予受理/作废", ["note"], ["note"]),
                                                         ("park", "挂账", ["note"], [])])
        self.assertEqual(actions(filed["id"], self.viewer), [])
        self.assertEqual(actions(filed["id"], self.hotline), [])
        a = self.report()  # dispatched to cg-410802
        cg = self.s.key("dept", "--department", "cg-410802")
        self.assertEqual(actions(a["id"], cg), [("start", "开始处置", [], []), ("return", "回退", ["reason"], ["reason"])])
        self.assertError(self.get(f"/api/v1/cases/{a['id']}", key=self.s.key("dept", "--department", "szgy")),
                         404, "not_found")
        self.assertEqual([x[0] for x in actions(a["id"], self.admin)],
                         ["start", "return", "dispatch", "park", "supervise"])
        # after a transition the answer carries the new state's actions
        started = self.act(a["id"], "start", key=cg)
        self.assertEqual([x["action"] for x in started["actions"]], ["handle", "return", "extend"])
        self.assertEqual(started["history"][-1]["action_name"], "开始处置")
        self.assertEqual(started["history"][-1]["to_name"], "处置中")

    def test_masking_per_role(self):
        cid = self.report()["id"]
        dept = self.s.key("dept", "--department", "cg-410802")
        want = {self.admin: ("张三丰", "13812345678"), self.hotline: ("张三丰", "13812345678"),
                self.op: ("张**", "138****5678"), self.viewer: ("张**", "138****5678"),
                self.grid: ("张**", "138****5678"), dept: ("张**", "138****5678")}
        for key, (name, phone) in want.items():
            one = self.get(f"/api/v1/cases/{cid}", key=key).json()["reporter"]
            self.assertEqual((one["name"], one["phone"]), (name, phone))
            listed = self.get("/api/v1/cases", key=key).json()["cases"][0]["reporter"]
            self.assertEqual((listed["name"], listed["phone"]), (name, phone))


class SearchTest(CasesTest):
    def test_full_text_and_filters(self):
        texts = ["人民路占道经营水果摊", "解放路井盖缺失有人掉落风险", "学校门口占道经营早餐车", "塔南路电线杆小广告"]
        cats = ["09002", "01003", "09002", "07001"]
        ids = []
        for i, (t, cat) in enumerate(zip(texts, cats)):
            ids.append(self.report(category=cat, description=t, where=(JIEFANG[0] + i * 0.002, JIEFANG[1]))["id"])

        def q(query):
            r = self.get("/api/v1/cases?" + query)
            self.assertEqual(r.status, 200, r)
            return [c["id"] for c in r.json()["cases"]]

        self.assertEqual(q("q=" + urllib.parse.quote("占道经营")), [ids[2], ids[0]])
        self.assertEqual(q("q=" + urllib.parse.quote("水果摊")), [ids[0]])
        self.assertEqual(q("q=" + urllib.parse.quote("井盖")), [ids[1]])  # two characters
        self.assertEqual(q("q=" + urllib.parse.quote("自来水")), [])
        self.assertEqual(q("q=" + urllib.parse.quote("占道") + "&category=09"), [ids[2], ids[0]])
        self.assertEqual(q("category=01003"), [ids[1]])
        self.assertEqual(q("status=dispatched&district=410802&limit=500"), list(reversed(ids)))
        self.assertEqual(q("channel=grid"), [])
        self.assertEqual(q("overdue=1"), [])
        page = self.get("/api/v1/cases?limit=3").json()
        self.assertEqual(len(page["cases"]), 3)
        rest = self.get("/api/v1/cases?limit=3&cursor=" + page["next_cursor"]).json()
        self.assertEqual([c["id"] for c in rest["cases"]], [ids[0]])
        self.assertIsNone(rest["next_cursor"])
        self.assertError(self.get("/api/v1/cases?status=lost"), 400, "invalid_field", field="status")
        self.assertError(self.get("/api/v1/cases?from=yesterday"), 400, "invalid_field", field="from")
        stats = self.get("/api/v1/cases/stats").json()
        self.assertEqual(stats["open"], 4)
        self.assertEqual(stats["by_category"]["09002"], 2)
        self.assertEqual(stats["by_district"], {"410802": 4})
        self.assertEqual(len(stats["by_hour"]), 24)
        self.assertEqual(stats["by_hour"][23], 4)
        self.assertEqual(self.get("/api/v1/cases/stats?district=410803").json()["open"], 0)


class MediaTest(CasesTest):
    flags = ("--media-max", "4K")

    def test_upload_limits_and_types(self):
        r = self.s.request("POST", "/api/v1/media", PNG, headers={"Content-Type": "image/png"})
        self.assertError(r, 401, "unauthorized")  # a citizen app's or a reporting staff key
        self.assertError(self.s.request("POST", "/api/v1/media", PNG, headers={"Content-Type": "image/png"},
                                        key=self.viewer), 403, "forbidden")
        r = self.s.request("POST", "/api/v1/media", PNG, headers={"Content-Type": "image/png"}, key=self.grid)
        self.assertEqual(r.status, 201, r)
        url = r.json()["url"]
        self.assertRegex(url, r"^/media/[0-9a-f]{64}\.png$")
        again = self.s.request("POST", "/api/v1/media", PNG, headers={"Content-Type": "image/png"}, key=self.grid)
        self.assertEqual(again.json()["url"], url)  # content-addressed
        status, headers, body = self.get_bytes(url)
        self.assertEqual((status, headers["content-type"], body), (200, "image/png", PNG))
        self.assertIn("immutable", headers["cache-control"])
        r = self.s.request("POST", "/api/v1/media", b"hello", headers={"Content-Type": "text/plain"}, key=self.grid)
        self.assertError(r, 415, "unsupported_media_type")
        r = self.s.request("POST", "/api/v1/media", PNG, headers={"Content-Type": "image/jpeg"}, key=self.grid)
        self.assertError(r, 415, "unsupported_media_type", contains="image/jpeg")
        r = self.s.request("POST", "/api/v1/media", JPEG + b"\x00" * 4096, headers={"Content-Type": "image/jpeg"}, key=self.grid)
        self.assertError(r, 413, "payload_too_large")
        r = self.s.request("POST", "/api/v1/media", b"", headers={"Content-Type": "image/jpeg"}, key=self.grid)
        self.assertError(r, 400, "missing_field")
        self.assertEqual(self.s.request("GET", "/media/" + "0" * 64 + ".png").status, 404)
        self.assertEqual(self.s.request("GET", "/media/..%2Fcitybrain.db").status, 404)
        self.assertEqual(self.s.request("GET", "/media/citybrain.db").status, 404)
        r = self.report(media=["https://example.com/x.jpg"], status=400)
        self.assertEqual(r["error"]["field"], "media")


class DuplicateTest(CasesTest):
    def test_duplicates_and_unlink(self):
        first = self.report()
        dup = self.report(self.grid, "grid", where=(JIEFANG[0] + 0.0002, JIEFANG[1] + 0.0001))  # ~20 m
        self.assertEqual((dup["status"], dup["duplicate_of"]), ("rejected", first["id"]))
        self.assertEqual(dup["history"][-1]["action"], "merge")
        other = self.report(category="09005", where=(JIEFANG[0] + 0.0002, JIEFANG[1]))
        self.assertIsNone(other["duplicate_of"])
        far = self.report(where=(JIEFANG[0] + 0.002, JIEFANG[1]))  # ~180 m
        self.assertIsNone(far["duplicate_of"])
        un = self.act(dup["id"], "unlink")
        self.assertEqual((un["status"], un["duplicate_of"], un["department"]), ("dispatched", None, "cg-410802"))
        self.assertError(self.post(f"/api/v1/cases/{first['id']}/unlink", key=self.op), 409, "conflict")


class ReferenceDataTest(CasesTest):
    def test_categories_routing_departments(self):
        cats = {c["code"]: c for c in self.get("/api/v1/categories", key=self.viewer).json()["categories"]}
        self.assertGreater(len(cats), 80)
        self.assertEqual((cats["01001"]["name"], cats["01001"]["limit_minutes"], cats["01001"]["natural"]),
                         ("上水井盖", 120, True))
        self.assertEqual((cats["51001"]["name"], cats["51001"]["component"]), ("上水井盖异常", "01001"))
        self.assertFalse(cats["09002"]["natural"])
        for name in ["私搭乱建", "暴露垃圾", "非法小广告", "工地扬尘", "无照经营游商", "道路积雪结冰", "噪声扰民"]:
            self.assertIn(name, [c["name"] for c in cats.values()])
        r = self.s.request("PUT", "/api/v1/categories/09002", {"limit_hours": 2}, key=self.op)
        self.assertError(r, 403, "forbidden")
        r = self.s.request("PUT", "/api/v1/categories/09002", {"limit_hours": 2}, key=self.admin)
        self.assertEqual((r.status, r.json()["limit_minutes"]), (200, 120), r)
        r = self.s.request("PUT", "/api/v1/categories/09002", {"urgency": "asap"}, key=self.admin)
        self.assertError(r, 400, "invalid_field", field="urgency")
        deps = {d["code"]: d for d in self.get("/api/v1/departments", key=self.viewer).json()["departments"]}
        self.assertEqual(deps["jjzd"]["name"], "焦作市公安局交通警察支队")
        self.assertEqual(deps["cg-410802"]["district"], "410802")
        self.assertError(self.get("/api/v1/routing", key=self.op), 403, "forbidden")
        rules = self.get("/api/v1/routing").json()["rules"]
        self.assertIn({"category": "09004", "region": "*", "department": "jjzd",
                       "department_name": "焦作市公安局交通警察支队"}, rules)
        r = self.s.request("PUT", "/api/v1/routing", {"rules": [{"category": "09", "region": "*",
                                                                 "department": "ghost"}]}, key=self.admin)
        self.assertError(r, 400, "invalid_field", contains="ghost")
        r = self.s.request("PUT", "/api/v1/routing", {"rules": [{"category": "09", "region": "*",
                                                                 "department": "cgj"}]}, key=self.admin)
        self.assertEqual((r.status, len(r.json()["rules"])), (200, 1), r)
        self.assertEqual(self.report(where=ZHONGZHAN)["department"], "cgj")  # routing is data

    def test_import_categories_cli(self):
        self.s.stop()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"classes": [{"code": "09", "name": "街面秩序", "kind": "matter",
                                    "items": [{"code": "09002", "name": "占道经营", "limit_hours": 3}]}]}, f)
        self.addCleanup(os.unlink, f.name)
        p = cli("import", "categories", f.name, data_dir=self.s.data_dir)
        self.assertIn("imported 1 categories", p.stdout)
        with open(f.name, "w") as bad:
            json.dump({"classes": [{"code": "09", "name": "x", "kind": "matter", "items": [{"code": "1"}]}]}, bad)
        p = cli("import", "categories", f.name, data_dir=self.s.data_dir, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("classes[0].items[0]", p.stderr)
        self.s.start()
        cats = self.get("/api/v1/categories").json()["categories"]
        self.assertEqual([(c["code"], c["limit_minutes"]) for c in cats], [("09002", 180)])

    def test_workflow_doc(self):
        out = subprocess.run([BIN, "cases", "workflow"], capture_output=True, text=True, check=True).stdout
        self.assertIn("| dispatched (已派遣) | `start` | in_progress | admin, dept |", out)
        self.assertIn("| handled (已处置) | `check` | rework |", out)


class EventsTest(CasesTest):
    def test_transitions_are_events(self):
        from test_stream import SSE
        ops = SSE(self.s, self.op, "?kind=case")
        dept = SSE(self.s, self.s.key("dept", "--department", "cg-410802"), "?kind=case")
        self.addCleanup(ops.close)
        self.addCleanup(dept.close)
        self.assertEqual((ops.status, dept.status), (200, 200))
        c = self.report()
        got = ops.events(4)
        self.assertEqual([e["event"] for e in got], ["case.created", "case.accepted", "case.filed", "case.dispatched"])
        for e in got:
            self.assertEqual((e["json"]["kind"], e["json"]["data"]["id"]), ("case", c["id"]))
            self.assertEqual((e["json"]["district"], e["json"]["department"]), ("410802", "cg-410802"))
            self.assertNotIn("reporter", e["json"]["data"])  # no caller's details on the wire
        self.assertEqual(dept.events(4)[-1]["json"]["data"]["status"], "dispatched")
        self.report(category="01002", where=(JIEFANG[0] + 0.01, JIEFANG[1]))  # szgy: not this department's
        self.assertEqual(len(ops.events(4)), 4)
        self.assertIsNone(dept.next_event(timeout=1))


class SupervisionTest(CasesTest):
    """The timer thread with a real clock: a category limited to one minute
    turns yellow after 48 s (80 %). Slow by nature; the unit tests cover the
    arithmetic with an injected clock."""
    flags = ("--supervise-interval", "1")

    def test_yellow_after_80_percent(self):
        r = self.s.request("PUT", "/api/v1/categories/09006", {"limit_minutes": 1, "natural": True}, key=self.admin)
        self.assertEqual(r.status, 200, r)
        c = self.report(category="09006")
        self.assertEqual(c["timer"], "green")
        deadline = time.time() + 75
        sup = []
        while time.time() < deadline and not sup:
            time.sleep(1)
            sup = self.get(f"/api/v1/supervisions?case={c['id']}&level=yellow").json()["supervisions"]
        self.assertEqual(len(sup), 1)
        self.assertEqual((sup[0]["step"], sup[0]["department"], sup[0]["escalated_to"]),
                         ("handle", "cg-410802", "operator"))
        self.assertEqual(self.get(f"/api/v1/cases/{c['id']}").json()["timer"], "yellow")


if __name__ == "__main__":
    unittest.main()
