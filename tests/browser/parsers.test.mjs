// The dashboard's two text parsers, without a browser: Server-Sent Events
// framing (stream.js) and the readings counter in /metrics (sensing.js).

import assert from "node:assert/strict";
import { test } from "node:test";
import { acceptedReadings } from "../../web/js/sensing.js";
import { parseSse } from "../../web/js/stream.js";

test("parseSse splits events, joins data lines, skips comments and keeps the unfinished rest", () => {
  const text = "retry: 3000\n: citybrain events\n\nid: 7\nevent: case.created\ndata: {\"a\":\ndata: 1}\n\n" +
    "id: 8\r\nevent: alarm.raised\r\ndata:{}\r\n\r\nid: 9\nevent: gap";
  const [events, rest] = parseSse(text);
  assert.deepEqual(events, [
    { id: "7", type: "case.created", data: "{\"a\":\n1}" },
    { id: "8", type: "alarm.raised", data: "{}" },
  ]);
  assert.equal(rest, "id: 9\nevent: gap");
  const [more] = parseSse(rest + "\ndata: {}\n\n");
  assert.deepEqual(more, [{ id: "9", type: "gap", data: "{}" }]);
});

test("acceptedReadings reads the accepted counter and nothing else", () => {
  const metrics = "# TYPE citybrain_ingest_readings_total counter\n" +
    "citybrain_ingest_readings_total{result=\"rejected\"} 4\n" +
    "citybrain_ingest_readings_total{result=\"accepted\"} 1528\n";
  assert.equal(acceptedReadings(metrics), 1528);
  assert.equal(acceptedReadings("citybrain_up 1\n"), null);
});
