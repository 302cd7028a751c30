#!/usr/bin/env bash
# bench/ingest.sh — how fast citybrain takes in readings, side by side with the
# ceilings of the same machine in the same run, and what an entity costs in memory.
#
#   1. line protocol and JSON batches (5,000 readings each, wal_fsync everysec,
#      client on the same machine) through citybrain, through a do-nothing HTTP
#      sink (bench/sink.c: the transport's ceiling) and as raw write(2) of the
#      same bytes with an fsync a second (the disk's ceiling); prints readings/s
#      and the ratios citybrain/sink and citybrain/disk;
#   2. memory per entity at BENCH_MEM_ENTITIES (one million) entities with one
#      reading of three attributes each: ΔRSS and citybrain_state_bytes.
#
# Knobs (environment): BENCH_SECONDS (10), BENCH_CONNECTIONS (2),
# BENCH_ENTITIES (100000), BENCH_MEM_ENTITIES (1000000), CITYBRAIN_BIN
# (./citybrain, built if missing), CC (cc).
# Exit status: 0, or 1 if any request got a wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-2}
ENTITIES=${BENCH_ENTITIES:-100000}
MEM_ENTITIES=${BENCH_MEM_ENTITIES:-1000000}
BATCH=5000
BIN=${CITYBRAIN_BIN:-./citybrain}
CC=${CC:-cc}

[ -x "$BIN" ] || make -s citybrain
mkdir -p build/bench
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread"
$CC $CFLAGS -o build/bench/loadgen bench/loadgen.c
$CC $CFLAGS -o build/bench/sink bench/sink.c
LOADGEN=build/bench/loadgen
# No MQTT here (bench/mqtt.sh measures it): don't reach for a broker on 1883.
NO_MQTT=()
HELP=$("$BIN" serve --help)
case $HELP in *"--mqtt "*) NO_MQTT=(--mqtt off) ;; esac

. bench/lib.sh

# start_server NAME: a citybrain in $TMP/NAME; sets PID, PORT, KEY.
start_server() {
    local dir=$TMP/$1
    mkdir -p "$dir"
    KEY=$("$BIN" key create --role admin --name bench --data-dir "$dir" 2>/dev/null | awk '/^cb_/ { print $1; exit }')
    PORT=$(free_port)
    "$BIN" serve --data-dir "$dir" --listen 127.0.0.1 --port "$PORT" --wal-fsync everysec \
        --log-level warn --web-dir web "${NO_MQTT[@]}" >"$dir/log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: citybrain did not start; its log:" >&2
    cat "$dir/log" >&2
    exit 1
}

stop_server() {
    kill "$PID"
    wait "$PID" || true
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }


# run LABEL ARGS...: runs loadgen, keeps its line in $LINE, fails on wrong answers.
STATUS=0
run() {
    local label=$1
    shift
    if ! LINE=$("$LOADGEN" "$@"); then
        echo "bench: $label: loadgen saw wrong answers: $LINE" >&2
        STATUS=1
    fi
}

CORES=$(nproc)
MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "== citybrain ingest benchmark: $CORES cores ($MODEL), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   $BATCH readings a batch (3 attributes a line/item), wal_fsync everysec, client on the same machine,"
echo "   $CONNS keep-alive connections, ${SECS}s measured after 1s warm-up, $ENTITIES entities"

# --- 1. throughput ---
start_server ingest
run "create" -p "$PORT" -k "$KEY" -n "$ENTITIES" create
declare -A RATE
for mode in lp json; do
    run "citybrain $mode" -p "$PORT" -k "$KEY" -n "$ENTITIES" -c "$CONNS" -d "$SECS" "$mode"
    RATE[cb_$mode]=$(field readings_per_s "$LINE")
    RATE[cb_${mode}_mb]=$(field mb_per_s "$LINE")
done
WAL_BYTES=$(metric citybrain_wal_bytes_written_total)
READINGS=$(metric 'citybrain_ingest_readings_total{result="accepted"}')
stop_server

