#!/usr/bin/env bash
# permessage-deflate (RFC 7692), pushwire against Node `ws` 8 with
# perMessageDeflate (bench/peers-node), each fresh on core 0 with the load
# generator on core 1, deflate off and on, in one run:
#   (a) topic fan-out: SUBS WebSocket subscribers, MESSAGES JSON messages
#       of SIZE bytes at RATE/s (ws-fanout): server CPU per delivery and
#       wire bytes per delivery. pushwire compresses each message once for
#       every deflate subscriber; ws compresses each send.
#   (b) echo: ECHO_CONNS connections x ECHO_SIZE bytes of compressible
#       JSON text, closed loop (ws-echo-load --deflate): messages/s.
#       pushwire compresses an echo at its per-connection level
#       (--ws-deflate-level, 1), ws at its default (6); with NODE_LEVEL1=1
#       (the default) ws's echo is also run at level 1, for the record.
# Every delivery and echo is checked (RSV1, order, content; see the
# generators' headers). The servers alternate, REPS times; medians count.
# PARTS="fanout echo" (the default) picks what runs.
#
#   bench/deflate.sh     SUBS=2000 SIZE=2048 MESSAGES=200 RATE=20
#                        ECHO_CONNS=100 ECHO_SIZE=16384 WARMUP=2 DURATION=10 REPS=1
#                        PARTS="fanout echo" NODE_LEVEL1=1 NICE=-10
#   flock /tmp/pushwire-bench.lock bench/deflate.sh
source "$(dirname "$0")/lib.sh"
SUBS="${SUBS:-2000}"
SIZE="${SIZE:-2048}"
MESSAGES="${MESSAGES:-200}"
RATE="${RATE:-20}"
ECHO_CONNS="${ECHO_CONNS:-100}"
ECHO_SIZE="${ECHO_SIZE:-16384}"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION:-10}"
REPS="${REPS:-1}"
PARTS="${PARTS:-fanout echo}"
NODE_LEVEL1="${NODE_LEVEL1:-1}"
PORT_NODE=18084
# NICE=-10 (the default): this script, and so both servers (every thread,
# libuv's pool included) and the load generator, run at this niceness, so
# that on the shared machine other work (builds) takes little of their
# cores and a one-thread server is not starved next to a many-threaded
# one. NICE=0 runs as it was started.
# (raise_priority in lib.sh: the session's autogroup too, put back on exit.)
trap 'cleanup; restore_priority' EXIT
raise_priority
NODE_DIR="$BENCH_DIR/peers-node"

build
if [[ ! -d "$NODE_DIR/node_modules/ws" ]]; then
    echo "# installing the Node peer's ws (npm ci)" >&2
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --silent)
fi
versions
echo "# node $(node --version), ws $(node -p "require('$NODE_DIR/node_modules/ws/package.json').version")"
echo "# (a) ws-fanout --sub URL/topics/{t}/ws --pub URL/topics/{t} --pid SERVER_PID --subs $SUBS --size $SIZE --messages $MESSAGES --rate $RATE --deflate off|on"
echo "# (b) ws-echo-load --url URL/echo --conns $ECHO_CONNS --size $ECHO_SIZE --warmup $WARMUP --duration $DURATION --pid SERVER_PID --deflate off|on"
echo "# x$REPS, median, at nice $(nice) ($(cat /proc/$$/autogroup 2>/dev/null || echo 'no autogroup')); the machine is shared, so every figure is noisy: compare ratios within this run"

# start NAME [NODE FLAGS...]: pushwire through lib.sh, or the Node peer
# (its libuv thread pool, where ws runs zlib, inherits the pinning to
# SERVER_CPU).
start() {
    if [[ $1 == pushwire ]]; then
        start_server pushwire
        return
    fi
    shift
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT_NODE") 2>/dev/null; then
        echo "port $PORT_NODE is taken before node started: refusing to measure another process" >&2
        return 1
    fi
    taskset -c "$SERVER_CPU" node "$NODE_DIR/server.mjs" --listen "127.0.0.1:$PORT_NODE" --deflate on "$@" 2>/tmp/bench-node.$$.log &
    SERVER_MAIN_PID=$!
    STARTED_PIDS+=("$SERVER_MAIN_PID")
    wait_port "$PORT_NODE"
    SERVER_PID=$SERVER_MAIN_PID
    SERVER_PORT=$PORT_NODE
}

# lib.sh's wait_quiet waits up to 20 s per run; eight runs must fit in
# five minutes, so this one waits up to QUIET_WAIT s (and says how busy).
QUIET_WAIT="${QUIET_WAIT:-5}"
wait_quiet() {
    local i b
    for i in $(seq "$QUIET_WAIT"); do
        b="$(busy_pct)"
        if (( b < 15 )); then return 0; fi
    done
    echo "# WARNING: machine ${b}% busy with other work during the next run" >&2
}

has() { [[ " $PARTS " == *" $1 "* ]]; }

