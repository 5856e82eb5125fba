#!/usr/bin/env bash
# Interop: pushwire against clients written elsewhere.
#
#   node (tests/interop/*.test.mjs, run by `node --test`)
#     ws           /echo and topic WebSockets, with and without
#                  permessage-deflate (RFC 7692)
#     eventsource  SSE: named events, multi-line data, resume by
#                  Last-Event-ID, one stream for many topics (/sse?topic=)
#     fetch        long poll, short poll, and HTTP streaming (NDJSON read
#                  through fetch's ReadableStream, resumed with ?after=)
#     socket.io-client  /socket.io/: polling, WebSocket and the upgrade,
#                  subscribe/publish with acks, a killed transport (state
#                  recovery, and a resubscribe after the cursor), JSON
#                  and binary, one hub with HTTP and SSE (skipped, saying
#                  so, by a build that does not serve /socket.io/);
#                  and two nodes on one redis-server behind a round-robin
#                  TCP balancer: a polling session spans both nodes, the
#                  upgrade made or refused (skipped without redis-server)
#   python (tests/interop/test_websockets.py)
#     websockets   /echo and a topic WebSocket, compressed and not
#   python (tests/interop/test_python_socketio.py)
#     python-socketio  /socket.io/ with another Engine.IO and Socket.IO
#                  implementation: polling, WebSocket and the upgrade,
#                  acks, named events, HTTP JSON, binary as bytes,
#                  refusals, an unknown namespace, a 64-bit id's digits
#   python (tests/interop/test_tls.py, its own TLS server and test CA)
#     ssl          HTTPS with ALPN, TLS 1.2, SSE over TLS, WSS, plaintext
#                  on the TLS port
#
#   scripts/interop.sh
#
# Installs what it needs (npm ci; a virtualenv in tests/interop/.venv with
# the pins of tests/interop/requirements.txt), builds the release binary,
# starts it on a free loopback port with --debug-endpoints, runs both suites
# against it (PUSHWIRE_URL) and exits non-zero if either fails. The server
# log is kept in target/interop/server.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/tests/interop
VENV=$DIR/.venv
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET_DIR/interop
PYTHON=${PYTHON:-python3}
SERVER_PID=
CLUSTER_PIDS=()
started=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - started ))s)"; }

cleanup() {
    # Stop only the processes this script started.
    for pid in $SERVER_PID "${CLUSTER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

# ---- 1. the clients --------------------------------------------------------
step "npm ci (ws, eventsource, socket.io-client)"
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)

step "python virtualenv (websockets, python-socketio)"
if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$DIR/requirements.txt"

# ---- 2. the server ---------------------------------------------------------
step "cargo build --release"
(cd "$ROOT" && cargo build --release --quiet --bin pushwire)
mkdir -p "$WORK"
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# --sio-recovery: the Socket.IO cases cover connection state recovery as
# well as a client resubscribing after its cursor.
"$TARGET_DIR/release/pushwire" --listen "127.0.0.1:$PORT" --debug-endpoints \
    --sse-retry-ms 250 --sio-recovery >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
export PUSHWIRE_URL="http://127.0.0.1:$PORT"
echo "pushwire pid $SERVER_PID at $PUSHWIRE_URL (log: $WORK/server.log)"

# Wait (bounded) until the port accepts connections.
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "pushwire exited early:" >&2; cat "$WORK/server.log" >&2; exit 1
    fi
    sleep 0.1
done

# A cluster for socketio-cluster.test.mjs: a redis-server with no
# persistence and two nodes on it (skipped, saying so, without redis-server).
free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1" >&2; return 1
}
if command -v redis-server >/dev/null; then
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        >"$WORK/redis.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    wait_port "$REDIS_PORT"
    nodes=()
    for n in 1 2; do
        p=$(free_port)
        "$TARGET_DIR/release/pushwire" --listen "127.0.0.1:$p" --debug-endpoints \
            --redis "redis://127.0.0.1:$REDIS_PORT" >"$WORK/node$n.log" 2>&1 &
        CLUSTER_PIDS+=($!)
        wait_port "$p"
        nodes+=("http://127.0.0.1:$p")
    done
    PUSHWIRE_NODES=$(IFS=,; echo "${nodes[*]}")
    export PUSHWIRE_NODES
    echo "cluster: redis on $REDIS_PORT, nodes $PUSHWIRE_NODES"
else
    echo "redis-server is not installed: the cluster cases skip"
fi

# ---- 3. the suites ---------------------------------------------------------
failed=0
step "node --test (ws, eventsource, fetch, socket.io-client)"
(cd "$DIR" && timeout 100 node --test --test-concurrency=1 ./*.test.mjs) || failed=1

step "python websockets"
(cd "$DIR" && timeout 60 "$VENV/bin/python" test_websockets.py) || failed=1

step "python-socketio"
(cd "$DIR" && timeout 90 "$VENV/bin/python" test_python_socketio.py) || failed=1

step "python ssl (TLS)"
(cd "$DIR" && PUSHWIRE_BIN="$TARGET_DIR/release/pushwire" timeout 60 "$VENV/bin/python" test_tls.py) || failed=1

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "pushwire died during the tests:" >&2; tail -n 40 "$WORK/server.log" >&2
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    step "interop FAILED"
    exit 1
fi
step "interop green"
