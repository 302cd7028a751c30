# bench/lib.sh — what the benchmark scripts share, sourced by each of them: a
# scratch directory $TMP and the processes listed in $PIDS, both cleaned up on
# exit (a script with more to undo defines bench_cleanup_extra after sourcing),
# free ports, and the text helpers for loadgen lines, /metrics and ratios.
TMP=$(mktemp -d /tmp/citybrain-bench.XXXXXX)
PIDS=()
bench_cleanup_extra() { :; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    bench_cleanup_extra
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# field NAME LINE: the value of NAME=... in a loadgen line
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# metric NAME: its value in citybrain's /metrics (uses $KEY and $PORT)
metric() {
    { curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics" || echo "bench: GET /metrics failed" >&2; } |
        awk -v m="$1" '$1 == m { print $2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf (a / b < 0.1 ? "%.3f" : "%.2f"), a / b; else print "-" }'; }

# grouped N: 1234567 -> 1,234,567
grouped() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    print s o }'; }
