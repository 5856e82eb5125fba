#!/usr/bin/env bash
# Plaintext keep-alive HTTP: GET /healthz -> 200 "ok", pushwire against
# hyper (one thread, pipeline_flush), each alone on core 0, wrk on core 1.
# Two modes: 16 requests pipelined per write (TechEmpower's pipeline.lua)
# and one request at a time. The servers alternate, REPS times, and the
# median counts: the machine is shared and drifts.
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

declare -A RPS
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
            out="$(load wrk "${args[@]}" "-d${DURATION}s" "$url" "${extra[@]}" 2>&1)"
            rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
            p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
            errs="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
            RPS[$server.$mode]+=" $rps"
            echo "rep $rep $server $mode: requests/s=$rps latency_p99=$p99 ${errs:+ERRORS: $errs}"
            stop_server
        done
    done
done

echo
printf "%-10s %14s %14s %8s\n" mode pushwire hyper ratio
for mode in pipelined single; do
    # shellcheck disable=SC2086
    p="$(median ${RPS[pushwire.$mode]})"; h="$(median ${RPS[hyper.$mode]})"
    printf "%-10s %14s %14s %8s\n" "$mode" "$p" "$h" "$(ratio "$p" "$h")"
done
