"""The MQTT door over a real Mosquitto (DESIGN.md §6): devices publish to
city/<entity-id>/telemetry with their token; citybrain subscribes at QoS 1
under a persistent session and acknowledges after the WAL append.

Each test starts its own broker (scripts/mosquitto.sh) on the server's data
directory, so the broker reads the passwd and acl files citybrain writes."""
import os
import re
import shutil
import time
import unittest
import urllib.parse

from harness import Broker, Server, ServerTestCase

NEEDS = [c for c in ("mosquitto", "mosquitto_pub")
         if not shutil.which(c) and not os.path.exists("/usr/sbin/" + c)]


@unittest.skipIf(NEEDS, f"needs {NEEDS} (Debian: mosquitto, mosquitto-clients)")
class MqttTest(ServerTestCase):
    flags = ()

    def setUp(self):
        self.server = Server(*self.flags)
        self.broker = Broker(self.server.data_dir)
        self.server.argv += self.broker.flags()
        self.addCleanup(self.broker.cleanup)
        self.addCleanup(self.server.cleanup)
        self._servers = getattr(self, "_servers", []) + [self.server]
        self.broker.start()
        self.server.start()
        self.admin = self.server.key("admin")

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before and hasattr(self, "broker"):
            print(f"\n----- broker log ({self.broker.log_path}) -----\n{self.broker.log_text()}-----")
        return out

    # --- helpers ---

    def device(self, eid, etype="AirQualityObserved"):
        r = self.server.request("POST", "/api/v1/entities", key=self.admin,
                                body={"id": eid, "type": etype, "location": [113.24, 35.21], "device": True})
        self.assertEqual(r.status, 201, r)
        token = r.json()["token"]
        return token.rsplit("_", 1)[0], token  # MQTT user, password

    def values(self, eid):
        r = self.server.request("GET", "/api/v1/entities/" + urllib.parse.quote(eid, safe=":"), key=self.admin)
        self.assertEqual(r.status, 200, r)
        return r.json().get("values", {})

    def wait_value(self, eid, attr, value, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.values(eid).get(attr)
            if v is not None and v["value"] == value:
                return
            time.sleep(0.05)
        self.fail(f"{eid}.{attr} never became {value}; values: {self.values(eid)}")

    def publish_ok(self, user, token, eid, payload):
        p = self.broker.publish(user, token, f"city/{eid}/telemetry", payload)
        self.assertEqual(p.returncode, 0, p.stderr)

    def metric(self, name, **labels):
        text = self.server.request("GET", "/metrics", key=self.admin).body
        sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
        m = re.search(rf"^{name}{{{re.escape(sel)}}} (\S+)$" if sel else rf"^{name} (\S+)$", text, re.M)
        self.assertIsNotNone(m, f"{name} {labels} not in /metrics")
        return float(m.group(1))

    # --- tests ---

    def test_device_telemetry_arrives(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-1"
        user, token = self.device(eid)
        self.publish_ok(user, token, eid, '{"pm25": 35.2, "no2": 18}')
        self.wait_value(eid, "pm25", 35.2)
        self.assertEqual(self.values(eid)["no2"]["value"], 18)
        self.assertGreaterEqual(self.metric("citybrain_mqtt_messages_total", outcome="stored"), 1)
        self.assertEqual(self.metric("citybrain_mqtt_connected"), 1)

    def test_wrong_token_is_refused(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-2"
        user, token = self.device(eid)
        p = self.broker.publish(user, token[:-1] + ("0" if token[-1] != "0" else "1"),
                                f"city/{eid}/telemetry", '{"pm25": 1}')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not authorised", p.stderr)
        p = self.broker.publish(eid, token, f"city/{eid}/telemetry", '{"pm25": 1}')  # id is not the user
        self.assertNotEqual(p.returncode, 0)

    def test_acl_keeps_a_device_to_its_own_topic(self):
        a, b = "urn:ngsi-ld:ParkingSpot:jz-mqtt-a", "urn:ngsi-ld:ParkingSpot:jz-mqtt-b"
        user_a, token_a = self.device(a, "ParkingSpot")
        user_b, token_b = self.device(b, "ParkingSpot")
        self.publish_ok(user_a, token_a, b, '{"occupied": 1}')  # the broker acks and drops it
        self.publish_ok(user_b, token_b, b, '{"free": 1}')      # in order after it, so it went first
        self.wait_value(b, "free", 1)
        self.assertNotIn("occupied", self.values(b))

    def test_revoked_token_is_refused(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-rv"
        user, token = self.device(eid)
        r = self.server.request("DELETE", f"/api/v1/entities/{eid}/token", key=self.admin)
        self.assertEqual(r.status, 200, r)
        deadline = time.time() + 10
        while self.broker.publish(user, token, f"city/{eid}/telemetry", '{"pm25": 1}').returncode == 0:
            self.assertLess(time.time(), deadline, "the broker still takes a revoked token")
            time.sleep(0.1)

    def test_bad_messages_are_counted_not_fatal(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-bad"
        user, token = self.device(eid)
        self.publish_ok(user, token, eid, "not json")
        self.publish_ok(user, token, eid, '{"pm25": "x", "ts": "yesterday"}')
        self.publish_ok(user, token, eid, '{"pm25": ' + "1" * 300000 + "}")  # over mqtt_max_payload
        self.publish_ok(user, token, eid, '{"pm25": 7}')
        self.wait_value(eid, "pm25", 7)
        self.assertGreaterEqual(self.metric("citybrain_mqtt_messages_total", outcome="bad_payload"), 2)
        self.assertEqual(self.metric("citybrain_mqtt_messages_total", outcome="too_large"), 1)
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_reconnects_after_a_broker_restart(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-rs"
        user, token = self.device(eid)
        self.publish_ok(user, token, eid, '{"pm25": 1}')
        self.wait_value(eid, "pm25", 1)
        self.broker.stop()
        self.broker.start()
        self.publish_ok(user, token, eid, '{"pm25": 2}')  # queued for citybrain's session if it is not back yet
        self.wait_value(eid, "pm25", 2)
        self.assertGreaterEqual(self.metric("citybrain_mqtt_connects_total"), 2)

    def test_messages_published_while_citybrain_is_down_arrive(self):
        eid = "urn:ngsi-ld:AirQualityObserved:jz-mqtt-down"
        user, token = self.device(eid)
        self.publish_ok(user, token, eid, '{"pm25": 0}')
        self.wait_value(eid, "pm25", 0)
        self.assertEqual(self.server.stop(), 0)
        for i in range(1, 21):
            self.publish_ok(user, token, eid, '{"count": %d}' % i)
        self.server.start()
        self.wait_value(eid, "count", 20)
        r = self.server.request("GET", "/api/v1/entities/" + eid, key=self.admin)
        self.assertEqual(r.json()["readings"], 21, r)


@unittest.skipIf(NEEDS, f"needs {NEEDS}")
class MqttOffTest(ServerTestCase):
    def test_mqtt_off_starts_without_a_broker(self):
        t0 = time.time()
        s = self.start_server("--mqtt", "off")
        self.assertLess(time.time() - t0, 10)
        self.assertNotIn("citybrain_mqtt_connected", s.request("GET", "/metrics", key=s.key("admin")).body)

    def test_absent_broker_does_not_delay_start(self):
        s = self.start_server("--mqtt-port", "1")  # nothing listens there
        self.assertEqual(s.request("GET", "/healthz").status, 200)
        self.assertIn("mqtt_unreachable", s.log_text())


if __name__ == "__main__":
    unittest.main()
