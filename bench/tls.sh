#!/usr/bin/env bash
# TLS: pushwire's rustls (ring) against hyper + tokio-rustls and
# fastwebsockets + tokio-rustls (the same rustls, ring provider, same
# certificate: ECDSA P-256 made here with openssl), each server alone on
# core 0, the load on core 1. The servers alternate, REPS times, and the
# median counts.
#
# 1. Plaintext keep-alive over HTTPS: GET /healthz with wrk (OpenSSL
#    client), one request at a time and 16 pipelined per write;
#    pushwire vs hyper-plain-tls.
# 2. WebSocket echo over TLS, 200 connections x 16 KiB: ws-echo-load
#    --url wss:// (rustls client); pushwire vs ws-echo-fastws-tls.
# 3. Full handshakes per second (no resumption: the rustls client keeps
#    no sessions), a request with `Connection: close` on each:
#    tls-handshake-load; all three servers. Also handshakes per second of
#    server CPU, as the generator pays as much per handshake as the server.
#
# Each case also reports its rate per second of server CPU (utime + stime
# of the server process over the measured run): on a machine shared with
# other work the servers get what the scheduler gives them, and the rate
# per CPU-second still compares what each spends per request or message.
#
#   bench/tls.sh                 DURATION=10 CONNS=256 DEPTH=16 REPS=3 HS_CONNS=32
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-256}"
DEPTH="${DEPTH:-16}"
REPS="${REPS:-3}"
HS_CONNS="${HS_CONNS:-32}"
CASES="${CASES:-pipelined single wss hs}"
# has_case NAME: whether CASES names it.
has_case() { [[ " $CASES " == *" $1 "* ]]; }
PORT_HYPER_TLS=18084
PORT_FASTWS_TLS=18085

TLS_DIR="$(mktemp -d /tmp/bench-tls.XXXXXX)"
# NICE=-10 (the default), as deflate.sh: this script, so every server and
# generator, runs at this niceness, and so does its session's autogroup
# (raise_priority in lib.sh; put back on exit). NICE=0 runs as started.
trap 'cleanup; rm -rf "$TLS_DIR"; restore_priority' EXIT
raise_priority

# A CA and a leaf for localhost and 127.0.0.1, both ECDSA P-256.
make_certificate() {
    (
        cd "$TLS_DIR"
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key
        openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=pushwire bench CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.pem
        openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out key.pem
        openssl req -new -key key.pem -subj "/CN=localhost" -out leaf.csr
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >leaf.ext
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 2 \
            -extfile leaf.ext -out cert.pem
    ) 2>/dev/null
    CA="$TLS_DIR/ca.pem"; CERT="$TLS_DIR/cert.pem"; KEY="$TLS_DIR/key.pem"
}

# start_tls_server NAME: as start_server (lib.sh), with the certificate.
start_tls_server() {
    local name="$1" pid
    [[ -x "$PUSHWIRE_SNAPSHOT" ]] || snapshot_pushwire
    case "$name" in
        pushwire) SERVER_PORT=$PORT_PUSHWIRE ;;
        hyper-tls) SERVER_PORT=$PORT_HYPER_TLS ;;
        fastws-tls) SERVER_PORT=$PORT_FASTWS_TLS ;;
        *) echo "unknown server $name" >&2; return 1 ;;
    esac
    if (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null; then
        echo "port $SERVER_PORT is taken before $name started: refusing to measure another process" >&2
        return 1
    fi
    case "$name" in
        pushwire)
            taskset -c "$SERVER_CPU" "$PUSHWIRE_SNAPSHOT" --listen "127.0.0.1:$SERVER_PORT" \
                --tls-cert "$CERT" --tls-key "$KEY" >/dev/null 2>/tmp/bench-pushwire.$$.log & ;;
        hyper-tls)
            taskset -c "$SERVER_CPU" "$BIN/hyper-plain-tls" --listen "127.0.0.1:$SERVER_PORT" \
                --cert "$CERT" --key "$KEY" 2>/dev/null & ;;
        fastws-tls)
            taskset -c "$SERVER_CPU" "$BIN/ws-echo-fastws-tls" --listen "127.0.0.1:$SERVER_PORT" \
                --cert "$CERT" --key "$KEY" 2>/dev/null & ;;
    esac
    pid=$!
    STARTED_PIDS+=("$pid")
    SERVER_MAIN_PID=$pid
    wait_port "$SERVER_PORT"
    SERVER_PID=$pid
    cap_server_cpu
}

build
make_certificate
versions
echo "# peers (TLS): $(cd "$BENCH_DIR" && cargo tree -p peers --depth 1 -e normal --prefix none 2>/dev/null | grep -E '^(tokio-rustls|rustls) ' | tr '\n' ' ')"
echo "# certificate: $(openssl x509 -in "$CERT" -noout -text | grep -E 'Public Key Algorithm|NIST CURVE' | sed 's/^ *//' | tr '\n' ' ')"
echo "# 1. wrk -t1 -c$CONNS -d${DURATION}s --latency [-s lua/pipeline.lua URL -- $DEPTH] https://127.0.0.1:PORT/healthz"
echo "# 2. ws-echo-load --url wss://127.0.0.1:PORT/echo --ca ca.pem --conns 200 --size 16384 --warmup $WARMUP --duration $DURATION --pid SERVER_PID"
echo "# 3. tls-handshake-load --url https://127.0.0.1:PORT/healthz --ca ca.pem --conns $HS_CONNS --warmup $WARMUP --duration $DURATION --pid SERVER_PID"
echo "# (x$REPS, median) cases: $CASES; at nice $(nice) ($(cat /proc/$$/autogroup 2>/dev/null || echo 'no autogroup')); server CPU quota: ${SERVER_CPU_QUOTA:-none}% of a core"

