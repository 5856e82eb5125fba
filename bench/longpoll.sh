#!/usr/bin/env bash
# Long-poll wake: CLIENTS parked on the poll URL without a cursor, one
# publish, every client must be answered with the message. pushwire
# (/topics/{t}/poll?timeout=60) against nchan's long-poll subscriber, each
# fresh on core 0, longpoll-wake on core 1; ROUNDS rounds on fresh topics.
#
#   bench/longpoll.sh             CLIENTS=5000 ROUNDS=3
source "$(dirname "$0")/lib.sh"
CLIENTS="${CLIENTS:-5000}"
ROUNDS="${ROUNDS:-3}"

build
versions
echo "# longpoll-wake --poll POLL --pub PUB --pid SERVER_PID --clients $CLIENTS --settle 2"

declare -A R
for server in pushwire nchan; do
    topic_urls "$server" "/topics/{t}/poll?timeout=60" "/lp/{t}"
    start_server "$server"
    for r in $(seq "$ROUNDS"); do
        run_load "$server round $r" longpoll-wake --poll "$SUB_URL" --pub "$PUB_URL" --pid "$SERVER_PID" \
            --clients "$CLIENTS" --settle 2
        keep "$server.$r" p50_ms p99_ms max_ms answered unanswered bytes_per_parked
        sleep 1
    done
    stop_server
done

echo
printf "%-6s %-10s %10s %10s %10s %10s\n" round server p50_ms p99_ms max_ms answered
for r in $(seq "$ROUNDS"); do
    for server in pushwire nchan; do
        printf "%-6s %-10s %10s %10s %10s %10s\n" "$r" "$server" "${R[$server.$r.p50_ms]}" "${R[$server.$r.p99_ms]}" \
            "${R[$server.$r.max_ms]}" "${R[$server.$r.answered]}/$CLIENTS"
    done
done
