#!/usr/bin/env bash
# The cluster mode on Redis, against nchan in its Redis mode, in one run.
# Every server process (pushwire nodes, nginx masters and workers, Redis)
# runs on core 0, the load generators on core 1; every process started
# here is stopped by its PID.
#
# 1. Fan-out: SUBS SSE subscribers dealt round-robin over the servers of
#    each case, one publisher on the first server; a latency run (RATE
#    msg/s) and a throughput run (closed loop, WINDOW in flight), DURATION
#    s each, zero loss required (sse-fanout counts every delivery).
#      pw2     2 pushwire nodes, --redis, one Redis
#      nchan2  2 nginx instances (one worker each), nchan_use_redis, one Redis
#      pw1r    1 pushwire node, --redis          } the cost of the engine
#      pw1     1 pushwire node, in-memory hub    }
#    Compared: deliveries per server CPU-second, all the case's processes
#    counted (nodes + Redis; nginx masters + workers + Redis), and the
#    p99 publish->delivery latency at RATE msg/s.
# 2. Publish rate: wrk, PUB_CONNS keep-alive connections per server
#    POSTing to PUB_TOPICS topics, PUB_SECS s; pushwire 1 node in memory,
#    1 node on Redis, 2 nodes on Redis (one wrk per node, at once), and
#    nchan with 1 and 2 instances on Redis. Reported: publishes/s and
#    publishes per server CPU-second.
#
#   bench/cluster.sh    SUBS=5000 RATE=10 WINDOW=4 DURATION=10 PUB_CONNS=64 PUB_SECS=10
#   CASES="pw2 nchan2" PUB=0 bench/cluster.sh      (a subset; no publish-rate part)
#   SERVER_CPU=0,1 LOAD_CPU=0,1 CASES= PUB_CASES="pw1r pw2" bench/cluster.sh
#                   (publish rate with the nodes free to use both cores)
source "$(dirname "$0")/lib.sh"
SUBS="${SUBS:-5000}"
RATE="${RATE:-10}"
WINDOW="${WINDOW:-4}"
DURATION="${DURATION:-10}"
SIZE="${SIZE:-64}"
CASES="${CASES-pw2 nchan2 pw1r pw1}"
PUB="${PUB:-1}"
PUB_CONNS="${PUB_CONNS:-64}"
PUB_SECS="${PUB_SECS:-10}"
PUB_TOPICS="${PUB_TOPICS:-100}"
PUB_CASES="${PUB_CASES:-pw1 pw1r pw2 nchan1 nchan2}"

PORT_REDIS=18379
PORT_NODE=(18080 18084)
PORT_NGINX=(18090 18091)

CASE_PIDS=()      # every process of the running case (stopped after it)
CPU_PIDS=()       # the processes whose CPU counts
CPU_NAMES=()      # what each of them is
SUB_URLS=()
CASE_DIRS=()
trap 'stop_case; cleanup' EXIT

port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is taken before the case started: refusing to measure another process" >&2
        return 1
    fi
}

scratch() {
    local d
    d="$(mktemp -d /tmp/bench-cluster.XXXXXX)"
    CASE_DIRS+=("$d")
    echo "$d"
}

start_redis() {
    local dir pid
    port_free "$PORT_REDIS"
    dir="$(scratch)"
    taskset -c "$SERVER_CPU" redis-server --port "$PORT_REDIS" --bind 127.0.0.1 \
        --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
    pid=$!
    STARTED_PIDS+=("$pid"); CASE_PIDS+=("$pid"); CPU_PIDS+=("$pid"); CPU_NAMES+=(redis)
    wait_port "$PORT_REDIS"
}

# start_node I [--redis]: pushwire node I on PORT_NODE[I].
start_node() {
    local port="${PORT_NODE[$1]}" pid args=()
    [[ "${2:-}" == --redis ]] && args=(--redis "redis://127.0.0.1:$PORT_REDIS")
    port_free "$port"
    taskset -c "$SERVER_CPU" "$PUSHWIRE_SNAPSHOT" --listen "127.0.0.1:$port" "${args[@]}" \
        >/dev/null 2>"/tmp/bench-cluster-node$1.$$.log" &
    pid=$!
    STARTED_PIDS+=("$pid"); CASE_PIDS+=("$pid"); CPU_PIDS+=("$pid"); CPU_NAMES+=("node$1")
    wait_port "$port"
    SUB_URLS+=("http://127.0.0.1:$port/topics/{t}/sse")
}