# echo_run LABEL VAR-PREFIX DEFLATE [NODE FLAGS...]: one echo run of the
# server started last; keeps msgs/s, server CPU % and the generator's.
echo_run() {
    local label="$1" key="$2" d="$3"
    run_load "$label" ws-echo-load \
        --url "ws://127.0.0.1:$SERVER_PORT/echo" --conns "$ECHO_CONNS" --size "$ECHO_SIZE" \
        --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" --deflate "$d"
    V[$key.mps]+=" $(kv msgs_per_sec "$RESULT")"
    V[$key.cpu]+=" $(kv server_cpu_pct "$RESULT")"
    V[$key.gen]+=" $(kv loadgen_cpu_pct "$RESULT")"
}

declare -A V
for rep in $(seq "$REPS"); do
    for server in pushwire node; do
        for d in off on; do
            if has fanout; then
                start "$server"
                wait_quiet
                run_load "rep $rep $server fan-out deflate=$d" ws-fanout \
                    --sub "ws://127.0.0.1:$SERVER_PORT/topics/{t}/ws" --pub "http://127.0.0.1:$SERVER_PORT/topics/{t}" \
                    --pid "$SERVER_PID" --subs "$SUBS" --size "$SIZE" --messages "$MESSAGES" --rate "$RATE" --deflate "$d"
                V[$server.fan.$d.cpu]+=" $(kv server_cpu_ns_per_delivery "$RESULT")"
                V[$server.fan.$d.wire]+=" $(kv wire_bytes_per_delivery "$RESULT")"
                stop_server
            fi
            if has echo; then
                start "$server"
                wait_quiet
                echo_run "rep $rep $server echo deflate=$d" "$server.echo.$d" "$d"
                stop_server
            fi
        done
        if has echo && [[ $server == node && $NODE_LEVEL1 == 1 ]]; then
            start node --level 1
            wait_quiet
            echo_run "rep $rep node --level 1 echo deflate=on" "node1.echo.on" on
            stop_server
        fi
    done
done

# shellcheck disable=SC2086 # the values are words
m() { median ${V[$1]}; }
row() { printf "%-44s %12s %12s %10s\n" "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
# per_cpu_s MPS CPU%: messages per server CPU-second.
per_cpu_s() { awk -v m="$1" -v c="$2" 'BEGIN { if (c + 0 == 0) print "-"; else printf "%.0f", 100 * m / c }'; }
if has fanout; then
    echo
    echo "(a) fan-out, $SUBS subscribers x $MESSAGES messages of $SIZE B JSON"
    printf "%-44s %12s %12s %10s\n" "" pushwire node "pw/node"
    declare -A F
    for s in pushwire node; do
        for k in cpu wire; do
            F[$s.$k.off]="$(m "$s.fan.off.$k")"; F[$s.$k.on]="$(m "$s.fan.on.$k")"
        done
    done
    row "server CPU ns/delivery, deflate off" "${F[pushwire.cpu.off]}" "${F[node.cpu.off]}"
    row "server CPU ns/delivery, deflate on" "${F[pushwire.cpu.on]}" "${F[node.cpu.on]}"
    row "  on/off (target <= 1.2 for pushwire)" "$(ratio "${F[pushwire.cpu.on]}" "${F[pushwire.cpu.off]}")" \
        "$(ratio "${F[node.cpu.on]}" "${F[node.cpu.off]}")"
    row "wire bytes/delivery, deflate off" "${F[pushwire.wire.off]}" "${F[node.wire.off]}"
    row "wire bytes/delivery, deflate on" "${F[pushwire.wire.on]}" "${F[node.wire.on]}"
    row "  on/off" "$(ratio "${F[pushwire.wire.on]}" "${F[pushwire.wire.off]}")" \
        "$(ratio "${F[node.wire.on]}" "${F[node.wire.off]}")"
fi
if has echo; then
    echo
    echo "(b) echo, $ECHO_CONNS connections x $ECHO_SIZE B compressible text"
    printf "%-44s %12s %12s %10s\n" "" pushwire node "pw/node"
    row "msgs/s, deflate off" "$(m pushwire.echo.off.mps)" "$(m node.echo.off.mps)"
    row "msgs/s, deflate on (target pw/node >= 3)" "$(m pushwire.echo.on.mps)" "$(m node.echo.on.mps)"
    row "server CPU %, deflate on" "$(m pushwire.echo.on.cpu)" "$(m node.echo.on.cpu)"
    row "msgs per server CPU-second, deflate on" "$(per_cpu_s "$(m pushwire.echo.on.mps)" "$(m pushwire.echo.on.cpu)")" \
        "$(per_cpu_s "$(m node.echo.on.mps)" "$(m node.echo.on.cpu)")"
    row "load generator CPU %, deflate on" "$(m pushwire.echo.on.gen)" "$(m node.echo.on.gen)"
    if [[ $NODE_LEVEL1 == 1 ]]; then
        row "msgs/s, deflate on, node at level 1" "$(m pushwire.echo.on.mps)" "$(m node1.echo.on.mps)"
        row "  server CPU %, node at level 1" "$(m pushwire.echo.on.cpu)" "$(m node1.echo.on.cpu)"
        row "  msgs per server CPU-second, node at level 1" "$(per_cpu_s "$(m pushwire.echo.on.mps)" "$(m pushwire.echo.on.cpu)")" \
            "$(per_cpu_s "$(m node1.echo.on.mps)" "$(m node1.echo.on.cpu)")"
    fi
fi
