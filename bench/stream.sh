#!/usr/bin/env bash
# HTTP streaming (NDJSON, /topics/{t}/stream) against SSE (/topics/{t}/sse)
# fan-out, both on pushwire, in the same run: each run a fresh server on
# core 0, sse-fanout on core 1, SUBS subscribers, closed loop with WINDOW
# messages in flight for DURATION s; ROUNDS rounds, alternating which
# format goes first. Zero loss is required.
#
# The figure compared is deliveries per server CPU-second (deliveries/s
# divided by the server's CPU share): on a shared machine the wall-clock
# rate moves with the neighbours, the work per delivery much less. The
# median of the rounds (an odd number, so a real middle) is reported, and the ratio NDJSON / SSE (the two
# formats share one code path in the server, so the target is within 10%).
#
#   bench/stream.sh               SUBS=5000 WINDOW=4 DURATION=10 ROUNDS=3
source "$(dirname "$0")/lib.sh"
SUBS="${SUBS:-5000}"
WINDOW="${WINDOW:-4}"
DURATION="${DURATION:-10}"
SIZE="${SIZE:-64}"
ROUNDS="${ROUNDS:-3}"

build
versions
echo "# sse-fanout --sub SUB --pub PUB --pid SERVER_PID --subs $SUBS --size $SIZE --duration $DURATION --rate 0 --window $WINDOW --format {sse|ndjson}"

# per_cpu_sec DELIVERIES_PER_SEC SERVER_CPU_PCT
per_cpu_sec() {
    awk -v d="$1" -v c="$2" 'BEGIN { if (c + 0 == 0) print "-"; else printf "%.0f", d / (c / 100) }'
}

declare -A R
declare -A PER
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then order=(sse ndjson); else order=(ndjson sse); fi
    for format in "${order[@]}"; do
        if [[ $format == sse ]]; then path="/topics/{t}/sse"; else path="/topics/{t}/stream"; fi
        topic_urls pushwire "$path" -
        start_server pushwire
        wait_quiet
        run_load "$format round $round" sse-fanout --sub "$SUB_URL" --pub "$PUB_URL" --pid "$SERVER_PID" \
            --subs "$SUBS" --size "$SIZE" --duration "$DURATION" --rate 0 --window "$WINDOW" --format "$format"
        keep "$format.$round" deliveries_per_sec lost server_cpu_pct loadgen_cpu_pct p50_ms p99_ms
        PER[$format]+=" $(per_cpu_sec "${R[$format.$round.deliveries_per_sec]}" "${R[$format.$round.server_cpu_pct]}")"
        R[$format.lost]=$(( ${R[$format.lost]:-0} + ${R[$format.$round.lost]:-1} ))
        stop_server
    done
done

med() { local f="$1" k="$2" r vals=(); for r in $(seq "$ROUNDS"); do vals+=("${R[$f.$r.$k]}"); done; median "${vals[@]}"; }
echo
printf "%-40s %12s %12s %8s\n" "(median of $ROUNDS rounds)" ndjson sse ratio
row() { printf "%-40s %12s %12s %8s\n" "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
nd_cpu="$(median ${PER[ndjson]})"
sse_cpu="$(median ${PER[sse]})"
row "deliveries per server CPU-second" "$nd_cpu" "$sse_cpu"
row "deliveries/s (window $WINDOW)" "$(med ndjson deliveries_per_sec)" "$(med sse deliveries_per_sec)"
row "  server CPU %" "$(med ndjson server_cpu_pct)" "$(med sse server_cpu_pct)"
row "  loadgen CPU %" "$(med ndjson loadgen_cpu_pct)" "$(med sse loadgen_cpu_pct)"
row "  p50 ms" "$(med ndjson p50_ms)" "$(med sse p50_ms)"
row "  p99 ms" "$(med ndjson p99_ms)" "$(med sse p99_ms)"
printf "%-40s %12s %12s\n" "lost (all rounds)" "${R[ndjson.lost]}" "${R[sse.lost]}"
echo "# per round, deliveries per server CPU-second: ndjson${PER[ndjson]}; sse${PER[sse]}"
