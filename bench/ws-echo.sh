#!/usr/bin/env bash
# WebSocket echo, closed loop: 100 connections x 20 B and 200 connections x
# 16 KiB against pushwire, fastwebsockets and tokio-tungstenite (each alone
# on core 0; ws-echo-load on core 1). The servers alternate, REPS times,
# and the median counts.
#
#   bench/ws-echo.sh              WARMUP=2 DURATION=10 REPS=3
#   SERVER_CPU_QUOTA=50 bench/ws-echo.sh   each server capped at half a core
#                                          (see cap_server_cpu in lib.sh)
source "$(dirname "$0")/lib.sh"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION:-10}"
REPS="${REPS:-3}"
CASES=("100 20" "200 16384")
SERVERS=(pushwire fastwebsockets tungstenite)

build
versions
[[ -n "${SERVER_CPU_QUOTA:-}" ]] && echo "# every server capped at ${SERVER_CPU_QUOTA}% of one core (cgroup cpu quota)"
echo "# ws-echo-load --url ws://127.0.0.1:PORT/echo --conns N --size S --warmup $WARMUP --duration $DURATION --pid SERVER_PID  (x$REPS, median)"

declare -A MPS
for rep in $(seq "$REPS"); do
    for c in "${CASES[@]}"; do
        read -r n s <<<"$c"
        for server in "${SERVERS[@]}"; do
            start_server "$server"
            wait_quiet
            out="$(load "$BIN/ws-echo-load" --url "ws://127.0.0.1:$SERVER_PORT/echo" --conns "$n" --size "$s" \
                --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" 2>&1)" || echo "FAILED ($server ${n}x$s): $(head -5 <<<"$out")"
            line="$(grep '^ws-echo-load' <<<"$out" | tail -1)"
            echo "rep $rep $server: $line"
            MPS[$server.$n.$s]+=" $(kv msgs_per_sec "$line")"
            stop_server
        done
    done
done

echo
printf "%-14s %12s %12s %12s %10s %10s\n" case pushwire fastws tungstenite "pw/fastws" "pw/tung"
for c in "${CASES[@]}"; do
    read -r n s <<<"$c"
    # shellcheck disable=SC2086
    p="$(median ${MPS[pushwire.$n.$s]})"; f="$(median ${MPS[fastwebsockets.$n.$s]})"; t="$(median ${MPS[tungstenite.$n.$s]})"
    printf "%-14s %12s %12s %12s %10s %10s\n" "${n}x${s}B" "$p" "$f" "$t" "$(ratio "$p" "$f")" "$(ratio "$p" "$t")"
done
