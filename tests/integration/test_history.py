"""History over real HTTP: GET /api/v1/series (raw, downsampled, rollup, CSV,
errors, late points and duplicates), persistence of the raw points across
SIGTERM and kill -9, and GET /api/v1/series/aggregate grouped by district and
type. Every expected value is computed by the test from the points it sent."""
import os
import shutil
import signal
import time
import unittest
import urllib.parse
from datetime import datetime, timezone

from harness import Server, ServerTestCase, import_jiaozuo

JIEFANG = (113.230816, 35.240282)    # 解放区 410802
SHANYANG = (113.254881, 35.214507)   # 山阳区 410811
MIN, HOUR = 60000, 3600000
WINDOW = 2 * HOUR                    # SERIES_WINDOW_MS


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def j(v):
    """A number as the JSON responses carry it: 12 significant digits
    (http_reply_json dumps with JSON_REAL_PRECISION(12); CSV has all 17)."""
    return None if v is None else float("%.12g" % v)


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


def value(i, salt=0):
    """Known values, multiples of 0.25 so every sum the server makes is exact."""
    return ((i * 37 + salt * 11) % 41) * 0.25 - 3.0


def buckets(points, frm, to, step, agg):
    """The series.h semantics: buckets [from + k step, from + (k+1) step) for
    k < (to - from) // step + 1 (whole buckets, the last may reach past to).
    Returns [(bucket start, value or None)] for every bucket."""
    nb = (to - frm) // step + 1
    out = []
    for k in range(nb):
        lo = frm + k * step
        vs = [v for t, v in points if lo <= t < lo + step]
        out.append((lo, reduce(vs, agg)))
    return out


def reduce(vs, agg):
    if agg == "count":
        return float(len(vs))
    if not vs:
        return None
    return {"avg": lambda: sum(vs) / len(vs), "min": lambda: min(vs), "max": lambda: max(vs),
            "sum": lambda: sum(vs), "last": lambda: vs[-1]}[agg]()


class HistoryBase(ServerTestCase):
    def get(self, path, **kw):
        return self.s.request("GET", path, key=self.admin, **kw)

    def ok(self, resp, status=200):
        self.assertEqual(resp.status, status, resp)
        return resp.json()

    def create(self, eid, type="HistSensor", loc=JIEFANG):
        body = {"id": eid, "type": type, "location": list(loc)}
        self.ok(self.s.request("POST", "/api/v1/entities", body, key=self.admin), 201)

    def write(self, eid, points, attr="v"):
        """Line protocol, ?precision=ms; asserts every line was accepted."""
        body = "\n".join(f"hist,id={eid} {attr}={v!r} {t}" for t, v in points)
        out = self.ok(self.s.request("POST", "/api/v1/write?precision=ms", body.encode(), key=self.admin,
                                     headers={"Content-Type": "text/plain"}))
        self.assertEqual(out["accepted"], len(points), out)
        return out

    def series(self, eid, attr="v", **params):
        return self.get("/api/v1/series" + qs(entity=eid, attr=attr, **params))

    def raw(self, eid, frm, to, attr="v"):
        body = self.ok(self.series(eid, attr, **{"from": frm, "to": to}))
        self.assertEqual(body["plan"], "raw", body)
        return body["points"]


