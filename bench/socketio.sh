#!/usr/bin/env bash
# Socket.IO, pushwire's /socket.io/ against the Node `socket.io` server
# (bench/peers-node/socketio-server.mjs: socket.io 4.x, one process, the
# same room fan-out), each fresh on core 0, the load (sio-load, Engine.IO
# and Socket.IO by hand in Rust) on core 1:
#
#   (a) fan-out   CLIENTS on WebSocket in one room, one client publishing
#                 MESSAGES events at RATE/s (acked): deliveries per server
#                 CPU-second, latency p50/p99 (publish written → delivery
#                 read), loss (must be 0). Target: ≥ 5× Node per CPU-second.
#   (b) idle      IDLE_CLIENTS connected to `/` and idle: (VmRSS after −
#                 before) / clients. Target: ≤ 2 KiB per connection.
#   (c) upgrade   UPGRADE_CLIENTS set up as the official client does it
#                 (polling handshake, CONNECT by POST, a parked GET, the
#                 WebSocket with 2probe/3probe, the noop, 5) PARALLEL at a
#                 time: setups per second, setup time p50/p99, setups per
#                 server CPU-second.
#
#   bench/socketio.sh                         both servers, every part
#   SERVERS=node bench/socketio.sh            one of them
#   CLIENTS=5000 RATE=5 MESSAGES=100 REPS=1   the knobs (defaults shown)
#   PARTS="fanout idle upgrade"               which parts run
#   RX_ON_CLIENT_CORE=1 bench/socketio.sh     (a) twice per server and rep:
#       on plain loopback, and with lo's receive processing steered to the
#       load generator's core (Receive Packet Steering, rps_cpus of lo), so
#       the clients' TCP input is no longer charged to the server, as with
#       clients on other machines. The mask is changed only under
#       /tmp/pushwire-bench.lock and restored on every exit.
#
# RATE is below what Node sustains for 5,000 clients on one core (about
# 50,000 deliveries/s on this machine: at 10 events/s its p50 is already
# half a second), so both latencies are of a server keeping up.
source "$(dirname "$0")/lib.sh"
CLIENTS="${CLIENTS:-5000}"
RATE="${RATE:-5}"
MESSAGES="${MESSAGES:-100}"
SIZE="${SIZE:-64}"
IDLE_CLIENTS="${IDLE_CLIENTS:-5000}"
UPGRADE_CLIENTS="${UPGRADE_CLIENTS:-5000}"
PARALLEL="${PARALLEL:-128}"
REPS="${REPS:-1}"
SERVERS="${SERVERS:-pushwire node}"
PARTS="${PARTS:-fanout idle upgrade}"
FANOUT_MODES=loopback
if [[ "${RX_ON_CLIENT_CORE:-}" == 1 ]]; then FANOUT_MODES="loopback rx"; fi
trap 'rx_restore; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
PORT_NODE_SIO=18085
NODE_DIR="$BENCH_DIR/peers-node"

build
if [[ ! -d "$NODE_DIR/node_modules/socket.io" ]]; then
    echo "# installing the Node peer's socket.io (npm ci)" >&2
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --silent)
fi
versions
echo "# node $(node --version), socket.io $(node -p "require('$NODE_DIR/node_modules/socket.io/package.json').version")"
echo "# (a) sio-load --mode fanout --url URL --pid SERVER_PID --clients $CLIENTS --messages $MESSAGES --rate $RATE --size $SIZE"
echo "# (b) sio-load --mode idle --url URL --pid SERVER_PID --clients $IDLE_CLIENTS"
echo "# (c) sio-load --mode upgrade --url URL --pid SERVER_PID --clients $UPGRADE_CLIENTS --parallel $PARALLEL"
echo "# x$REPS, median; the machine is shared, so every figure is noisy: compare ratios within this run"

# start NAME: pushwire through lib.sh, or the Node peer.
start() {
    if [[ $1 == pushwire ]]; then
        start_server pushwire
        return
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT_NODE_SIO") 2>/dev/null; then
        echo "port $PORT_NODE_SIO is taken before node started: refusing to measure another process" >&2
        return 1
    fi
    taskset -c "$SERVER_CPU" node "$NODE_DIR/socketio-server.mjs" --listen "127.0.0.1:$PORT_NODE_SIO" 2>/tmp/bench-node-sio.$$.log &
    SERVER_MAIN_PID=$!
    STARTED_PIDS+=("$SERVER_MAIN_PID")
    wait_port "$PORT_NODE_SIO"
    SERVER_PID=$SERVER_MAIN_PID
    SERVER_PORT=$PORT_NODE_SIO
}

