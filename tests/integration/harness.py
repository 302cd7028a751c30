"""Integration test harness: starts the real citybrain server on a free port
in a temporary data directory and talks real HTTP to it. Standard library only.

A failing test prints the server's log, so the reason is in the CI output."""
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
            return ""

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Prints the logs of the servers a test started when the test fails."""

    def start_server(self, *flags, **kw):
        s = Server(*flags, **kw).start()
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
