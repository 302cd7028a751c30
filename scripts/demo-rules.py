#!/usr/bin/env python3
"""The demo city's alarm rules (预测预警), made through the public API by
scripts/run-demo.sh on the first run: a river level above its warning mark,
a tilted manhole cover, smoke from several detectors in one grid cell, water
level sensors gone silent, and each district's hazardous-goods truck (the
first vehicle citysim places there) kept inside its district.

usage: demo-rules.py URL KEYFILE"""
import json
import sys
import urllib.error
import urllib.request


def call(url, key, method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


RULES = [
    {"id": "demo-water-level", "name": "河道水位超警戒", "kind": "threshold", "scope": {"type": "WaterLevelSensor"},
     "attr": "level_m", "op": ">", "value": 3.2, "clear": 3.0, "severity": "critical", "category": "防汛",
     "dedup_s": 300},
    {"id": "demo-manhole-tilt", "name": "井盖倾斜或移位", "kind": "threshold", "scope": {"type": "ManholeCover"},
     "attr": "tilt_deg", "op": ">=", "value": 15, "clear": 5, "severity": "major",
     "category": "市政设施", "open_case": {"category": "51003"}},
    {"id": "demo-smoke-cell", "name": "网格内多点烟感报警", "kind": "region_count", "scope": {"type": "SmokeDetector"},
     "attr": "smoke", "op": "==", "value": 1, "count": 2, "window_s": 300, "group": "grid",
     "severity": "critical", "category": "消防"},
    {"id": "demo-water-offline", "name": "水位站离线", "kind": "nodata", "scope": {"type": "WaterLevelSensor"},
     "seconds": 300, "severity": "minor", "category": "设备运维"},
]


def main():
    url, key = sys.argv[1], open(sys.argv[2]).read().strip()
    rules = list(RULES)
    status, regions = call(url, key, "GET", "/api/v1/regions?level=district")
    for d in (regions or {}).get("regions", []) if status == 200 else []:
        status, feature = call(url, key, "GET", "/api/v1/regions/" + d["code"])
        if status != 200:
            continue
        rules.append({"id": "demo-hazmat-" + d["code"], "name": f"危化品车辆驶出{d['name']}通行区域",
                      "kind": "geofence", "on": "exit", "polygon": feature["geometry"],
                      "scope": {"entities": [f"urn:ngsi-ld:Vehicle:jz-{d['code']}-1"]},
                      "severity": "critical", "category": "危化品运输"})
    failed = 0
    for r in rules:
        status, body = call(url, key, "POST", "/api/v1/rules", r)
        if status not in (201, 409):
            failed += 1
            print(f"rule {r['id']}: {status} {body}", file=sys.stderr)
    print(f"  rules:         {len(rules) - failed} demo alarm rules (GET /api/v1/rules)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