declare -A V
for rep in $(seq "$REPS"); do
    for server in $SERVERS; do
        for mode in $FANOUT_MODES; do
            [[ " $PARTS " == *" fanout "* ]] || break
            start "$server"
            wait_quiet
            if [[ $mode == rx ]]; then rx_steer; fi
            rx0=($(net_rx_by_cpu)); dr0=($(backlog_drops_by_cpu)); ticks0=$(cpu_ticks_by_cpu)
            run_load "rep $rep $server fan-out ($mode)" sio-load --mode fanout --url "http://127.0.0.1:$SERVER_PORT" \
                --pid "$SERVER_PID" --clients "$CLIENTS" --messages "$MESSAGES" --rate "$RATE" --size "$SIZE"
            rx1=($(net_rx_by_cpu)); dr1=($(backlog_drops_by_cpu)); ticks1=$(cpu_ticks_by_cpu)
            rx_restore
            echo "  NET_RX softirqs during it, by CPU: $(for i in "${!rx1[@]}"; do printf 'cpu%d=%d ' "$i" $((rx1[i] - rx0[i])); done);" \
                "backlog drops: $(for i in "${!dr1[@]}"; do printf 'cpu%d=%d ' "$i" $((dr1[i] - dr0[i])); done);" \
                "busy: $(busy_pct_by_cpu "$ticks0" "$ticks1")(server on cpu$SERVER_CPU, load on the other)"
            tag=$server; [[ $mode == rx ]] && tag=$server.rx
            for k in deliveries_per_server_cpu_s p50_ms p99_ms missing; do
                V[$tag.$k]+=" $(kv "$k" "$RESULT")"
            done
            stop_server
        done

        if [[ " $PARTS " == *" idle "* ]]; then
            start "$server"
            run_load "rep $rep $server idle" sio-load --mode idle --url "http://127.0.0.1:$SERVER_PORT" \
                --pid "$SERVER_PID" --clients "$IDLE_CLIENTS"
            V[$server.bytes_per_conn]+=" $(kv bytes_per_conn "$RESULT")"
            stop_server
        fi

        if [[ " $PARTS " == *" upgrade "* ]]; then
            start "$server"
            wait_quiet
            run_load "rep $rep $server upgrade" sio-load --mode upgrade --url "http://127.0.0.1:$SERVER_PORT" \
                --pid "$SERVER_PID" --clients "$UPGRADE_CLIENTS" --parallel "$PARALLEL"
            for k in setups_per_s setup_p50_ms setup_p99_ms setups_per_server_cpu_s; do
                V[$server.$k]+=" $(kv "$k" "$RESULT")"
            done
            stop_server
        fi
    done
done

med() { median ${V[$1]:-}; }
echo
printf "%-10s %22s %10s %10s %16s %12s %14s %20s\n" server "deliveries/server-CPU-s" "p50 ms" "p99 ms" "bytes/idle conn" "upgrades/s" "upgrade p99 ms" "upgrades/server-CPU-s"
for server in $SERVERS; do
    printf "%-10s %22s %10s %10s %16s %12s %14s %20s\n" "$server" "$(med "$server.deliveries_per_server_cpu_s")" \
        "$(med "$server.p50_ms")" "$(med "$server.p99_ms")" "$(med "$server.bytes_per_conn")" \
        "$(med "$server.setups_per_s")" "$(med "$server.setup_p99_ms")" "$(med "$server.setups_per_server_cpu_s")"
done
if [[ " $SERVERS " == *" pushwire "* && " $SERVERS " == *" node "* ]]; then
    echo
    echo "pushwire / node: deliveries per server CPU-second $(ratio "$(med pushwire.deliveries_per_server_cpu_s)" "$(med node.deliveries_per_server_cpu_s)")x (target >= 5)," \
        "memory per idle connection $(ratio "$(med pushwire.bytes_per_conn)" "$(med node.bytes_per_conn)")x (target <= 2048 bytes: $(med pushwire.bytes_per_conn))," \
        "upgrades per second $(ratio "$(med pushwire.setups_per_s)" "$(med node.setups_per_s)")x," \
        "upgrades per server CPU-second $(ratio "$(med pushwire.setups_per_server_cpu_s)" "$(med node.setups_per_server_cpu_s)")x"
fi
if [[ $FANOUT_MODES == *rx* ]]; then
    echo
    echo "fan-out, median of $REPS: loopback (the receive side charged to the server) | receive side on the client core (as clients on other machines)"
    printf "%-10s %16s %9s %9s %8s | %16s %9s %9s %8s\n" server "deliv/CPU-s" "p50 ms" "p99 ms" missing "deliv/CPU-s" "p50 ms" "p99 ms" missing
    for server in $SERVERS; do
        printf "%-10s %16s %9s %9s %8s | %16s %9s %9s %8s\n" "$server" \
            "$(med "$server.deliveries_per_server_cpu_s")" "$(med "$server.p50_ms")" "$(med "$server.p99_ms")" "$(med "$server.missing")" \
            "$(med "$server.rx.deliveries_per_server_cpu_s")" "$(med "$server.rx.p50_ms")" "$(med "$server.rx.p99_ms")" "$(med "$server.rx.missing")"
    done
    if [[ " $SERVERS " == *" pushwire "* && " $SERVERS " == *" node "* ]]; then
        echo "pushwire / node, deliveries per server CPU-second: loopback $(ratio "$(med pushwire.deliveries_per_server_cpu_s)" "$(med node.deliveries_per_server_cpu_s)")x," \
            "receive side on the client core $(ratio "$(med pushwire.rx.deliveries_per_server_cpu_s)" "$(med node.rx.deliveries_per_server_cpu_s)")x (target >= 5)"
    fi
fi
