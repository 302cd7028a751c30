"""KPIs (考核) over real HTTP: five cases driven through the workflow with
the cases API, then GET /api/v1/kpis by department, district and role must
give the counts, rates, scores and ranks those cases imply (README "KPIs").

The cases (reported by a 12345 hotline key unless said otherwise; routing
sends 03xxx and 06xxx to the district's 城管分局):
  c1 03001 410802 → cg-410802: start, handle, check ok, close, 满意
  c2 03002 410802 → cg-410802: handle, check fails (返工), handle, check ok, close, 基本满意
  c3 06002 410803 → cg-410803 returns it (回退) → dispatched to cg-410802: handle, check ok, close,
     不满意 (reopened as 返工: closed no more)
  c4 03001 410803 → cg-410803, left dispatched
  c5 03001 410802, channel citizen: rejected (不予受理)
Everything happens within minutes, so every step is on time."""
import os
import unittest

from harness import REPO, ServerTestCase


class KpisTest(ServerTestCase):
    def setUp(self):
        self.s = self.start_server("--city-dir", os.path.join(REPO, "city"))
        self.admin = self.s.key("admin")
        self.hotline = self.s.key("hotline")
        self.d2 = self.s.key("dept", "--department", "cg-410802")
        self.d3 = self.s.key("dept", "--department", "cg-410803")

    def case(self, category, district, channel="hotline"):
        # the hotline reports through channel hotline only: a citizen's report is entered by the centre
        key = self.hotline if channel == "hotline" else self.admin
        r = self.s.request("POST", "/api/v1/cases", key=key, body={
            "channel": channel, "category": category, "district": district, "description": "测试 " + category})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def act(self, key, cid, action, body=None):
        r = self.s.request("POST", f"/api/v1/cases/{cid}/{action}", key=key, body=body or {})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def drive(self):
        c1 = self.case("03001", "410802")
        self.assertEqual((c1["status"], c1["department"]), ("dispatched", "cg-410802"))
        self.act(self.d2, c1["id"], "start")
        self.act(self.d2, c1["id"], "handle", {"note": "已清理"})
        self.act(self.admin, c1["id"], "check", {"passed": True})
        self.act(self.admin, c1["id"], "close")
        self.act(self.admin, c1["id"], "evaluate", {"rating": "满意"})

        c2 = self.case("03002", "410802")
        self.act(self.d2, c2["id"], "start")
        self.act(self.d2, c2["id"], "handle", {"note": "x"})
        self.assertEqual(self.act(self.admin, c2["id"], "check", {"passed": False})["status"], "rework")
        self.act(self.d2, c2["id"], "handle", {"note": "重新处理"})
        self.act(self.admin, c2["id"], "check", {"passed": True})
        self.act(self.admin, c2["id"], "close")
        self.act(self.admin, c2["id"], "evaluate", {"rating": "基本满意"})

        c3 = self.case("06002", "410803")
        self.assertEqual(c3["department"], "cg-410803")
        self.act(self.d3, c3["id"], "return", {"reason": "不是我们的"})
        self.act(self.admin, c3["id"], "dispatch", {"department": "cg-410802"})
        self.act(self.d2, c3["id"], "start")
        self.act(self.d2, c3["id"], "handle", {"note": "y"})
        self.act(self.admin, c3["id"], "check", {"passed": True})
        self.act(self.admin, c3["id"], "close")
        self.assertEqual(self.act(self.admin, c3["id"], "evaluate", {"rating": "不满意"})["status"], "rework")

        c4 = self.case("03001", "410803")
        self.assertEqual((c4["status"], c4["department"]), ("dispatched", "cg-410803"))

        c5 = self.case("03001", "410802", channel="citizen")
        self.assertEqual(c5["status"], "reported")
        self.act(self.admin, c5["id"], "reject", {"note": "重复来电"})

    def kpis(self, query, key=None):
        r = self.s.request("GET", "/api/v1/kpis" + query, key=key or self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def rows(self, query, key=None):
        return {row["key"]: row for row in self.kpis(query, key)["rows"]}

    def assertRow(self, row, **want):
        for name, value in want.items():
            if isinstance(value, float):
                self.assertAlmostEqual(row[name], value, places=3, msg=f"{row['key']}.{name}")
            else:
                self.assertEqual(row[name], value, f"{row['key']}.{name}")

    def test_kpis_follow_the_workflow(self):
        self.drive()
        out = self.kpis("?by=department")
        self.assertEqual(out["by"], "department")
        self.assertEqual([r["key"] for r in out["rows"]], ["cg-410802", "cg-410803"])
        d = {r["key"]: r for r in out["rows"]}
        # cg-410802 holds c1 c2 c3: all handled on time; c1 c2 closed, c3 reopened; c2 c3 reworked
        self.assertRow(d["cg-410802"], name="解放区城管分局", reported=3, filed=3, dispatched=3, dispatches=3,
                       returns=0, due=3, handled=3, handled_on_time=3, closed=2, closed_on_time=2, reworked=2,
                       rated=3, satisfied=2, open=1, overdue=0, accurate_dispatch_rate=1.0, handle_rate=1.0,
                       on_time_handle_rate=1.0, close_rate=2 / 3, on_time_close_rate=2 / 3, rework_rate=2 / 3,
                       satisfaction_rate=2 / 3, rank=1)
        # department weights: .15*1 + .25*1 + .10*2/3 + .15*2/3 + .15*(1-2/3) + .20*2/3 = .75
        self.assertEqual(d["cg-410802"]["score"], 75.0)
        # cg-410803 holds c4 (dispatched, not due yet); it received c3 too and returned it
        self.assertRow(d["cg-410803"], reported=1, dispatches=2, returns=1, due=0, accurate_dispatch_rate=0.5)
        for name in ("close_rate", "on_time_close_rate", "satisfaction_rate", "rework_rate", "score", "rank"):
            self.assertIsNone(d["cg-410803"][name], name)

        d = self.rows("?by=district")
        # 410802: c1 c2 c5 (c5 rejected, never filed)
        self.assertRow(d["410802"], reported=3, filed=2, dispatched=2, due=2, closed=2, closed_on_time=2,
                       reworked=1, rated=2, satisfied=2, open=0, on_time_file_rate=1.0, close_rate=1.0,
                       rework_rate=0.5, satisfaction_rate=1.0, rank=1)
        # .1 + .1 + .1 + .15 + .25 + .1*(1-.5) + .2 = .95
        self.assertEqual(d["410802"]["score"], 95.0)
        # 410803: c3 c4; c3 was dispatched twice and returned once
        self.assertRow(d["410803"], reported=2, filed=2, dispatches=3, returns=1, due=1, handled=1, closed=0,
                       reworked=1, rated=1, satisfied=0, open=2, accurate_dispatch_rate=2 / 3, close_rate=0.0,
                       rework_rate=1.0, satisfaction_rate=0.0, rank=2)
        # .1 + .1 + .1*2/3 = .2667
        self.assertEqual(d["410803"]["score"], 26.7)

        d = self.rows("?by=role")
        self.assertEqual(set(d), {"hotline", "citizen"})
        self.assertRow(d["hotline"], name="12345热线", reported=4, filed=4, dispatches=5, returns=1, due=3,
                       closed=2, reworked=2, rated=3, satisfied=2, accurate_dispatch_rate=0.8, rank=1)
        # .1 + .1 + .1*.8 + .15*2/3 + .25*2/3 + .1*(1-2/3) + .2*2/3 = .7133
        self.assertEqual(d["hotline"]["score"], 71.3)
        self.assertRow(d["citizen"], name="市民", reported=1, filed=0)
        self.assertIsNone(d["citizen"]["score"])

    def test_scope_window_and_errors(self):
        self.drive()
        # a department sees its own row only, and in other groupings only its own cases
        self.assertEqual(list(self.rows("?by=department", self.d3)), ["cg-410803"])
        d = self.rows("?by=district", self.d2)
        self.assertEqual((d["410802"]["reported"], d["410803"]["reported"]), (2, 1))
        # the whole city, and a window before any case
        city = self.rows("?by=city")["city"]
        self.assertRow(city, reported=5, filed=4, due=3, closed=2)
        empty = self.kpis("?by=city&from=2020-01-01T08:00:00+08:00&to=2020-02-01T00:00:00Z")  # "+" arrives as " "
        self.assertEqual(empty["rows"], [])
        self.assertEqual(empty["from"], "2020-01-01T00:00:00.000Z")
        # viewers may read, strangers may not; bad parameters are named
        self.assertEqual(self.s.request("GET", "/api/v1/kpis", key=self.s.key("viewer")).status, 200)
        self.assertEqual(self.s.request("GET", "/api/v1/kpis").status, 401)
        self.assertError(self.s.request("GET", "/api/v1/kpis?by=mayor", key=self.admin), 400, "invalid_field", "by")
        self.assertError(self.s.request("GET", "/api/v1/kpis?from=soon", key=self.admin), 400, "invalid_field",
                         "from")
        self.assertError(self.s.request("GET", "/api/v1/kpis?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                                        key=self.admin), 400, "invalid_field")


if __name__ == "__main__":
    unittest.main()