# start_nchan I: nginx instance I (one worker, Redis mode) on PORT_NGINX[I].
start_nchan() {
    local port="${PORT_NGINX[$1]}" dir pid worker i
    port_free "$port"
    dir="$(scratch)"
    mkdir -p "$dir/tmp" "$dir/logs"
    sed -e "s/127.0.0.1:8090/127.0.0.1:$port/" -e "s/127.0.0.1:6379/127.0.0.1:$PORT_REDIS/" \
        "$BENCH_DIR/nchan/nginx-redis.conf" >"$dir/nginx.conf"
    taskset -c "$SERVER_CPU" nginx -p "$dir" -e stderr -c "$dir/nginx.conf" 2>"$dir/logs/stderr.log" &
    pid=$!
    STARTED_PIDS+=("$pid"); CASE_PIDS+=("$pid"); CPU_PIDS+=("$pid"); CPU_NAMES+=("nginx$1-master")
    wait_port "$port"
    for i in $(seq 50); do
        worker="$(pgrep -P "$pid" | head -1 || true)"
        [[ -n "$worker" ]] && break
        sleep 0.1
    done
    [[ -n "$worker" ]] || { echo "nginx $pid has no worker" >&2; return 1; }
    CPU_PIDS+=("$worker"); CPU_NAMES+=("nginx$1-worker")
    SUB_URLS+=("http://127.0.0.1:$port/sub/{t}")
}

stop_case() {
    local pid
    for pid in "${CASE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${CASE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for d in "${CASE_DIRS[@]}"; do rm -rf "$d"; done
    CASE_PIDS=(); CPU_PIDS=(); CPU_NAMES=(); SUB_URLS=(); CASE_DIRS=()
    sleep 0.5
}

# start_case NAME: the servers of NAME; sets PUB_URL (on the first server).
start_case() {
    case "$1" in
        pw1) start_node 0 ;;
        pw1r) start_redis; start_node 0 --redis ;;
        pw2) start_redis; start_node 0 --redis; start_node 1 --redis ;;
        nchan1) start_redis; start_nchan 0 ;;
        nchan2) start_redis; start_nchan 0; start_nchan 1 ;;
        *) echo "unknown case $1" >&2; return 1 ;;
    esac
    if [[ $1 == nchan* ]]; then
        PUB_URL="http://127.0.0.1:${PORT_NGINX[0]}/pub/{t}"
    else
        PUB_URL="http://127.0.0.1:${PORT_NODE[0]}/topics/{t}"
    fi
}

pids_csv() { local IFS=,; echo "${CPU_PIDS[*]}"; }

