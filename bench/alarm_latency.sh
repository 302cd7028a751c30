#!/usr/bin/env bash
# bench/alarm_latency.sh — how soon an alarm reaches the operations centre's
# screen: from the acknowledgement of the reading that crosses a limit to its
# alarm event on GET /api/v1/stream (SSE), p50/p99, with BENCH_RULES (10,000)
# rules active, measured twice in the same run:
#   idle  — nothing else going on (the floor: writer → rules → events → SSE);
#   load  — while bench/loadgen.c sends line protocol on BENCH_CONNECTIONS
#           connections, paced to BENCH_LOAD_RATE (200,000) readings/s, to BENCH_ENTITIES
#           entities whose readings are evaluated against rules too.
# Prints the latencies, the background rate achieved and load/idle ratios;
# asserts no timing.
#
# The server checkpoints every BENCH_CHECKPOINT_INTERVAL (5) s instead of the
# default 60, so that each probe run meets a few checkpoints and history
# flushes (they hold SQLite's write lock for up to a second): the tail this
# prints includes them.
#
# Knobs (environment): BENCH_RULES (10000), BENCH_PROBES (200), BENCH_ENTITIES
# (100000), BENCH_CONNECTIONS (2), BENCH_LOAD_RATE (200000), BENCH_CHECKPOINT_INTERVAL (5),
# CITYBRAIN_BIN (./citybrain, built if missing), CC (cc).
# Exit status: 0, or 1 if a client saw a wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=${BENCH_RULES:-10000}
PROBES=${BENCH_PROBES:-200}
ENTITIES=${BENCH_ENTITIES:-100000}
CONNS=${BENCH_CONNECTIONS:-2}
LOAD_RATE=${BENCH_LOAD_RATE:-200000}
CHECKPOINT=${BENCH_CHECKPOINT_INTERVAL:-5}
BIN=${CITYBRAIN_BIN:-./citybrain}
CC=${CC:-cc}

[ -x "$BIN" ] || make -s citybrain
mkdir -p build/bench
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread -o build/bench/loadgen bench/loadgen.c
LOADGEN=build/bench/loadgen
PROBE="python3 bench/alarm_probe.py"

. bench/lib.sh

DIR=$TMP/data
mkdir -p "$DIR"
KEY=$("$BIN" key create --role admin --name bench --data-dir "$DIR" 2>/dev/null | awk '/^cb_/ { print $1; exit }')
PORT=$(free_port)
"$BIN" serve --data-dir "$DIR" --listen 127.0.0.1 --port "$PORT" --log-level warn --web-dir web --mqtt off \
    --checkpoint-interval "$CHECKPOINT" >"$TMP/log" 2>&1 &
PID=$!
PIDS+=("$PID")
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "bench: citybrain did not start:" >&2; cat "$TMP/log" >&2; exit 1; }

STATUS=0
CORES=$(nproc)
echo "== citybrain alarm latency: reading acknowledged → alarm event on the SSE stream"
echo "   $CORES cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   checkpoints every $CHECKPOINT s"
SETUP=$($PROBE setup -p "$PORT" -k "$KEY" -r "$RULES")
"$LOADGEN" -p "$PORT" -k "$KEY" -n "$ENTITIES" create >/dev/null || STATUS=1
echo "   $(field rules "$SETUP") rules ($(field sensors "$SETUP") per-sensor water-level limits + one per background (type, attribute)),"
echo "   created in $(field seconds "$SETUP") s; $ENTITIES background entities; $PROBES probes, each a raise and a clear"

IDLE=$($PROBE probe -p "$PORT" -k "$KEY" -n "$PROBES")

# The load runs while the probe does; loadgen's -d covers the probe's time.
A0=$(metric 'citybrain_ingest_readings_total{result="accepted"}')
T0=$(date +%s.%N)
"$LOADGEN" -p "$PORT" -k "$KEY" -n "$ENTITIES" -c "$CONNS" -d 600 -R "$LOAD_RATE" lp >"$TMP/load.out" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
sleep 2
LOADED=$($PROBE probe -p "$PORT" -k "$KEY" -n "$PROBES")
A1=$(metric 'citybrain_ingest_readings_total{result="accepted"}')
T1=$(date +%s.%N)
kill "$LOAD_PID" 2>/dev/null || true
wait "$LOAD_PID" 2>/dev/null || true
CHECKPOINTS=$(metric citybrain_checkpoints_total)
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
RATE=$(awk -v a="$A0" -v b="$A1" -v t0="$T0" -v t1="$T1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')

printf '\n%-10s %14s %10s %10s %10s %10s %10s %16s\n' "condition" "background/s" "events" "lost" "p50 ms" "p99 ms" "max ms" "sent→event p99"
row() {
    printf "%-10s %14s %10s %10s %10s %10s %10s %16s\n" "$1" "$2" "$(field events "$3")" "$(field lost "$3")" \
        "$(field ack_p50_ms "$3")" "$(field ack_p99_ms "$3")" "$(field ack_max_ms "$3")" "$(field send_p99_ms "$3")"
}
row idle 0 "$IDLE"
row load "$RATE" "$LOADED"
echo "load/idle: p50 $(ratio "$(field ack_p50_ms "$LOADED")" "$(field ack_p50_ms "$IDLE")"), p99 $(ratio "$(field ack_p99_ms "$LOADED")" "$(field ack_p99_ms "$IDLE")")"
echo "latency = arrival of the event on the stream − the ingest request's 200 (negative: the event came first);"
echo "background/s = readings accepted per second while the probe ran (paced to $LOAD_RATE)."
echo "$CHECKPOINTS checkpoints by the end of the load run; load average then $LOADAVG."
[ "$(field lost "$LOADED")" = 0 ] && [ "$(field lost "$IDLE")" = 0 ] || STATUS=1
exit $STATUS
