"""The foundation over real HTTP: health, keys and roles, JSON errors, limits,
metrics, logs, config and graceful shutdown."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import BIN, ServerTestCase, cli


class HealthAndAuth(ServerTestCase):
    def setUp(self):
        self.s = self.start_server()
        self.admin = self.s.key("admin", "--name", "ops-admin")

    def test_healthz_is_public(self):
        r = self.s.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        body = r.json()
        self.assertEqual(body["status"], "ok")
        self.assertGreaterEqual(body["schema_version"], 1)

    def test_missing_key_gets_401_json(self):
        r = self.s.request("GET", "/api/v1/whoami")
        self.assertError(r, 401, "unauthorized", field="Authorization")
        self.assertIn("Bearer", r.headers["www-authenticate"])

    def test_bad_key_gets_401_json(self):
        r = self.s.request("GET", "/api/v1/whoami", key="cb_000000000000_" + "A" * 43)
        self.assertError(r, 401, "unauthorized", contains="unknown API key")
        r = self.s.request("GET", "/api/v1/whoami", key="hunter2")
        self.assertError(r, 401, "unauthorized", contains="malformed")

    def test_cli_key_works(self):
        r = self.s.request("GET", "/api/v1/whoami", key=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["role"], "admin")
        self.assertEqual(r.json()["name"], "ops-admin")

    def test_wrong_role_gets_403(self):
        viewer = self.s.key("viewer")
        self.assertEqual(self.s.request("GET", "/api/v1/whoami", key=viewer).status, 200)
        r = self.s.request("GET", "/api/v1/keys", key=viewer)
        self.assertError(r, 403, "forbidden", contains="role viewer may not")

    def test_dept_key_carries_department(self):
        dept = self.s.key("dept", "--department", "CGJ", "--name", "城管局")
        me = self.s.request("GET", "/api/v1/whoami", key=dept).json()
        self.assertEqual((me["role"], me["department"], me["name"]), ("dept", "CGJ", "城管局"))

    def test_api_creates_lists_and_revokes_keys(self):
        r = self.s.request("POST", "/api/v1/keys", {"role": "operator", "name": "值班长"},
                           key=self.admin)
        self.assertEqual(r.status, 201, r)
        new = r.json()
        self.assertEqual(self.s.request("GET", "/api/v1/whoami", key=new["key"]).status, 200)
        listed = self.s.request("GET", "/api/v1/keys", key=self.admin).json()["keys"]
        self.assertIn(new["id"], [k["id"] for k in listed])
        self.assertNotIn(new["key"][16:], self.s.request("GET", "/api/v1/keys", key=self.admin).body)
        r = self.s.request("DELETE", "/api/v1/keys/" + new["id"], key=self.admin)
        self.assertEqual(r.status, 200, r)
        self.assertError(self.s.request("GET", "/api/v1/whoami", key=new["key"]), 401,
                         "unauthorized", contains="revoked")
        self.assertError(self.s.request("DELETE", "/api/v1/keys/" + new["id"], key=self.admin),
                         409, "conflict")
        self.assertError(self.s.request("DELETE", "/api/v1/keys/ffffffffffff", key=self.admin),
                         404, "not_found")

    def test_cli_revocation_takes_effect_on_the_running_server(self):
        op = self.s.key("operator")
        self.assertEqual(self.s.request("GET", "/api/v1/whoami", key=op).status, 200)
        key_id = op.split("_")[1]
        cli("key", "revoke", key_id, data_dir=self.s.data_dir)
        self.assertError(self.s.request("GET", "/api/v1/whoami", key=op), 401, "unauthorized")
        listing = cli("key", "list", data_dir=self.s.data_dir).stdout
        self.assertRegex(listing, key_id + r".*\(revoked\)")


class Errors(ServerTestCase):
    def setUp(self):
        self.s = self.start_server("--max-body", "4K")
        self.admin = self.s.key("admin")

    def test_malformed_json_names_the_position(self):
        r = self.s.request("POST", "/api/v1/keys", '{"role": ', key=self.admin,
                           headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "invalid_json", field="body", contains="line 1, column")

    def test_validation_names_the_field(self):
        r = self.s.request("POST", "/api/v1/keys", {"name": "x"}, key=self.admin)
        self.assertError(r, 400, "missing_field", field="role")
        r = self.s.request("POST", "/api/v1/keys", {"role": "mayor"}, key=self.admin)
        self.assertError(r, 400, "invalid_field", field="role", contains="mayor")
        r = self.s.request("POST", "/api/v1/keys", {"role": "dept"}, key=self.admin)
        self.assertError(r, 400, "missing_field", field="department")
        r = self.s.request("POST", "/api/v1/keys", {"role": "viewer", "name": 7}, key=self.admin)
        self.assertError(r, 400, "invalid_field", field="name")

    def test_wrong_content_type_is_415(self):
        r = self.s.request("POST", "/api/v1/keys", "role=viewer", key=self.admin,
                           headers={"Content-Type": "text/plain"})
        self.assertError(r, 415, "unsupported_media_type", field="Content-Type")

    def test_unknown_route_and_method(self):
        self.assertError(self.s.request("GET", "/api/v1/nothing", key=self.admin), 404, "not_found")
        r = self.s.request("PUT", "/api/v1/keys", {}, key=self.admin)
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(r.headers["allow"], "GET, POST")

    def test_oversized_body_is_413(self):
        r = self.s.request("POST", "/api/v1/keys", {"role": "viewer", "name": "x" * 8000},
                           key=self.admin)
        self.assertError(r, 413, "payload_too_large", contains="4096")
        # The server is still fine afterwards.
        self.assertEqual(self.s.request("GET", "/healthz").status, 200)

    def test_oversized_headers_are_refused(self):
        r = self.s.request("GET", "/healthz", headers={"X-Big": "y" * 40000})
        self.assertGreaterEqual(r.status, 400)
        self.assertLess(r.status, 500)
        self.assertEqual(self.s.request("GET", "/healthz").status, 200)


class MetricsAndLogs(ServerTestCase):
    def test_metrics_count_requests_and_show_build_and_schema(self):
        s = self.start_server()
        viewer = s.key("viewer")
        for _ in range(3):
            s.request("GET", "/healthz")
        s.request("GET", "/api/v1/whoami")
        self.assertError(s.request("GET", "/metrics"), 401, "unauthorized")
        m = s.request("GET", "/metrics", key=viewer)
        self.assertEqual(m.status, 200)
        self.assertTrue(m.headers["content-type"].startswith("text/plain"))
        self.assertRegex(m.body, r'citybrain_http_requests_total\{route="GET /healthz",status="200"\} [34]\b')
        self.assertIn('citybrain_http_requests_total{route="GET /api/v1/whoami",status="401"} 1', m.body)
        self.assertIn('citybrain_http_request_duration_seconds_bucket{route="GET /healthz",le="+Inf"}', m.body)
        self.assertRegex(m.body, r'citybrain_build_info\{version="[^"]+",commit="[^"]+"\} 1')
        self.assertRegex(m.body, r"citybrain_schema_version [1-9]")
        self.assertRegex(m.body, r"citybrain_http_open_connections \d+")
        self.assertRegex(m.body, r"citybrain_uptime_seconds [0-9.]+")

    def test_one_log_line_per_request_with_principal(self):
        s = self.start_server()
        op = s.key("operator")
        s.request("GET", "/api/v1/whoami", key=op)
        time.sleep(0.2)
        key_id = op.split("_")[1]
        self.assertRegex(s.log_text(), r"event=request method=GET route=/api/v1/whoami "
                         r"path=/api/v1/whoami status=200 dur_ms=[0-9.]+ principal=" + key_id)

    def test_log_level_from_config_file_and_flag_override(self):
        s = self.start_server("--log-level", "warn", config_text="log_level debug\nmax_body 1M\n")
        s.request("GET", "/healthz")
        time.sleep(0.2)
        self.assertNotIn("event=request", s.log_text())


class Lifecycle(ServerTestCase):
    def test_sigterm_exits_zero(self):
        s = self.start_server()
        self.assertEqual(s.stop(signal.SIGTERM), 0)
        self.assertIn("event=stopped", s.log_text())

    def test_sigint_exits_zero(self):
        s = self.start_server()
        self.assertEqual(s.stop(signal.SIGINT), 0)

    def test_shutdown_drains_a_request_in_flight(self):
        s = self.start_server()
        admin = s.key("admin")
        body = b'{"role": "viewer", "name": "drain"}'
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     admin.encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertIsNone(s.proc.poll(), "server exited with a request in flight")
        # New connections are refused while draining.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
        sock.sendall(body[10:])
        reply = sock.recv(65536).decode()
        sock.close()
        self.assertTrue(reply.startswith("HTTP/1.1 201"), reply)
        self.assertEqual(s.proc.wait(timeout=15), 0)

    def test_slow_client_is_disconnected(self):
        s = self.start_server("--connection-timeout", "1")
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        sock.settimeout(10)
        start = time.time()
        data = sock.recv(1024)
        sock.close()
        self.assertEqual(data, b"")
        self.assertLess(time.time() - start, 8)
        self.assertEqual(s.request("GET", "/healthz").status, 200)

    def test_port_in_use_fails_clearly(self):
        s = self.start_server()
        p = subprocess.run([BIN, "serve", "--data-dir", s.data_dir + "2", "--listen", "127.0.0.1",
                            "--port", str(s.port)], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot listen", p.stderr)

    def test_static_home_page(self):
        s = self.start_server()
        r = s.request("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertIn("城市大脑", r.body)


class CommandLine(unittest.TestCase):
    def test_help_lists_every_command_and_each_has_help(self):
        out = cli("--help").stdout
        commands = re.findall(r"^  (\w+) ", out, re.M)
        self.assertGreaterEqual(set(commands), {"serve", "key", "info", "config", "routes", "errors"})
        for c in commands:
            p = cli(c, "--help")
            self.assertIn("usage: citybrain " + c, p.stdout)
        self.assertIn("--data-dir", cli("serve", "--help").stdout)
        self.assertIn("--wal-fsync", cli("serve", "--help").stdout)

    def test_unknown_command_and_bad_flags_fail(self):
        self.assertEqual(cli("fly", check=False).returncode, 2)
        p = cli("serve", "--port", "99999", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("outside 1..65535", p.stderr)

    def test_test_config_validates_files(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("port 8081\nwal_fsync maybe\n")
        p = cli("--test-config", f.name, check=False)
        os.unlink(f.name)
        self.assertEqual(p.returncode, 1)
        self.assertIn(":2:", p.stderr)
        self.assertIn("wal_fsync", p.stderr)

    def test_shipped_reference_config_matches_the_binary(self):
        here = os.path.join(os.path.dirname(__file__), "..", "..", "citybrain.conf")
        with open(here) as f:
            shipped = f.read()
        self.assertEqual(shipped, cli("config", "reference").stdout,
                         "citybrain.conf is stale: run `./citybrain config reference > citybrain.conf`")
        self.assertEqual(cli("--test-config", here).returncode, 0)

    def test_info_shows_schema_version(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="cb_info_")
        out = cli("info", data_dir=d + "/data").stdout
        self.assertRegex(out, r"schema_version\s+[1-9]\d* \(this binary knows [1-9]")
        import shutil
        shutil.rmtree(d)

    def test_errors_table_lists_codes(self):
        out = cli("errors").stdout
        for code in ("invalid_field", "unauthorized", "forbidden", "payload_too_large", "storage_full"):
            self.assertIn("`%s`" % code, out)


if __name__ == "__main__":
    unittest.main()
