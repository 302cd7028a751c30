"""Integration tests of `citybrain cases list|show|report|act`: the CLI
drives a real server over HTTP. The README's walk-through (the ```sh block
under <!-- cli-example -->) is run line by line as written, with the new
case's id in place of the example's, and every step is checked through the
API; then refusals (409, 401) exit 1 with the server's message and an
unreachable server exits 2."""
import json
import os
import re
import shlex
import subprocess
import tempfile
import unittest

from harness import BIN, REPO, ServerTestCase, cli, free_port

EXAMPLE_ID = "C20261123-000001"
# what each step of the walk-through leaves the case in
AFTER = {"report": "dispatched", "start": "in_progress", "handle": "handled", "check": "checked",
         "close": "closed", "evaluate": "evaluated"}


def readme_example():
    """The lines of the ```sh block under the <!-- cli-example --> marker."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- cli-example -->\s*```sh\n(.*?)```", text, re.S)
    assert m, "README.md has no <!-- cli-example --> block"
    return [line for line in m.group(1).splitlines() if line.strip() and not line.startswith("#")]


class CasesCliTest(ServerTestCase):
    def setUp(self):
        s = self.start_city_server()
        self.s = s
        self.admin = s.key("admin")
        self.dir = tempfile.mkdtemp(prefix="cb_cli_")
        self.env = dict(os.environ, CITYBRAIN_URL=f"http://127.0.0.1:{s.port}")
        self.env.pop("CITYBRAIN_KEY", None)

    def run_cli(self, *args, env=None):
        return subprocess.run([BIN, "cases", *args], capture_output=True, text=True, timeout=60, cwd=self.dir,
                              env=env or self.env)

    def case(self, cid):
        r = self.s.request("GET", f"/api/v1/cases/{cid}", key=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def write_key(self, name, role, *extra):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(self.s.key(role, *extra) + "\n")
        return path

    def test_readme_walkthrough(self):
        lines = readme_example()
        self.assertGreaterEqual(len(lines), 8)
        cid = None
        steps = []
        for line in lines:
            argv = shlex.split(line)
            if argv[0] == "export":
                continue
            self.assertEqual(argv[0], "citybrain", line)
            if argv[1] == "key":  # `citybrain key create ... > FILE`: against the server's data dir
                self.assertEqual(argv[-2], ">", line)
                p = cli(*argv[1:-2], data_dir=self.s.data_dir)
                with open(os.path.join(self.dir, argv[-1]), "w") as f:
                    f.write(p.stdout)
                continue
            self.assertEqual(argv[1], "cases", line)
            if cid:
                argv = [cid if a == EXAMPLE_ID else a for a in argv]
            p = self.run_cli(*argv[2:])
            self.assertEqual(p.returncode, 0, f"{line}\n{p.stderr}")
            step = argv[2] if argv[2] != "act" else argv[4]
            steps.append(step)
            if step == "report":
                cid = p.stdout.split()[0]
                self.assertRegex(cid, r"^C\d{8}-\d{6}$")
                c = self.case(cid)
                self.assertEqual(c["channel"], "hotline")
                self.assertEqual(c["category"], "01001")
                self.assertEqual(c["department"], "water")
                self.assertEqual(c["district"], "410802")
                self.assertEqual(c["reporter"]["name"], "张三丰")
            if step in AFTER:
                c = self.case(cid)
                self.assertEqual(c["status"], AFTER[step], line)
                self.assertIn(f"{cid}  {AFTER[step]} (", p.stdout)
            if step == "show":
                self.assertIn(f"id: {cid}\n", p.stdout)
                self.assertIn("status: evaluated\n", p.stdout)
                self.assertIn("rating: 满意\n", p.stdout)
                self.assertIn("history:\n", p.stdout)
                self.assertIn("handled -> checked  check", p.stdout)
                self.assertIn("已更换井盖", p.stdout)
            if step == "list":
                out = p.stdout.splitlines()
                self.assertTrue(out[0].startswith("id "), out)
                for col in ("status_name", "category_name", "district_name", "department_name", "deadline", "timer"):
                    self.assertIn(col, out[0])
                self.assertEqual(len(out), 2, out)
                self.assertTrue(out[1].startswith(cid), out)
                self.assertIn("已评价", out[1])
                self.assertIn("解放区", out[1])
        self.assertEqual(steps, ["report", "start", "handle", "check", "close", "evaluate", "show", "list"])
        c = self.case(cid)
        self.assertEqual(c["rating"], "满意")
        self.assertEqual([h["to"] for h in c["history"]],
                         ["reported", "accepted", "filed", "dispatched", "in_progress", "handled", "checked", "closed",
                          "evaluated"])
        roles = {h["action"]: h["role"] for h in c["history"]}
        self.assertEqual(roles["start"], "dept")  # the water key acted, not some admin shortcut
        self.assertEqual(roles["close"], "operator")

    def test_json_and_filters(self):
        op = self.write_key("op.key", "operator")
        p = self.run_cli("report", "--key-file", op, "--channel", "hotline", "--category", "01001", "--description",
                         "井盖松动", "--lon", "113.230", "--lat", "35.230", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        made = json.loads(p.stdout)
        cid = made["id"]
        p = self.run_cli("show", cid, "--json", env=dict(self.env, CITYBRAIN_KEY=self.admin))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["id"], cid)
        p = self.run_cli("list", "--key-file", op, "--q", "井盖", "--json")
        self.assertEqual([c["id"] for c in json.loads(p.stdout)["cases"]], [cid])
        p = self.run_cli("list", "--key-file", op, "--status", "closed")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)  # the header only
        p = self.run_cli("act", cid, "dispatch", "--key-file", op, "--department", "cg-410802")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.case(cid)["department"], "cg-410802")

    def test_refusals(self):
        op = self.write_key("op.key", "operator")
        p = self.run_cli("report", "--key-file", op, "--channel", "hotline", "--category", "01001", "--description",
                         "井盖缺失", "--lon", "113.230", "--lat", "35.230")
        self.assertEqual(p.returncode, 0, p.stderr)
        cid = p.stdout.split()[0]
        # an action the state does not allow: exit 1 with the 409's message
        api = self.s.request("POST", f"/api/v1/cases/{cid}/close", {}, key=self.admin)
        self.assertEqual(api.status, 409, api)
        p = self.run_cli("act", cid, "close", "--key-file", op)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("409", p.stderr)
        self.assertIn(api.json()["error"]["message"], p.stderr)
        self.assertEqual(self.case(cid)["status"], "dispatched")
        # a field error names the field
        p = self.run_cli("report", "--key-file", op, "--channel", "hotline", "--category", "99999", "--description",
                         "x", "--lon", "113.230", "--lat", "35.230")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("(field: category)", p.stderr)
        # a bad key: exit 1 with the 401's message
        bad = os.path.join(self.dir, "bad.key")
        with open(bad, "w") as f:
            f.write("cb_notakey\n")
        api = self.s.request("GET", "/api/v1/cases", key="cb_notakey")
        self.assertEqual(api.status, 401, api)
        p = self.run_cli("list", "--key-file", bad)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("401", p.stderr)
        self.assertIn(api.json()["error"]["message"], p.stderr)
        # nobody listening: exit 2
        p = self.run_cli("list", "--key-file", op, "--url", f"http://127.0.0.1:{free_port()}")
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("127.0.0.1", p.stderr)
        # usage errors: exit 2 without asking the server
        self.assertEqual(self.run_cli("act", cid).returncode, 2)
        self.assertEqual(self.run_cli("act", cid, "check", "--passed", "maybe", "--key-file", op).returncode, 2)
        self.assertEqual(self.run_cli("list", "--bogus", "--key-file", op).returncode, 2)
        self.assertEqual(self.run_cli("show", cid, "--key-file", os.path.join(self.dir, "missing.key")).returncode, 2)

    def test_help(self):
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("cases list|show|report|act", p.stdout)
        p = self.run_cli("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("same roles, workflow table, events and timers", p.stdout.replace("\n", " "))
        self.assertIn("$CITYBRAIN_URL", p.stdout)
        p = self.run_cli("workflow")
        self.assertEqual(p.returncode, 0)
        self.assertIn("| dispatched (已派遣) | `start` | in_progress |", p.stdout)


if __name__ == "__main__":
    unittest.main()
