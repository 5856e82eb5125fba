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
    if [[ $server == pushwire ]]; then
        poll="http://127.0.0.1:$PORT_PUSHWIRE/topics/{t}/poll?timeout=60"; pub="http://127.0.0.1:$PORT_PUSHWIRE/topics/{t}"
    else
        poll="http://127.0.0.1:$PORT_NCHAN/lp/{t}"; pub="http://127.0.0.1:$PORT_NCHAN/pub/{t}"
    fi
    start_server "$server"
    for r in $(seq "$ROUNDS"); do
        out="$(load "$BIN/longpoll-wake" --poll "$poll" --pub "$pub" --pid "$SERVER_PID" --clients "$CLIENTS" --settle 2 2>&1)" \
            || echo "FAILED ($server round $r): $(grep -v '^longpoll-wake' <<<"$out" | head -5)"
        line="$(grep '^longpoll-wake' <<<"$out" | tail -1)"
        echo "$server round $r: $line"
        for k in p50_ms p99_ms max_ms answered unanswered bytes_per_parked; do
            R[$server.$r.$k]="$(kv "$k" "$line")"
        done
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