class History(HistoryBase):
    """One server (Jiaozuo districts, checkpoint every second) for the class."""

    @classmethod
    def setUpClass(cls):
        cls.server = import_jiaozuo(Server("--checkpoint-interval", "1")).start()
        cls.admin = cls.server.key("admin")
        # the main series: 1 reading a minute over the past 5 hours
        cls.base = (now_ms() // MIN) * MIN - 300 * MIN
        cls.points = [(cls.base + i * MIN, value(i)) for i in range(300)]
        cls.s = cls.server
        t = cls("run")
        t.create("urn:hist:main")
        t.write("urn:hist:main", cls.points)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self._servers.append(self.s)

    def test_raw_returns_exactly_the_points_in_order(self):
        first, last = self.points[0][0], self.points[-1][0]
        got = self.raw("urn:hist:main", first, last)
        self.assertEqual(got, [[rfc3339(t), v] for t, v in self.points])
        # from <= t <= to, both ends inclusive, RFC 3339 accepted as well as epoch ms
        body = self.ok(self.series("urn:hist:main", **{"from": rfc3339(self.points[10][0]),
                                                         "to": rfc3339(self.points[20][0])}))
        self.assertEqual(body["points"], [[rfc3339(t), v] for t, v in self.points[10:21]])
        got = self.raw("urn:hist:main", self.points[10][0] + 1, self.points[20][0] - 1)
        self.assertEqual(got, [[rfc3339(t), v] for t, v in self.points[11:20]])
        # the default range is the last 24 h: all of them
        body = self.ok(self.series("urn:hist:main"))
        self.assertEqual(body["points"], [[rfc3339(t), v] for t, v in self.points])

    def test_step_and_every_agg_equal_the_tests_own_computation(self):
        frm, to = self.base + 7000, self.points[-1][0] - 20 * MIN + 3000  # not hour-aligned
        for step_text, step in (("7m", 7 * MIN), ("420s", 7 * MIN), ("1500000", 25 * MIN), ("1d", 86400000)):
            for agg in ("avg", "min", "max", "sum", "count", "last"):
                with self.subTest(step=step_text, agg=agg):
                    body = self.ok(self.series("urn:hist:main", **{"from": frm, "to": to, "step": step_text,
                                                                     "agg": agg}))
                    self.assertEqual(body["plan"], "raw")
                    self.assertEqual(body["step_ms"], step)
                    self.assertEqual(body["agg"], agg)
                    want = [[t, v] for t, v in buckets(self.points, frm, to, step, agg)
                            if not (v is None or (agg == "count" and v == 0))]
                    self.assertEqual(body["points"], [[rfc3339(t), j(v)] for t, v in want])
        # agg defaults to avg
        body = self.ok(self.series("urn:hist:main", **{"from": frm, "to": to, "step": "7m"}))
        self.assertEqual(body["agg"], "avg")

    def test_hour_aligned_step_uses_rollups_with_the_raw_numbers(self):
        time.sleep(1.5)  # a checkpoint has flushed the closed chunks and their rollups
        frm = (self.base // HOUR + 1) * HOUR
        to = self.points[-1][0]
        for agg in ("avg", "min", "max", "sum", "count", "last"):
            with self.subTest(agg=agg):
                body = self.ok(self.series("urn:hist:main", **{"from": frm, "to": to, "step": "1h", "agg": agg}))
                self.assertEqual(body["plan"], "rollup_1h", body)
                want = [(t, v) for t, v in buckets(self.points, frm, to, HOUR, agg)
                        if not (v is None or (agg == "count" and v == 0))]  # non-empty buckets only
                self.assertEqual(body["points"], [[rfc3339(t), j(v)] for t, v in want])
                # the minute plan (30 min buckets, not whole hours) gives the same hours
                if agg in ("sum", "count", "min", "max"):
                    half = self.ok(self.series("urn:hist:main", **{"from": frm, "to": to, "step": "30m",
                                                                     "agg": agg}))
                    self.assertEqual(half["plan"], "rollup_1m")
                    by_hour = {}
                    for t, v in half["points"]:
                        by_hour.setdefault(t[:13], []).append(v)
                    comb = {"sum": sum, "count": sum, "min": min, "max": max}[agg]
                    self.assertEqual([[t[:13], v] for t, v in body["points"]],
                                     [[h, comb(vs)] for h, vs in by_hour.items()])
        # epoch ms and RFC 3339 from give the same plan
        body = self.ok(self.series("urn:hist:main", **{"from": rfc3339(frm), "to": to, "step": "60m"}))
        self.assertEqual(body["plan"], "rollup_1h")

    def test_minute_aligned_steps_use_minute_rollups_with_the_raw_numbers(self):
        """12 readings a minute: the stored chunks keep minute rollups, and a
        step of whole minutes from a whole minute is answered from them (the
        open chunk from its points), equal to the test's own computation."""
        self.create("urn:hist:dense")
        start = (now_ms() // MIN) * MIN - 150 * MIN
        pts = [(start + 2500 + i * 5000, value(i, 9)) for i in range(150 * 12)]
        for i in range(0, len(pts), 600):
            self.write("urn:hist:dense", pts[i:i + 600])
        time.sleep(1.5)  # a checkpoint stored the closed chunks
        frm, to = start + 7 * MIN, pts[-1][0]
        for step_text, step in (("5m", 5 * MIN), ("60s", MIN), ("90m", 90 * MIN)):
            for agg in ("avg", "min", "max", "sum", "count", "last"):
                with self.subTest(step=step_text, agg=agg):
                    body = self.ok(self.series("urn:hist:dense", **{"from": frm, "to": to, "step": step_text,
                                                                      "agg": agg}))
                    self.assertEqual(body["plan"], "rollup_1m", body)
                    want = [[t, v] for t, v in buckets(pts, frm, to, step, agg)
                            if not (v is None or (agg == "count" and v == 0))]
                    self.assertEqual(body["points"], [[rfc3339(t), j(v)] for t, v in want])
        # from 1 ms past a whole minute: the raw plan
        body = self.ok(self.series("urn:hist:dense", **{"from": frm + 1, "to": to, "step": "5m", "agg": "max"}))
        self.assertEqual(body["plan"], "raw")

    def test_csv_by_format_and_by_accept(self):
        frm, to = self.points[5][0], self.points[25][0]
        want = "time,entity,attribute,value\n" + "".join(
            f"{rfc3339(t)},urn:hist:main,v,{'%.17g' % v}\n" for t, v in self.points[5:26])
        r = self.series("urn:hist:main", **{"from": frm, "to": to, "format": "csv"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/csv"), r.headers)
        self.assertEqual(r.body, want)
        r = self.s.request("GET", "/api/v1/series" + qs(entity="urn:hist:main", attr="v", **{"from": frm, "to": to}),
                           key=self.admin, headers={"Accept": "text/csv"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/csv"), r.headers)
        self.assertEqual(r.body, want)
        # downsampled CSV
        r = self.series("urn:hist:main", **{"from": frm, "to": to, "step": "10m", "agg": "max", "format": "csv"})
        rows = r.body.splitlines()
        self.assertEqual(rows[0], "time,entity,attribute,value")
        want = [f"{rfc3339(t)},urn:hist:main,v,{'%.17g' % v}"
                for t, v in buckets(self.points, frm, to, 10 * MIN, "max") if v is not None]
        self.assertEqual(rows[1:], want)

    def test_errors(self):
        e, t = "urn:hist:main", self.points[-1][0]
        self.assertError(self.series(e, **{"from": t + 1, "to": t}), 400, "invalid_field", field="from")
        self.assertError(self.series(e, **{"from": "yesterday", "to": t}), 400, "invalid_field", field="from")
        self.assertError(self.series(e, **{"to": "soon"}), 400, "invalid_field", field="to")
        for step in ("5x", "0", "-1m", "m", "1.5h", ""):
            with self.subTest(step=step):
                self.assertError(self.series(e, step=step), 400, "invalid_field", field="step")
        self.assertError(self.series(e, step="1m", agg="median"), 400, "invalid_field", field="agg")
        self.assertError(self.series("urn:hist:nobody"), 404, "not_found", field="entity")
        self.assertError(self.get("/api/v1/series" + qs(attr="v")), 400, "missing_field", field="entity")
        self.assertError(self.get("/api/v1/series" + qs(entity=e)), 400, "missing_field", field="attr")
        self.assertError(self.series(e, attr="never"), 404, "not_found", field="attr")
        # an attribute with only text values has no history
        self.create("urn:hist:text")
        out = self.ok(self.s.request("POST", "/api/v1/write?precision=ms",
                                     f'hist,id=urn:hist:text note="hello" {t}'.encode(), key=self.admin,
                                     headers={"Content-Type": "text/plain"}))
        self.assertEqual(out["accepted"], 1, out)
        self.assertError(self.series("urn:hist:text", attr="note"), 404, "not_found", field="attr")
        # too many buckets: 1 s over 24 h
        r = self.series(e, **{"from": t - 86400000, "to": t, "step": "1s"})
        self.assertIn(r.status, (400, 413), r)
        self.assertEqual(r.json()["error"]["field"], "step", r)
        # no key
        self.assertEqual(self.s.request("GET", "/api/v1/series" + qs(entity=e, attr="v")).status, 401)

    def test_more_raw_points_than_a_response_holds(self):
        base = (now_ms() // 1000) * 1000 - 3 * HOUR
        pts = [(base + i * 1000, value(i, 4)) for i in range(10001)]  # SERIES_MAX_POINTS + 1
        self.create("urn:hist:many")
        self.write("urn:hist:many", pts)
        r = self.series("urn:hist:many", **{"from": pts[0][0], "to": pts[-1][0]})
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["error"]["field"], "to", r)
        # one fewer fits, exactly
        self.assertEqual(self.raw("urn:hist:many", pts[0][0], pts[-2][0]), [[rfc3339(t), v] for t, v in pts[:-1]])
        # with a step the whole range is answered; the counts add up to every point
        body = self.ok(self.series("urn:hist:many", **{"from": pts[0][0], "to": pts[-1][0], "step": "10m",
                                                         "agg": "count"}))
        self.assertEqual(sum(v for _, v in body["points"]), 10001)

    def _in_current_window(self, need_ms):
        """The start of the current 2 h chunk window, at least need_ms old."""
        now = now_ms()
        start = now // WINDOW * WINDOW
        if now - start < need_ms:
            time.sleep((need_ms - (now - start)) / 1000 + 0.5)
        return start

    def test_late_point_merged_and_duplicate_last_write_wins(self):
        start = self._in_current_window(150000)
        base = start + 1000
        pts = {base + i * 10000: value(i, 1) for i in range(10)}
        self.create("urn:hist:late")
        self.write("urn:hist:late", sorted(pts.items()))
        self.write("urn:hist:late", [(base + 15000, 99.5)])          # late, between two points
        pts[base + 15000] = 99.5
        self.write("urn:hist:late", [(base + 20000, -7.25)])         # duplicate timestamp
        pts[base + 20000] = -7.25
        self.write("urn:hist:late", [(base, 1.5), (base, 2.5)])      # twice in one batch: the last wins
        pts[base] = 2.5
        got = self.raw("urn:hist:late", base - 1, base + 200000)
        self.assertEqual(got, [[rfc3339(t), v] for t, v in sorted(pts.items())])
        body = self.ok(self.series("urn:hist:late", **{"from": base, "to": base + 99999, "step": "100s",
                                                         "agg": "count"}))
        self.assertEqual(body["points"], [[rfc3339(base), float(len(pts))]])

    def test_late_point_before_a_closed_chunk_is_dropped(self):
        start = self._in_current_window(150000)
        base = start + 1000
        pts = [(base + i * 1000, value(i, 2)) for i in range(130)]  # the first 120 close a chunk
        self.create("urn:hist:sealed")
        self.write("urn:hist:sealed", pts)
        self.write("urn:hist:sealed", [(base + 2500, 50.0)])        # inside the closed chunk: dropped
        self.write("urn:hist:sealed", [(base + 125500, 51.0)])      # inside the open chunk: merged
        want = sorted(pts + [(base + 125500, 51.0)])
        got = self.raw("urn:hist:sealed", base, base + 200000)
        self.assertEqual(got, [[rfc3339(t), v] for t, v in want])
        time.sleep(1.5)  # after a flush too
        self.assertEqual(self.raw("urn:hist:sealed", base, base + 200000), got)

    def test_aggregate_by_district_and_by_type(self):
        ents = {"urn:hist:agg:a1": ("HistAggA", JIEFANG, "410802"),
                "urn:hist:agg:a2": ("HistAggA", SHANYANG, "410811"),
                "urn:hist:agg:b1": ("HistAggB", SHANYANG, "410811"),
                "urn:hist:agg:b2": ("HistAggB", JIEFANG, "410802")}
        base = (now_ms() // MIN) * MIN - 180 * MIN
        data = {}
        for n, (eid, (typ, loc, _)) in enumerate(ents.items()):
            self.create(eid, type=typ, loc=loc)
            pts = [(base + i * MIN + n * 1000, value(i, n + 3)) for i in range(0, 180, n + 1)]
            self.write(eid, pts, attr="aggv")
            data[eid] = pts
        for eid, (typ, loc, code) in ents.items():
            e = self.ok(self.get("/api/v1/entities/" + eid))
            self.assertEqual(e["district"], code, e)

        def expected(key, frm, to, step, agg, keep=lambda eid: True):
            groups = {}
            for eid, (typ, _, code) in ents.items():
                if keep(eid):
                    groups.setdefault(typ if key == "type" else code, []).extend(data[eid])
            return {g: [[rfc3339(t), j(v)] for t, v in buckets(sorted(p), frm, to, step, agg)]
                    for g, p in groups.items()}

        def got(body, key):
            return {g[key]: g["points"] for g in body["groups"]}

        frm, to = base + 13000, base + 170 * MIN       # raw plan
        for group in ("district", "type"):
            for agg in ("avg", "min", "max", "sum", "count"):
                with self.subTest(group=group, agg=agg):
                    body = self.ok(self.get("/api/v1/series/aggregate" + qs(
                        attr="aggv", group=group, agg=agg, step="20m", **{"from": frm, "to": to})))
                    self.assertEqual(body["series"], 4, body)
                    self.assertEqual(body["group"], group)
                    self.assertEqual(body["plan"], "raw")
                    self.assertEqual(got(body, group), expected(group, frm, to, 20 * MIN, agg))
        # hour-aligned: rollups, same numbers
        time.sleep(1.5)
        hfrm = (base // HOUR + 1) * HOUR
        hto = base + 179 * MIN
        for agg in ("avg", "min", "max", "sum", "count"):
            with self.subTest(rollup=agg):
                body = self.ok(self.get("/api/v1/series/aggregate" + qs(
                    attr="aggv", group="district", agg=agg, step="1h", **{"from": hfrm, "to": hto})))
                self.assertEqual(body["plan"], "rollup_1h", body)
                self.assertEqual(got(body, "district"), expected("district", hfrm, hto, HOUR, agg))
        # filters: one district, one type
        body = self.ok(self.get("/api/v1/series/aggregate" + qs(
            attr="aggv", district="410811", agg="sum", step="20m", **{"from": frm, "to": to})))
        self.assertEqual(body["series"], 2)
        self.assertEqual(got(body, "district"), expected("district", frm, to, 20 * MIN, "sum",
                                                         lambda eid: ents[eid][2] == "410811"))
        body = self.ok(self.get("/api/v1/series/aggregate" + qs(
            attr="aggv", type="HistAggB", group="district", agg="max", step="20m", **{"from": frm, "to": to})))
        self.assertEqual(got(body, "district"), expected("district", frm, to, 20 * MIN, "max",
                                                         lambda eid: ents[eid][0] == "HistAggB"))
        # no step: one bucket over the whole range
        body = self.ok(self.get("/api/v1/series/aggregate" + qs(
            attr="aggv", group="type", agg="count", **{"from": frm, "to": to})))
        self.assertEqual(got(body, "type"), expected("type", frm, to, to - frm + 1, "count"))
        # CSV: one row per non-empty bucket
        r = self.get("/api/v1/series/aggregate" + qs(attr="aggv", group="district", agg="sum", step="20m",
                                                     format="csv", **{"from": frm, "to": to}))
        self.assertEqual(r.status, 200, r)
        rows = r.body.splitlines()
        self.assertEqual(rows[0], "time,district,attribute,value")
        want = sorted(f"{t},{code},aggv,{'%.17g' % v}"
                      for code, pts in expected("district", frm, to, 20 * MIN, "sum").items()
                      for t, v in pts if v is not None)
        self.assertEqual(sorted(rows[1:]), want)
        # errors
        q = {"from": frm, "to": to}
        self.assertError(self.get("/api/v1/series/aggregate" + qs(attr="aggv", agg="last", step="20m", **q)),
                         400, "invalid_field", field="agg")
        self.assertError(self.get("/api/v1/series/aggregate" + qs(attr="aggv", group="street", **q)),
                         400, "invalid_field", field="group")
        self.assertError(self.get("/api/v1/series/aggregate" + qs(attr="aggv", district="999999", **q)),
                         400, "invalid_field", field="district")
        self.assertError(self.get("/api/v1/series/aggregate" + qs(group="type", **q)),
                         400, "missing_field", field="attr")


class Persistence(HistoryBase):
    """Raw points survive SIGTERM and kill -9 exactly once."""

    def check(self, eid, points, why):
        got = self.raw(eid, points[0][0], points[-1][0])
        self.assertEqual(len(got), len(points), why)
        self.assertEqual(got, [[rfc3339(t), v] for t, v in points], why)
        # the hourly rollups count each point once, too
        frm = (points[0][0] // HOUR + 1) * HOUR
        body = self.ok(self.series(eid, **{"from": frm, "to": points[-1][0], "step": "1h", "agg": "count"}))
        self.assertEqual(body["plan"], "rollup_1h")
        want = [[rfc3339(t), v] for t, v in buckets(points, frm, points[-1][0], HOUR, "count") if v]
        self.assertEqual(body["points"], want, why)

    def test_late_and_duplicate_points_replay_the_same_after_kill9(self):
        self.s = s = Server("--checkpoint-interval", "1")
        s.start()
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        self.admin = s.key("admin")
        now = now_ms()
        start = now // WINDOW * WINDOW
        if now - start < 150000:
            time.sleep((150000 - (now - start)) / 1000 + 0.5)
        base = start + 1000
        pts = {base + i * 1000: value(i, 6) for i in range(125)}  # the first 120 close a chunk
        self.create("urn:hist:replay")
        self.write("urn:hist:replay", sorted(pts.items()))
        self.write("urn:hist:replay", [(base + 3500, 40.0)])    # before the closed chunk's end: dropped
        self.write("urn:hist:replay", [(base + 122500, 41.0)])  # late inside the open chunk: merged
        self.write("urn:hist:replay", [(base + 123000, 42.0)])  # duplicate: last write wins
        pts[base + 122500] = 41.0
        pts[base + 123000] = 42.0
        want = [[rfc3339(t), v] for t, v in sorted(pts.items())]
        self.assertEqual(self.raw("urn:hist:replay", base, base + 200000), want)
        s.stop(signal.SIGKILL)  # before any checkpoint saw the late points
        s.start()
        self.assertEqual(self.raw("urn:hist:replay", base, base + 200000), want, "after kill -9 (WAL replay)")
        time.sleep(2.5)
        s.stop(signal.SIGKILL)
        s.start()
        self.assertEqual(self.raw("urn:hist:replay", base, base + 200000), want, "after checkpoint + kill -9")
        self.assertEqual(s.stop(signal.SIGTERM), 0, s.log_text())
        s.start()
        self.assertEqual(self.raw("urn:hist:replay", base, base + 200000), want, "after SIGTERM")

    def test_sigterm_and_kill9_keep_every_point_once(self):
        self.s = s = import_jiaozuo(Server("--checkpoint-interval", "1"))
        s.start()
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        self.admin = s.key("admin")
        self.create("urn:hist:keep")
        base = (now_ms() // MIN) * MIN - 300 * MIN
        pts = [(base + i * MIN, value(i, 5)) for i in range(300)]
        acked = []
        self.write("urn:hist:keep", pts[:240]); acked += pts[:240]
        self.check("urn:hist:keep", acked, "before any restart")

        self.assertEqual(s.stop(signal.SIGTERM), 0, s.log_text())
        s.start()
        self.check("urn:hist:keep", acked, "after SIGTERM")

        self.write("urn:hist:keep", pts[240:270]); acked += pts[240:270]
        time.sleep(2.5)  # checkpoints ran
        s.stop(signal.SIGKILL)
        s.start()
        self.check("urn:hist:keep", acked, "after kill -9 following a checkpoint")

        self.write("urn:hist:keep", pts[270:]); acked += pts[270:]
        s.stop(signal.SIGKILL)  # at once: the WAL has it
        s.start()
        self.check("urn:hist:keep", acked, "after kill -9 right after the write")

        self.assertEqual(s.stop(signal.SIGTERM), 0, s.log_text())
        s.start()
        self.check("urn:hist:keep", acked, "after a final SIGTERM")


    def test_open_chunks_come_back_from_their_snapshot_without_the_wal(self):
        """A checkpoint snapshots the open chunks, so the WAL is trimmed to the
        checkpoint: even with the WAL gone after kill -9, every point up to the
        checkpoint is back, raw and in the hourly rollups."""
        self.s = s = Server("--checkpoint-interval", "1")
        s.start()
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        self.admin = s.key("admin")
        self.create("urn:hist:snap")
        now = now_ms()
        start = now // WINDOW * WINDOW
        if now - start < 90000:
            time.sleep((90000 - (now - start)) / 1000 + 0.5)
        pts = [(start - 600000 + i * MIN, value(i, 7)) for i in range(10)]       # a chunk, closed by
        pts += [(start + 1000 + i * 1000, value(i, 8)) for i in range(80)]       # these: the open chunk
        self.write("urn:hist:snap", pts)
        time.sleep(2.5)  # checkpoints ran
        s.stop(signal.SIGKILL)
        shutil.rmtree(os.path.join(s.data_dir, "wal"))
        s.start()
        self.check("urn:hist:snap", pts, "after kill -9 and without the WAL")
        self.assertRegex(s.log_text(), r"WAL is behind the checkpoint")


class Retention(HistoryBase):
    """history_raw_days: old raw chunks are deleted after a checkpoint; recent ones stay."""

    def test_old_raw_history_is_deleted_recent_kept(self):
        self.s = s = self.start_server("--history-raw-days", "1", "--checkpoint-interval", "1",
                                       "--max-past-s", "864000")
        self.admin = s.key("admin")
        self.create("ret-1")
        now = now_ms()
        old = [(now - 3 * 86400000 + i * 60000, float(i)) for i in range(10)]
        recent = [(now - 600000 + i * 60000, float(i)) for i in range(10)]
        self.write("ret-1", old)
        self.write("ret-1", recent)  # a later window: the old chunk closes and is flushed
        self.assertEqual(len(self.raw("ret-1", old[0][0], old[-1][0])), 10)  # still there before
        deadline = time.time() + 15
        while time.time() < deadline and self.raw("ret-1", old[0][0], old[-1][0]):
            time.sleep(0.5)
        self.assertEqual(self.raw("ret-1", old[0][0], old[-1][0]), [], "raw history older than a day is gone")
        self.assertEqual(len(self.raw("ret-1", recent[0][0], recent[-1][0])), 10, "recent history stays")
        self.assertRegex(s.log_text(), r"event=retention deleted_rows=[1-9]")


if __name__ == "__main__":
    unittest.main()
