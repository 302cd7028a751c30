"""The crash test (DESIGN.md §4): clients ingest continuously over JSON and
line protocol while the server is killed with SIGKILL at random moments and
restarted; after every restart each acknowledged reading must be there.

Each entity carries a counter attribute `seq` that only grows, written with
growing timestamps, so "every acknowledged reading is there" reads:
latest seq >= the highest seq of a batch that got 200, and the entity's
`readings` counter >= the readings acknowledged for it (and <= those ever
sent, so a replay that applies a record twice is caught too). Checkpoints run
every second, so kills land before, during and after them."""
import http.client
import json
import os
import random
import signal
import threading
import time
import unittest

from harness import Response, Server, ServerTestCase

ENTITIES_PER_CLIENT = 4
CLIENTS = 3


class Ledger:
    """What the clients sent and what the server acknowledged, per entity."""

    def __init__(self, ids):
        self.lock = threading.Lock()
        self.acked_seq = {i: 0 for i in ids}
        self.acked = {i: 0 for i in ids}
        self.sent = {i: 0 for i in ids}
        self.batches_ok = 0

    def snapshot(self):
        with self.lock:
            return dict(self.acked_seq), dict(self.acked), dict(self.sent)


class Client(threading.Thread):
    """Writes batches for its own entities, alternating JSON and line protocol."""

    def __init__(self, server, key, ids, ledger, rng):
        super().__init__(daemon=True)
        self.s, self.key, self.ids, self.ledger, self.rng = server, key, ids, ledger, rng
        self.seq = {i: 0 for i in ids}
        self.ts = {i: 0 for i in ids}
        self.stop = threading.Event()
        self.unexpected = []

    def next_reading(self, eid):
        self.seq[eid] += 1
        self.ts[eid] = max(int(time.time() * 1000), self.ts[eid] + 1)
        return self.seq[eid], self.ts[eid]

    def post(self, path, body, content_type):
        """The response, or None when the connection failed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=5)
        try:
            conn.request("POST", path, body=body, headers={"Authorization": "Bearer " + self.key,
                                                           "Content-Type": content_type})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def one_batch(self, use_lp):
        per = self.rng.randint(1, 5)
        items, lines, top, count = [], [], {}, {}
        for eid in self.ids:
            for _ in range(per):
                seq, ts = self.next_reading(eid)
                v = round(self.rng.uniform(0, 100), 3)
                items.append({"entity": eid, "ts": ts, "values": {"seq": seq, "v": v}})
                lines.append(f"crash,id={eid} seq={seq}i,v={v} {ts}")
                top[eid] = seq
                count[eid] = count.get(eid, 0) + 2
        with self.ledger.lock:
            for eid, n in count.items():
                self.ledger.sent[eid] += n
        if use_lp:
            r = self.post("/api/v1/write?precision=ms", "\n".join(lines).encode(), "text/plain")
        else:
            r = self.post("/api/v1/ingest", json.dumps({"readings": items}).encode(), "application/json")
        if r is None:  # the server died under us: not acknowledged
            return False
        if r.status != 200:
            if r.status != 503:
                self.unexpected.append(r)
            return False
        body = r.json()
        if body["rejected"] or body["accepted"] != sum(count.values()):
            self.unexpected.append(r)
            return False
        with self.ledger.lock:
            for eid, seq in top.items():
                self.ledger.acked_seq[eid] = max(self.ledger.acked_seq[eid], seq)
                self.ledger.acked[eid] += count[eid]
            self.ledger.batches_ok += 1
        return True

    def run(self):
        n = 0
        while not self.stop.is_set():
            if not self.one_batch(use_lp=n % 2 == 1):
                time.sleep(0.01)
            n += 1


class CrashTest(ServerTestCase):
    def restart(self, s, sig):
        s.stop(sig)
        s.log.close()
        s.start()

    def check(self, s, key, ledger, when):
        # acknowledgements before the reads, what was sent after them: clients keep writing meanwhile
        acked_seq, acked, _ = ledger.snapshot()
        got = {}
        for eid in acked_seq:
            r = s.request("GET", "/api/v1/entities/" + eid, key=key)
            self.assertEqual(r.status, 200, f"{when}: {r}")
            got[eid] = r.json()
        _, _, sent = ledger.snapshot()
        for eid, e in got.items():
            seq = e["values"].get("seq", {}).get("value", 0)
            self.assertGreaterEqual(seq, acked_seq[eid], f"{when}: {eid} lost acknowledged readings: "
                                                          f"latest seq {seq} < acknowledged {acked_seq[eid]}")
            self.assertGreaterEqual(e["readings"], acked[eid], f"{when}: {eid} readings counter {e['readings']} "
                                                                f"< {acked[eid]} acknowledged")
            self.assertLessEqual(e["readings"], sent[eid], f"{when}: {eid} counted {e['readings']} readings "
                                                            f"but only {sent[eid]} were sent")

    def crash_loop(self, fsync, kills, run_s):
        seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 1000000))
        rng = random.Random(seed)
        s = Server("--wal-fsync", fsync, "--checkpoint-interval", "1")
        self._servers.append(s)
        self.addCleanup(s.cleanup)
        s.start()
        key = s.key("admin")
        ids = [f"urn:crash:{fsync}:{i}" for i in range(CLIENTS * ENTITIES_PER_CLIENT)]
        r = s.request("POST", "/api/v1/entities", {"entities": [{"id": i, "type": "Counter"} for i in ids]}, key=key)
        self.assertEqual(r.json()["created"], len(ids), r)
        ledger = Ledger(ids)
        clients = [Client(s, key, ids[c::CLIENTS], ledger, random.Random(seed + c + 1)) for c in range(CLIENTS)]
        for c in clients:
            c.start()
        try:
            for k in range(kills):
                time.sleep(rng.uniform(*run_s))
                self.assertIsNone(s.proc.poll(), f"seed {seed}: the server exited by itself")
                self.restart(s, signal.SIGKILL)
                self.check(s, key, ledger, f"seed {seed}, fsync {fsync}, after kill {k + 1}")
        finally:
            for c in clients:
                c.stop.set()
            for c in clients:
                c.join(10)
        self.check(s, key, ledger, f"seed {seed}, fsync {fsync}, clients stopped")
        self.restart(s, signal.SIGTERM)
        self.check(s, key, ledger, f"seed {seed}, fsync {fsync}, after SIGTERM")
        for c in clients:
            self.assertEqual(c.unexpected, [], f"seed {seed}: responses other than 200/503")
        # the test did something: many batches acknowledged, WAL replayed, checkpoints taken
        self.assertGreater(ledger.batches_ok, kills * 5, f"seed {seed}")
        log = s.log_text()
        self.assertGreaterEqual(log.count("event=replay"), kills, "replays")
        return ledger

    def test_kill_9_everysec_loses_no_acknowledged_reading(self):
        self.crash_loop("everysec", kills=22, run_s=(0.05, 0.8))

    def test_kill_9_fsync_always_loses_no_acknowledged_reading(self):
        self.crash_loop("always", kills=6, run_s=(0.1, 0.8))


if __name__ == "__main__":
    unittest.main()