"build/bench/sink" -a "$BATCH" >"$TMP/sink.port" &
PIDS+=($!)
SINK_PID=$!
for _ in $(seq 50); do [ -s "$TMP/sink.port" ] && break; sleep 0.1; done
SINK_PORT=$(cut -d= -f2 "$TMP/sink.port")
for mode in lp json; do
    run "sink $mode" -p "$SINK_PORT" -n "$ENTITIES" -c "$CONNS" -d "$SECS" "$mode"
    RATE[sink_$mode]=$(field readings_per_s "$LINE")
    RATE[sink_${mode}_mb]=$(field mb_per_s "$LINE")
done
kill "$SINK_PID"

run "disk" -n "$ENTITIES" -d "$SECS" -f "$TMP/ingest/raw-write.bin" disk
RATE[disk]=$(field readings_per_s "$LINE")
RATE[disk_mb]=$(field mb_per_s "$LINE")

printf '\n%-14s %-26s %14s %9s %10s %10s %11s %6s\n' "ingest" "path" "readings/s" "MB/s" "vs sink" "vs disk" "goal" "met"
row() { # door path rate mb sink goal
    local met="" goalr=""
    if [ -n "$6" ]; then
        goalr=$(ratio "$3" "$6")
        met=$(awk -v r="$goalr" 'BEGIN { print (r >= 1 ? "yes" : "no") }')
        goalr="$(grouped "$6") ($goalr)"
    fi
    printf "%-14s %-26s %14s %9s %10s %10s %11s %6s\n" "$1" "$2" "$(grouped "$3")" "$4" \
        "${5:+$(ratio "$3" "$5")}" "${5:+$(ratio "$3" "${RATE[disk]}")}" "$goalr" "$met"
}
row "line protocol" "citybrain" "${RATE[cb_lp]}" "${RATE[cb_lp_mb]}" "${RATE[sink_lp]}" 2000000
row "" "HTTP sink (transport)" "${RATE[sink_lp]}" "${RATE[sink_lp_mb]}" "" ""
row "JSON" "citybrain" "${RATE[cb_json]}" "${RATE[cb_json_mb]}" "${RATE[sink_json]}" 1000000
row "" "HTTP sink (transport)" "${RATE[sink_json]}" "${RATE[sink_json_mb]}" "" ""
row "raw bytes" "write(2)+fsync/s (disk)" "${RATE[disk]}" "${RATE[disk_mb]}" "" ""
echo "goal column: goal (citybrain/goal). WAL: $(awk -v b="$WAL_BYTES" -v n="$READINGS" 'BEGIN { printf "%.1f", n ? b / n : 0 }') bytes a reading."

# --- 2. memory per entity ---
echo
echo "== memory per entity: $MEM_ENTITIES entities (8 types, Jiaozuo bbox), one reading of 3 attributes each"
start_server memory
sleep 0.5
RSS0=$(rss_kb "$PID")
STATE0=$(metric citybrain_state_bytes)
run "create $MEM_ENTITIES" -p "$PORT" -k "$KEY" -n "$MEM_ENTITIES" -c 1 create
CREATE_S=$(field seconds "$LINE")
run "one reading each" -p "$PORT" -k "$KEY" -n "$MEM_ENTITIES" -c "$CONNS" lp-once
ONCE_S=$(field seconds "$LINE")
sleep 1
RSS1=$(rss_kb "$PID")
STATE1=$(metric citybrain_state_bytes)
COUNT=$(metric citybrain_entities)
stop_server
awk -v n="$MEM_ENTITIES" -v r0="$RSS0" -v r1="$RSS1" -v s0="$STATE0" -v s1="$STATE1" -v c="$COUNT" \
    -v cs="$CREATE_S" -v os="$ONCE_S" 'BEGIN {
    rss = (r1 - r0) * 1024 / n; st = s1 / n
    printf "%-40s %12s %10s %6s\n", "measure", "bytes/entity", "vs goal", "met"
    printf "%-40s %12.0f %10.2f %6s\n", "ΔVmRSS (" r0 " kB -> " r1 " kB)", rss, rss / 300, rss <= 300 ? "yes" : "no"
    printf "%-40s %12.0f %10.2f %6s\n", "citybrain_state_bytes (" s1 ")", st, st / 300, st <= 300 ? "yes" : "no"
    printf "goal: <= 300 bytes an entity; vs goal = measured/300. entities in the state: %d; created in %.1f s, one reading each in %.1f s\n", c, cs, os
}'
exit $STATUS
