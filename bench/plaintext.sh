#!/usr/bin/env bash
# Plaintext keep-alive HTTP: GET /healthz -> 200 "ok", pushwire against
# hyper (one thread, pipeline_flush), each alone on core 0, wrk on core 1.
# Two modes: 16 requests pipelined per write (TechEmpower's pipeline.lua)
# and one request at a time. The servers alternate, REPS times, and the
# median counts: the machine is shared and drifts. Each run also reports
# requests per second of the server's CPU time, which steal does not
# inflate (on this VM two builds that behave the same differ by up to
# 17% in requests/s from one run to the next).
#
#   bench/plaintext.sh            DURATION=10 CONNS=256 DEPTH=16 REPS=3
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-256}"
DEPTH="${DEPTH:-16}"
REPS="${REPS:-3}"

build
versions
echo "# wrk -t1 -c$CONNS -d${DURATION}s --latency [-s lua/pipeline.lua URL -- $DEPTH] http://127.0.0.1:PORT/healthz  (x$REPS, median)"

for server in pushwire hyper; do
    start_server "$server"
    url="http://127.0.0.1:$SERVER_PORT/healthz"
    echo "# $server response ($(curl -s -i "$url" | wc -c) bytes): $(curl -s -i "$url" | tr -d '\r' | tr '\n' '|')"
    stop_server
done

declare -A RPS CPU
for rep in $(seq "$REPS"); do
    for mode in pipelined single; do
        for server in pushwire hyper; do
            start_server "$server"
            url="http://127.0.0.1:$SERVER_PORT/healthz"
            args=(-t1 "-c$CONNS" --latency)
            extra=()
            if [[ $mode == pipelined ]]; then
                args+=(-s "$BENCH_DIR/lua/pipeline.lua")
                extra=(-- "$DEPTH")
            fi
            # A short warm-up, then the measured run.
            load wrk "${args[@]}" -d2s "$url" "${extra[@]}" >/dev/null 2>&1 || true
            wait_quiet
            t0="$(cpu_ticks "$SERVER_PID")"
            out="$(load wrk "${args[@]}" "-d${DURATION}s" "$url" "${extra[@]}" 2>&1)"
            t1="$(cpu_ticks "$SERVER_PID")"
            rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
            total="$(awk '/requests in/ { print $1 }' <<<"$out")"
            cpu="$(per_cpu "$total" "$t0" "$t1")"
            p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
            errs="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
            RPS[$server.$mode]+=" $rps"
            CPU[$server.$mode]+=" $cpu"
            echo "rep $rep $server $mode: requests/s=$rps per_cpu_s=$cpu latency_p99=$p99 ${errs:+ERRORS: $errs}"
            stop_server
        done
    done
done

echo
printf "%-10s %14s %14s %8s %16s %16s %8s\n" mode pushwire hyper ratio "pushwire/cpu-s" "hyper/cpu-s" ratio
for mode in pipelined single; do
    # shellcheck disable=SC2086
    p="$(median ${RPS[pushwire.$mode]})"; h="$(median ${RPS[hyper.$mode]})"
    # shellcheck disable=SC2086
    pc="$(median ${CPU[pushwire.$mode]})"; hc="$(median ${CPU[hyper.$mode]})"
    printf "%-10s %14s %14s %8s %16s %16s %8s\n" "$mode" "$p" "$h" "$(ratio "$p" "$h")" "$pc" "$hc" "$(ratio "$pc" "$hc")"
done
