#!/usr/bin/env bash
# Resident memory per idle WebSocket: 5,000 upgraded connections to /echo,
# then nothing; (VmRSS after - VmRSS before) / 5,000, each server fresh.
# Target for pushwire: under 1 KiB per connection.
#
#   bench/ws-idle.sh              CONNS=5000
source "$(dirname "$0")/lib.sh"
CONNS="${CONNS:-5000}"

build
versions
echo "# ws-idle-mem --url ws://127.0.0.1:PORT/echo --pid SERVER_PID --conns $CONNS"

declare -A PER
for server in pushwire tungstenite fastwebsockets; do
    start_server "$server"
    out="$(load "$BIN/ws-idle-mem" --url "ws://127.0.0.1:$SERVER_PORT/echo" --pid "$SERVER_PID" --conns "$CONNS" 2>&1)" \
        || echo "FAILED ($server)"
    echo "$server: $(tail -1 <<<"$out")"
    PER[$server]="$(kv bytes_per_conn "$(tail -1 <<<"$out")")"
    stop_server
done

echo
printf "%-16s %16s\n" server "bytes/idle ws"
for server in pushwire tungstenite fastwebsockets; do
    printf "%-16s %16s\n" "$server" "${PER[$server]}"
done
