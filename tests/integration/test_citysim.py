"""citysim, the demo city, against a real citybrain (and a real Mosquitto
when installed) on the Jiaozuo districts: it registers devices of every type
in every district, their readings arrive through line protocol, JSON and
MQTT, its incidents raise the demo rules' alarms (scripts/demo-rules.py),
reports come in through the 12345 hotline, grid workers and citizens
(Open311) and are worked through the whole case workflow with role keys, a
second run is idempotent, and SIGTERM ends it with 0.

One server for the class; setUpClass makes the demo rules, runs `citysim
--once` and the tests look at what it left behind. A failing test prints
citysim's output too."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import REPO, Broker, Server, ServerTestCase, import_jiaozuo

SIM = os.environ.get("CITYSIM_BIN", os.path.join(REPO, "citysim"))
DEVICES = 800
DISTRICTS = ["410802", "410803", "410804", "410811", "410821", "410822", "410823", "410825", "410882", "410883"]
CENTRE = ["410802", "410811"]  # 解放区, 山阳区
# Each type and the attributes every one of its devices reports.
TYPES = {
    "AirQualityObserved": ["pm25", "pm10", "no2", "o3", "aqi"],
    "ParkingSpot": ["occupied"],
    "WaterLevelSensor": ["level_m"],
    "ManholeCover": ["tilt_deg", "open"],
    "Streetlight": ["on", "power_w"],
    "SmokeDetector": ["smoke", "battery"],
    "SmartMeter": ["kwh"],
    "PipePressureSensor": ["pressure_mpa"],
    "Vehicle": ["speed_kmh"],
}
ROUTES = open(os.path.join(REPO, "src", "app", "routes.c"), encoding="utf-8").read()
HAVE_RULES = '"/api/v1/rules"' in ROUTES
HAVE_OPEN311 = '"/open311/v2/{doc}"' in ROUTES
DEMO_RULES = os.path.join(REPO, "scripts", "demo-rules.py")
HAVE_ALARM_CASES = "rules_set_case_hook" in open(os.path.join(REPO, "src", "app", "app.c"), encoding="utf-8").read()
with open(os.path.join(REPO, "city", "categories.json"), encoding="utf-8") as f:
    CATEGORIES = {i["code"] for c in json.load(f)["classes"] for i in c["items"]}
HAVE_MQTT = all(shutil.which(c) or os.path.exists("/usr/sbin/" + c) for c in ("mosquitto", "mosquitto_pub"))


@unittest.skipUnless(os.path.exists(SIM), f"no citysim binary at {SIM} (make citysim)")
class CitysimTest(ServerTestCase):
    outputs = []  # (argv, output) of every citysim run, printed when a test fails

    @classmethod
    def setUpClass(cls):
        cls.server = import_jiaozuo(Server("--city-dir", os.path.join(REPO, "city")))
        cls.broker = None
        if HAVE_MQTT:
            cls.broker = Broker(cls.server.data_dir).start()
            cls.server.argv += cls.broker.flags()
        cls.server.start()
        cls.admin = cls.server.key("admin")
        cls.keyfile = os.path.join(cls.server.dir, "admin.key")
        with open(cls.keyfile, "w") as f:
            f.write(cls.admin + "\n")
        cls.keys_dir = os.path.join(cls.server.dir, "citysim-keys")
        cls.rules = None
        if HAVE_RULES and os.path.exists(DEMO_RULES):  # the demo's rules, as make run makes them
            cls.rules = subprocess.run([sys.executable, DEMO_RULES, f"http://127.0.0.1:{cls.server.port}", cls.keyfile],
                                       capture_output=True, text=True, timeout=60)
        cls.first = cls.sim("--once")
        if cls.broker:  # the broker hands the MQTT messages on to citybrain in its own time
            m = re.search(r"mqtt_queued=(\d+)", cls.first.stderr)
            cls.wait_mqtt_stored(int(m.group(1)) if m else 0)

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        if cls.broker:
            cls.broker.cleanup()

    @classmethod
    def argv(cls, *extra):
        return [SIM, "--url", f"http://127.0.0.1:{cls.server.port}", "--key", cls.keyfile, "--devices", str(DEVICES),
                "--mqtt-port", str(cls.broker.port if cls.broker else 0), "--keys-dir", cls.keys_dir, *extra]

    @classmethod
    def sim(cls, *extra, timeout=120):
        argv = cls.argv(*extra)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        cls.outputs.append((argv, p.stdout + p.stderr))
        return p

    @classmethod
    def mqtt_stored(cls):
        text = cls.server.request("GET", "/metrics", key=cls.admin).body
        m = re.search(r'^citybrain_mqtt_messages_total{outcome="stored"} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0

    @classmethod
    def wait_mqtt_stored(cls, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline and cls.mqtt_stored() < n:
            time.sleep(0.1)

    def setUp(self):
        self._servers.append(self.server)

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for argv, text in self.outputs:
                print(f"\n----- citysim {' '.join(argv[1:])} -----\n{text}-----")
        return out

    # --- helpers ---

    def get(self, path):
        r = self.server.request("GET", path, key=self.admin)
        self.assertEqual(r.status, 200, r)
        return r

    def stats(self):
        groups = self.get("/api/v1/entities/stats?by=type,district").json()["groups"]
        return {(g["type"], g["district"]): g for g in groups}

    def logged(self, text, event):
        """The key=value pairs of the first line of an event in citysim's output."""
        m = re.search(rf"event={event} (.*)", text)
        self.assertIsNotNone(m, f"no event={event} in:\n{text}")
        return dict(re.findall(r"(\w+)=(\S+)", m.group(1)))

    def metric(self, name, **labels):
        text = self.get("/metrics").body
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        m = re.search(rf"^{name}{{{re.escape(sel)}}} (\S+)$" if sel else rf"^{name} (\S+)$", text, re.M)
        self.assertIsNotNone(m, f"{name} {labels} not in /metrics")
        return float(m.group(1))

    def reported(self):
        """The first run's reports: {channel: (case id, door, district)}."""
        found = re.findall(r"event=case_reported channel=(\w+) via=(\w+) id=(\S+) category=\S+ district=(\S+)",
                           self.first.stderr)
        return {ch: (id, via, d) for ch, via, id, d in found}

    def case(self, id):
        return self.get("/api/v1/cases/" + id).json()

    def acted(self, action):
        """The case ids the first run took this action on."""
        return re.findall(rf"event=case_action id=(\S+) action={action} ", self.first.stderr)

    def wait_alarms(self, timeout=15, **params):
        """The alarms matching params, once there is at least one (the rules thread stores them)."""
        deadline = time.time() + timeout
        query = "&".join(f"{k}={v}" for k, v in params.items())
        while True:
            alarms = self.get("/api/v1/alarms?" + query).json()["alarms"]
            if alarms or time.time() > deadline:
                self.assertTrue(alarms, f"no alarm for {params}; rules: {self.rules and self.rules.stderr}")
                return alarms
            time.sleep(0.2)

    # --- tests ---

    def test_once_registers_and_sends_one_round(self):
        p = self.first
        self.assertEqual(p.returncode, 0, p.stderr)
        reg = self.logged(p.stderr, "registered")
        self.assertEqual(reg["failed"], "0")
        self.assertGreaterEqual(int(reg["devices"]), DEVICES * 0.9)
        rnd = self.logged(p.stderr, "round")
        self.assertEqual(rnd["reported"], reg["devices"])  # --once: every device reports
        self.assertEqual(rnd["rejected"], "0")
        self.assertGreater(int(rnd["accepted"]), 0)
        self.assertEqual(self.metric("citybrain_entities"), int(reg["devices"]))

    def test_every_type_in_every_district(self):
        stats = self.stats()
        for t in TYPES:
            for d in DISTRICTS:
                g = stats.get((t, d))
                self.assertIsNotNone(g, f"no {t} in {d}")
                self.assertGreaterEqual(g["total"], 1)
                self.assertEqual(g["online"], g["total"], f"{t} in {d}: all have reported, so all are online")

    def test_parking_lots_are_a_third_of_the_centre(self):
        stats = self.stats()
        for d in CENTRE:
            total = sum(g["total"] for (t, dd), g in stats.items() if dd == d)
            share = stats[("ParkingSpot", d)]["total"] / total
            self.assertTrue(0.2 <= share <= 0.4, f"parking is {share:.0%} of {d}")
        urban = sum(g["total"] for (t, d), g in stats.items() if d in CENTRE + ["410803", "410804"])
        self.assertGreater(urban / sum(g["total"] for g in stats.values()), 0.3, "the 区 are denser")

    def test_readings_arrived_for_each_type(self):
        for t, attrs in TYPES.items():
            body = self.get(f"/api/v1/entities?type={t}&limit=50").json()
            self.assertTrue(body["entities"], t)
            for e in body["entities"]:
                for a in attrs:
                    self.assertIn(a, e.get("values", {}), f"{e['id']} has no {a}")
                    v = e["values"][a]["value"]
                    self.assertIsInstance(v, (int, float, bool), f"{e['id']}.{a} = {v!r}")
                self.assertTrue(e["id"].startswith(f"urn:ngsi-ld:{t}:jz-{e['district']}-"), e["id"])

    def test_devices_belong_to_the_citys_departments(self):
        known = {d["code"] for d in self.get("/api/v1/departments").json()["departments"]} | {"xfzd"}  # no fire brigade yet
        for t in TYPES:
            for e in self.get(f"/api/v1/entities?type={t}&limit=20").json()["entities"]:
                self.assertIn(e["department"], known, e["id"])

    def test_readings_are_plausible(self):
        for e in self.get("/api/v1/entities?type=AirQualityObserved&limit=100").json()["entities"]:
            v = {k: x["value"] for k, x in e["values"].items()}
            self.assertTrue(0 < v["pm25"] < 600 and v["pm10"] > v["pm25"] and 0 <= v["aqi"] <= 500, e)
        for e in self.get("/api/v1/entities?type=PipePressureSensor&limit=100").json()["entities"]:
            self.assertTrue(0.2 < e["values"]["pressure_mpa"]["value"] < 0.5, e)
        for e in self.get("/api/v1/entities?type=ParkingSpot&limit=100").json()["entities"]:
            self.assertIn(e["values"]["occupied"]["value"], (0, 1), e)
        for e in self.get("/api/v1/entities?type=Vehicle&limit=100").json()["entities"]:
            self.assertTrue(0 <= e["values"]["speed_kmh"]["value"] <= 110, e)
            self.assertIn(e["district"], DISTRICTS, e)  # vehicles stay in their corridor

    @unittest.skipUnless(HAVE_MQTT, "needs mosquitto and mosquitto_pub")
    def test_mqtt_devices_have_values(self):
        queued = int(self.logged(self.first.stderr, "round")["mqtt_queued"])
        self.assertGreater(queued, 0)
        self.assertEqual(self.logged(self.first.stderr, "round")["mqtt_acked"], str(queued))
        self.assertGreaterEqual(self.metric("citybrain_mqtt_messages_total", outcome="stored"), queued)
        for t in ("SmokeDetector", "ManholeCover"):
            for e in self.get(f"/api/v1/entities?type={t}&limit=200").json()["entities"]:
                self.assertTrue(e["values"], e)

    def test_second_run_is_idempotent(self):
        before = self.stats()
        p = self.sim("--once")
        self.assertEqual(p.returncode, 0, p.stderr)
        staff = self.logged(p.stderr, "staff")
        self.assertEqual(staff["keys_created"], "0")  # the role keys kept in --keys-dir still work
        self.assertEqual(int(staff["departments"]), len(self.get("/api/v1/departments").json()["departments"]))
        reg = self.logged(p.stderr, "registered")
        self.assertEqual(reg["created"], "0")
        self.assertEqual(reg["existing"], reg["devices"])
        self.assertEqual(reg["failed"], "0")
        if HAVE_MQTT:  # the devices that existed got new tokens, and used them
            self.assertEqual(reg["tokens"], reg["mqtt_devices"])
            rnd = self.logged(p.stderr, "round")
            self.assertEqual(rnd["mqtt_acked"], rnd["mqtt_queued"])
        after = self.stats()
        self.assertEqual({k: g["total"] for k, g in before.items()}, {k: g["total"] for k, g in after.items()})

    def test_sigterm_exits_zero(self):
        argv = self.argv("--interval", "1", "--incident-every", "1")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            deadline = time.time() + 60
            while time.time() < deadline and sum("event=round" in x for x in lines) < 3:
                line = p.stdout.readline()
                if not line:
                    break
                lines.append(line)
            self.assertEqual(sum("event=round" in x for x in lines), 3, "".join(lines))
            self.assertTrue(any("event=incident" in x for x in lines), "".join(lines))
            p.send_signal(signal.SIGTERM)
            rest = p.communicate(timeout=15)[0]
            self.outputs.append((argv, "".join(lines) + rest))
            self.assertEqual(p.returncode, 0)
            self.assertIn("event=stopped", rest)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_help_documents_every_flag(self):
        p = subprocess.run([SIM, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for flag in ("--url", "--key", "--key-env", "--devices", "--interval", "--mqtt-port", "--duration",
                     "--seed", "--once", "--incident-every", "--no-incidents", "--reports-per-min", "--case-pace",
                     "--keys-dir", "--no-reports", "--no-casework", "--no-cases"):
            self.assertIn(flag, p.stdout)
        p = subprocess.run([SIM, "--devices", "many"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--devices", p.stderr)
        p = subprocess.run([SIM, "--reports-per-min", "-1", "--key-env", "HOME"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--reports-per-min", p.stderr)

    # --- cases ---

    def test_cases_reported_through_each_channel(self):
        rep = self.reported()
        self.assertEqual(sorted(rep), ["citizen", "grid", "hotline"], self.first.stderr)
        self.assertEqual(rep["citizen"][1], "open311" if HAVE_OPEN311 else "cases")
        self.assertEqual({rep["hotline"][1], rep["grid"][1]}, {"cases"})
        # citizens report with the citizen app's key through Open311, else the centre enters them
        reporter_role = {"hotline": "hotline", "grid": "grid", "citizen": "citizen" if HAVE_OPEN311 else "operator"}
        for ch, (id, _, district) in rep.items():
            c = self.case(id)
            self.assertEqual(c["channel"], ch)
            self.assertIn(c["category"], CATEGORIES)
            self.assertEqual(c["district"], district, c)  # its lon/lat lie in the district it was placed in
            self.assertIn(district, DISTRICTS)
            self.assertGreaterEqual(len(re.findall("[\u4e00-\u9fff]", c["description"])), 8, c["description"])
            self.assertTrue(c["address"].startswith("焦作市") and c["district_name"] in c["address"], c)
            self.assertRegex(c["reporter"]["phone"], r"^138\d{8}$")  # an admin sees it whole
            self.assertRegex(c["reporter"]["name"], "^[\u4e00-\u9fff]{2,3}$")
            self.assertEqual((c["history"][0]["action"], c["history"][0]["role"]), ("report", reporter_role[ch]))
        self.assertIn("市民来电反映", self.case(rep["hotline"][0])["description"])
        self.assertIn("网格巡查发现", self.case(rep["grid"][0])["description"])
        cases = self.logged(self.first.stderr, "cases")
        self.assertEqual((cases["hotline"], cases["grid"], cases["citizen"], cases["report_failed"]), ("1", "1", "1", "0"))

    def test_cases_are_worked_to_the_end(self):
        for ch, (id, _, _) in self.reported().items():
            c = self.case(id)
            self.assertEqual(c["status"], "evaluated", c)
            self.assertIn(c["rating"], ("满意", "基本满意"))
            done = {(h["action"], h["role"]) for h in c["history"]}
            for step in (("start", "dept"), ("handle", "dept"), ("close", "operator"), ("evaluate", "hotline")):
                self.assertIn(step, done, c["history"])
            self.assertTrue({("check", "grid"), ("check", "operator")} & done, c["history"])
            dept = [h for h in c["history"] if h["role"] == "dept"]
            self.assertTrue(all(h["department"] == dept[-1]["department"] for h in dept[-2:]), dept)
        citizen = self.case(self.reported()["citizen"][0])  # a citizen's report waits for the centre
        self.assertEqual([(h["action"], h["role"]) for h in citizen["history"][1:3]],
                         [("accept", "operator"), ("file", "operator")])
        cases = self.logged(self.first.stderr, "cases")
        self.assertEqual((cases["returned"], cases["reworked"], cases["action_failed"]), ("1", "1", "0"))
        self.assertGreaterEqual(int(cases["evaluated"]), 3)

    def test_a_department_returns_a_case_and_it_goes_elsewhere(self):
        (id,) = self.acted("return")
        h = self.case(id)["history"]
        i = next(i for i, x in enumerate(h) if x["action"] == "return")
        self.assertEqual((h[i]["from"], h[i]["to"], h[i]["role"]), ("dispatched", "returned", "dept"))
        self.assertGreaterEqual(len(re.findall("[\u4e00-\u9fff]", h[i]["note"])), 8, h[i])  # the reason
        again = h[i + 1]
        self.assertEqual((again["action"], again["role"], again["to"]), ("dispatch", "operator", "dispatched"))
        self.assertNotEqual(again["department"], h[i]["department"])
        self.assertEqual(self.case(id)["status"], "evaluated")

    def test_a_failed_check_is_reworked(self):
        (id,) = re.findall(r"event=case_action id=(\S+) action=check role=\w+ status=rework ", self.first.stderr)
        h = self.case(id)["history"]
        steps = [(x["action"], x["to"]) for x in h]
        i = steps.index(("check", "rework"))
        self.assertTrue(h[i]["note"] and h[i]["note"] != "核查通过", h[i])
        self.assertIn(("start", "in_progress"), steps[i + 1:])
        self.assertIn(("check", "checked"), steps[i + 1:])
        self.assertEqual(self.case(id)["rework_count"], 1)

    def test_the_workflow_needs_an_admin_key(self):
        keyfile = os.path.join(self.server.dir, "operator.key")
        with open(keyfile, "w") as f:
            f.write(self.server.key("operator") + "\n")
        argv = self.argv("--once", "--no-incidents", "--keys-dir", os.path.join(self.server.dir, "other-keys"))
        argv[argv.index("--key") + 1] = keyfile
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        self.outputs.append((argv, p.stdout + p.stderr))
        self.assertEqual(p.returncode, 1)
        self.assertIn("event=cases_off", p.stderr)
        self.assertIn("must be an admin's", p.stderr)

    def test_role_keys_are_made_once(self):
        keys = self.get("/api/v1/keys").json()["keys"]
        sim = [k for k in keys if "(citysim)" in (k.get("name") or "") and not k.get("revoked_at")]
        roles = sorted(k["role"] for k in sim)
        departments = self.get("/api/v1/departments").json()["departments"]
        self.assertEqual(roles.count("dept"), len(departments))
        self.assertEqual(roles.count("grid"), len(DISTRICTS))
        self.assertEqual((roles.count("operator"), roles.count("hotline"), roles.count("citizen")), (1, 1, 1))
        self.assertEqual({k["department"] for k in sim if k["role"] == "grid"}, set(DISTRICTS))
        for name in ("operator.key", "hotline.key", "citizen.key", "grid-410802.key", "dept-cgj.key"):
            st = os.stat(os.path.join(self.keys_dir, name))
            self.assertEqual(st.st_mode & 0o777, 0o600, name)

    @unittest.skipUnless(HAVE_RULES and os.path.exists(DEMO_RULES) and HAVE_ALARM_CASES,
                         "the rules' case hook is not wired in src/app/app.c (rules_set_case_hook)")
    def test_an_alarm_comes_in_as_a_sensor_case(self):
        manhole = self.logged(self.first.stderr, "incident kind=manhole_open")
        (a,) = self.wait_alarms(rule="demo-manhole-tilt", entity=manhole["entity"])
        deadline = time.time() + 15  # its open_case rule brings the alarm in as a case, channel sensor
        while not a.get("case") and time.time() < deadline:
            time.sleep(0.2)
            a = self.get("/api/v1/alarms/" + a["id"]).json()
        self.assertTrue(a.get("case"), a)
        c = self.case(a["case"])
        category = self.get("/api/v1/rules/demo-manhole-tilt").json()["open_case"]["category"]
        self.assertEqual((c["channel"], c["alarm"], c["category"]), ("sensor", a["id"], category))
        self.assertEqual(c["history"][0]["role"], "system")

    @unittest.skipUnless(HAVE_RULES and os.path.exists(DEMO_RULES), "no /api/v1/rules in routes.c or no demo rules")
    def test_incidents_raise_the_demo_rules_alarms(self):
        self.assertEqual(self.rules.returncode, 0, self.rules.stderr)
        rain = self.logged(self.first.stderr, "incident kind=rainstorm")
        alarms = self.wait_alarms(rule="demo-water-level", district=rain["district"])
        for a in alarms:
            self.assertEqual((a["entity_type"], a["attr"], a["severity"]), ("WaterLevelSensor", "level_m", "critical"))
            self.assertGreater(a["value"], 3.2)
        manhole = self.logged(self.first.stderr, "incident kind=manhole_open")
        (a,) = self.wait_alarms(rule="demo-manhole-tilt", entity=manhole["entity"])
        self.assertGreaterEqual(a["value"], 15)
        smoke = self.logged(self.first.stderr, "incident kind=smoke_alarm")
        if int(smoke["detectors"]) >= 2:  # the rule counts 2 in one grid cell
            (a,) = self.wait_alarms(rule="demo-smoke-cell", district=smoke["district"])
            self.assertEqual(a["entity_type"], "grid")


class Overloaded(BaseHTTPRequestHandler):
    """A citybrain whose ingest doors answer 503 + Retry-After: 1 to the first
    request each: one square district, every entity created."""
    protocol_version = "HTTP/1.1"
    refused = set()
    answered = []

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/api/v1/regions?"):
            return self.reply(200, {"count": 1, "regions": [{"code": "410802", "name": "解放区", "area_km2": 10,
                                                             "centroid": [113.2, 35.2]}]})
        ring = [[113.15, 35.15], [113.25, 35.15], [113.25, 35.25], [113.15, 35.25], [113.15, 35.15]]
        self.reply(200, {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}})

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/api/v1/entities":
            n = len(json.loads(body)["entities"])
            return self.reply(200, {"created": n, "rejected": 0, "errors": [], "tokens": []})
        door = self.path.split("?")[0]
        if door not in self.refused:
            self.refused.add(door)
            self.answered.append((door, 503, time.time()))
            return self.reply(503, {"error": {"code": "unavailable", "message": "queue full"}}, [("Retry-After", "1")])
        self.answered.append((door, 200, time.time()))
        n = body.count(b"\n") if door == "/api/v1/write" else len(json.loads(body)["readings"])
        self.reply(200, {"accepted": n, "rejected": 0, "errors": []})

    def log_message(self, *args):
        pass


@unittest.skipUnless(os.path.exists(SIM), f"no citysim binary at {SIM} (make citysim)")
class CitysimBackoffTest(unittest.TestCase):
    def test_503_waits_for_retry_after_and_sends_again(self):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        p = subprocess.run([SIM, "--url", f"http://127.0.0.1:{httpd.server_address[1]}", "--key-env", "CB_KEY",
                            "--devices", "100", "--mqtt-port", "0", "--once", "--no-cases"],
                           env={**os.environ, "CB_KEY": "cb_test_key"}, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("http_503=2 ", p.stderr)
        self.assertIn("rejected=0 ", p.stderr)
        self.assertNotIn("event=staff", p.stderr)  # --no-cases: no keys asked for, no reports
        self.assertNotIn("event=case_reported", p.stderr)
        for door in ("/api/v1/write", "/api/v1/ingest"):
            times = [(status, t) for d, status, t in Overloaded.answered if d == door]
            self.assertEqual([s for s, _ in times], [503, 200], door)
            self.assertGreaterEqual(times[1][1] - times[0][1], 0.9, "waited for Retry-After")


if __name__ == "__main__":
    unittest.main()
