#!/usr/bin/env bash
# SSE fan-out, pushwire against nchan (one nginx worker), each fresh on
# core 0 with sse-fanout on core 1. Per server:
#   1. latency run: SUBS subscribers, RATE messages/s for DURATION s
#      (memory per idle subscriber is measured while they connect);
#   2. throughput run: SUBS subscribers, closed loop with WINDOW messages
#      in flight, for DURATION s.
# Zero loss is required in both.
#
#   bench/sse.sh                  SUBS=5000 RATE=10 WINDOW=4 DURATION=10
source "$(dirname "$0")/lib.sh"
SUBS="${SUBS:-5000}"
RATE="${RATE:-10}"
WINDOW="${WINDOW:-4}"
DURATION="${DURATION:-10}"
SIZE="${SIZE:-64}"

build
versions
echo "# sse-fanout --sub SUB --pub PUB --pid SERVER_PID --subs $SUBS --size $SIZE --duration $DURATION {--rate $RATE | --rate 0 --window $WINDOW}"

declare -A R
for server in pushwire nchan; do
    topic_urls "$server" "/topics/{t}/sse" "/sub/{t}"
    start_server "$server"
    for run in latency throughput; do
        if [[ $run == latency ]]; then mode=(--rate "$RATE"); else mode=(--rate 0 --window "$WINDOW"); fi
        run_load "$server $run" sse-fanout --sub "$SUB_URL" --pub "$PUB_URL" --pid "$SERVER_PID" --subs "$SUBS" \
            --size "$SIZE" --duration "$DURATION" "${mode[@]}"
        keep "$server.$run" deliveries_per_sec p50_ms p99_ms max_ms lost bytes_per_sub server_cpu_pct loadgen_cpu_pct
        sleep 1
    done
    stop_server
done

echo
printf "%-34s %12s %12s %8s\n" "" pushwire nchan ratio
row() { printf "%-34s %12s %12s %8s\n" "$1" "${R[pushwire.$2]}" "${R[nchan.$2]}" "$(ratio "${R[pushwire.$2]}" "${R[nchan.$2]}")"; }
row "max deliveries/s (window $WINDOW)" throughput.deliveries_per_sec
row "  lost" throughput.lost
row "  server CPU %" throughput.server_cpu_pct
row "  loadgen CPU %" throughput.loadgen_cpu_pct
row "p50 ms at $RATE msg/s" latency.p50_ms
row "p99 ms at $RATE msg/s" latency.p99_ms
row "max ms at $RATE msg/s" latency.max_ms
row "  deliveries/s" latency.deliveries_per_sec
row "  lost" latency.lost
row "bytes per idle subscriber" latency.bytes_per_sub