# cpu_ticks PID...: user + system clock ticks the processes used so far.
cpu_ticks() {
    local pid t=0 f
    for pid in "$@"; do
        f=($(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || echo))
        (( ${#f[@]} > 12 )) && t=$(( t + f[11] + f[12] ))
    done
    echo "$t"
}

build
versions
echo "# servers on core $SERVER_CPU (taskset), load on core $LOAD_CPU; redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); $(nginx -v 2>&1); nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
echo "# fan-out: sse-fanout --sub 'URL1 [URL2]' --pub PUB --pid PIDS --subs $SUBS --size $SIZE --duration $DURATION {--rate $RATE | --rate 0 --window $WINDOW}"

declare -A R
for c in $CASES; do
    start_case "$c"
    for run in latency throughput; do
        if [[ $run == latency ]]; then mode=(--rate "$RATE"); else mode=(--rate 0 --window "$WINDOW"); fi
        wait_quiet
        run_load "$c $run" sse-fanout --sub "${SUB_URLS[*]}" --pub "$PUB_URL" --pid "$(pids_csv)" \
            --subs "$SUBS" --size "$SIZE" --duration "$DURATION" "${mode[@]}"
        keep "$c.$run" deliveries_per_sec deliveries_per_cpu_s p50_ms p99_ms max_ms lost publish_errors server_cpu_pct bytes_per_sub
        sleep 1
    done
    stop_case
done

if [[ -n "${CASES// /}" ]]; then
echo
echo "## fan-out, $SUBS SSE subscribers"
printf "%-30s" ""; for c in $CASES; do printf " %12s" "$c"; done; echo
row() {
    printf "%-30s" "$1"
    for c in $CASES; do printf " %12s" "${R[$c.$2]:--}"; done
    echo
}
row "deliveries/CPU-s (window $WINDOW)" throughput.deliveries_per_cpu_s
row "  deliveries/s" throughput.deliveries_per_sec
row "  server CPU % (all procs)" throughput.server_cpu_pct
row "  lost" throughput.lost
row "p50 ms at $RATE msg/s" latency.p50_ms
row "p99 ms at $RATE msg/s" latency.p99_ms
row "max ms at $RATE msg/s" latency.max_ms
row "  deliveries/CPU-s" latency.deliveries_per_cpu_s
row "  lost" latency.lost
row "bytes per idle subscriber" latency.bytes_per_sub
if [[ -n "${R[pw2.throughput.deliveries_per_cpu_s]:-}" && -n "${R[nchan2.throughput.deliveries_per_cpu_s]:-}" ]]; then
    echo "pw2 / nchan2 deliveries per CPU-s: $(ratio "${R[pw2.throughput.deliveries_per_cpu_s]}" "${R[nchan2.throughput.deliveries_per_cpu_s]}") (target >= 1.5)"
    echo "pw2 / nchan2 p99 at $RATE msg/s: $(ratio "${R[pw2.latency.p99_ms]}" "${R[nchan2.latency.p99_ms]}") (target <= 1)"
fi
if [[ -n "${R[pw1r.throughput.deliveries_per_cpu_s]:-}" && -n "${R[pw1.throughput.deliveries_per_cpu_s]:-}" ]]; then
    echo "pw1r / pw1 deliveries per CPU-s (the engine's cost): $(ratio "${R[pw1r.throughput.deliveries_per_cpu_s]}" "${R[pw1.throughput.deliveries_per_cpu_s]}")"
fi
fi

[[ "$PUB" == 1 ]] || exit 0

# ---- publish rate ----------------------------------------------------------------
LUA="$(scratch)/post.lua"
cat >"$LUA" <<EOF
-- POST a 64-byte message to one of $PUB_TOPICS topics, picked at random
-- per request; the path prefix is the first script argument.
local body = string.rep("x", 64)
local prefix
init = function(args) prefix = args[1] end
request = function()
   return wrk.format("POST", prefix .. math.random($PUB_TOPICS), {["Content-Type"] = "text/plain"}, body)
end
EOF
echo
echo "## publish rate: wrk -t1 -c$PUB_CONNS -d${PUB_SECS}s -s post.lua (one per server, at once), $PUB_TOPICS topics"
declare -A P
for c in $PUB_CASES; do
    start_case "$c"
    wait_quiet
    t0="$(cpu_ticks "${CPU_PIDS[@]}")"
    each0=(); for pid in "${CPU_PIDS[@]}"; do each0+=("$(cpu_ticks "$pid")"); done
    outs=(); wrk_pids=()
    i=0
    for u in "${SUB_URLS[@]}"; do
        base="${u%%/topics/*}"; base="${base%%/sub/*}"
        if [[ $c == nchan* ]]; then prefix="/pub/p"; else prefix="/topics/p"; fi
        out="$(scratch)/wrk.$i"
        load wrk -t1 "-c$PUB_CONNS" "-d${PUB_SECS}s" -s "$LUA" "$base" -- "$prefix" >"$out" 2>&1 &
        wrk_pids+=($!); outs+=("$out"); i=$((i + 1))
    done
    wait "${wrk_pids[@]}" || true
    t1="$(cpu_ticks "${CPU_PIDS[@]}")"
    split=""
    for i in "${!CPU_PIDS[@]}"; do
        split+=" ${CPU_NAMES[$i]}=$(awk -v t=$(( $(cpu_ticks "${CPU_PIDS[$i]}") - each0[i] )) 'BEGIN { printf "%.2f", t / 100 }')s"
    done
    rps=0; errs=""
    for out in "${outs[@]}"; do
        r="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
        rps="$(awk -v a="$rps" -v b="${r:-0}" 'BEGIN { printf "%.0f", a + b }')"
        errs+="$(grep -E 'Non-2xx|Socket errors' "$out" | tr '\n' ' ' || true)"
    done
    cpu_s="$(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", t / 100 }')"
    per="$(awk -v r="$rps" -v d="$PUB_SECS" -v c="$cpu_s" 'BEGIN { if (c + 0 == 0) print "-"; else printf "%.0f", r * d / c }')"
    P[$c.rps]="$rps"; P[$c.per]="$per"; P[$c.cpu]="$cpu_s"
    echo "$c publish: publishes/s=$rps server_cpu_s=$cpu_s publishes_per_cpu_s=$per cpu_by_process:$split ${errs:+ERRORS: $errs}"
    stop_case
done
echo
printf "%-24s %14s %14s %16s\n" case publishes/s server_CPU_s publishes/CPU-s
for c in $PUB_CASES; do
    printf "%-24s %14s %14s %16s\n" "$c" "${P[$c.rps]}" "${P[$c.cpu]}" "${P[$c.per]}"
done