for server in pushwire hyper-tls; do
    start_tls_server "$server"
    url="https://127.0.0.1:$SERVER_PORT/healthz"
    resp="$(curl -s -i --cacert "$CA" "$url")"
    echo "# $server response ($(wc -c <<<"$resp") bytes): $(tr -d '\r' <<<"$resp" | tr '\n' '|')"
    echo "# $server TLS: $(curl -s -o /dev/null -w '%{http_version} ' --cacert "$CA" "$url")$(openssl s_client -connect "127.0.0.1:$SERVER_PORT" -alpn http/1.1 </dev/null 2>/dev/null | grep -E '^(New|ALPN)' | tr '\n' ' ')"
    stop_server
done

declare -A R
for rep in $(seq "$REPS"); do
    for mode in pipelined single; do
        has_case "$mode" || continue
        for server in pushwire hyper-tls; do
            start_tls_server "$server"
            url="https://127.0.0.1:$SERVER_PORT/healthz"
            args=(-t1 "-c$CONNS" --latency)
            extra=()
            if [[ $mode == pipelined ]]; then
                args+=(-s "$BENCH_DIR/lua/pipeline.lua")
                extra=(-- "$DEPTH")
            fi
            load wrk "${args[@]}" -d2s "$url" "${extra[@]}" >/dev/null 2>&1 || true
            wait_quiet
            t0="$(cpu_ticks "$SERVER_PID")"
            out="$(load wrk "${args[@]}" "-d${DURATION}s" "$url" "${extra[@]}" 2>&1)"
            t1="$(cpu_ticks "$SERVER_PID")"
            rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
            reqs="$(awk '/requests in/ { print $1 }' <<<"$out")"
            R[$server.${mode}cpu]+=" $(per_cpu "$reqs" "$t0" "$t1")"
            p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
            errs="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
            R[$server.$mode]+=" $rps"
            echo "rep $rep $server https $mode: requests/s=$rps requests_per_server_cpu_sec=$(per_cpu "$reqs" "$t0" "$t1") latency_p99=$p99 ${errs:+ERRORS: $errs}"
            stop_server
        done
    done
    for server in pushwire fastws-tls; do
        has_case wss || continue
        start_tls_server "$server"
        wait_quiet
        out="$(load "$BIN/ws-echo-load" --url "wss://127.0.0.1:$SERVER_PORT/echo" --ca "$CA" --conns 200 --size 16384 \
            --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" 2>&1)" || echo "FAILED ($server wss): $(head -5 <<<"$out")"
        line="$(grep '^ws-echo-load' <<<"$out" | tail -1)"
        echo "rep $rep $server wss: $line"
        R[$server.wss]+=" $(kv msgs_per_sec "$line")"
        R[$server.wsscpu]+=" $(awk -v m="$(kv msgs_per_sec "$line")" -v c="$(kv server_cpu_pct "$line")" 'BEGIN { if (c + 0 > 0) printf "%.0f", m / (c / 100); else print "-" }')"
        stop_server
    done
    for server in pushwire hyper-tls fastws-tls; do
        has_case hs || continue
        start_tls_server "$server"
        wait_quiet
        out="$(load "$BIN/tls-handshake-load" --url "https://127.0.0.1:$SERVER_PORT/healthz" --ca "$CA" \
            --conns "$HS_CONNS" --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" 2>&1)" || echo "FAILED ($server handshakes): $(head -5 <<<"$out")"
        line="$(grep '^tls-handshake-load' <<<"$out" | tail -1)"
        echo "rep $rep $server handshakes: $line"
        R[$server.hs]+=" $(kv handshakes_per_sec "$line")"
        R[$server.hscpu]+=" $(kv handshakes_per_server_cpu_sec "$line")"
        stop_server
    done
done

echo
printf "%-28s %12s %12s %12s %8s %8s\n" case pushwire hyper-tls fastws-tls "pw/hyper" "pw/fastws"
# med KEY: the median of R[KEY], "-" when that server was not in the case.
med() {
    # shellcheck disable=SC2086
    if [[ -n "${R[$1]:-}" ]]; then median ${R[$1]}; else echo "-"; fi
}
row() {
    local label="$1" key="$2" p h f
    p="$(med "pushwire.$key")"; h="$(med "hyper-tls.$key")"; f="$(med "fastws-tls.$key")"
    printf "%-28s %12s %12s %12s %8s %8s\n" "$label" "$p" "$h" "$f" "$(ratio "$p" "$h")" "$(ratio "$p" "$f")"
}
row "https pipelined req/s" pipelined
row "  per server CPU-s" pipelinedcpu
row "https single req/s" single
row "  per server CPU-s" singlecpu
row "wss echo 200x16KiB msg/s" wss
row "  per server CPU-s" wsscpu
row "handshakes/s" hs
row "  per server CPU-s" hscpu
